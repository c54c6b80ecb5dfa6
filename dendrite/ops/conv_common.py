"""What the convolution primitives share: the checks of their arguments (``Conv`` and
``ConvTranspose``; the fused ``ConvMaxPool`` of ``conv_pool`` uses them too) and the fused
bias + ReLU epilogue.

- ``as_2d``: a 1-D input (N, L, C) with a (k, C, F) kernel is a 2-D one of height 1,
  (N, 1, L, C) with a (1, k, C, F) kernel;
- ``checked_output_size``: with ``x`` (N, H, W, C) zero-padded by (pt, pb), (pl, pr), a
  kernel (kh, kw, C / groups, F), strides ``s`` and dilation ``d``, the output is
  ``OH = (H + pt + pb - (kh - 1) d_h - 1) // s_h + 1`` (likewise ``OW``), which must be
  positive; the channels, the groups and the bias are checked against the kernel;
- ``spatial_rank``: 1 or 2 spatial axes (input rank 3 or 4), else a ValueError;
- the epilogue ``relu?(out + b)`` in place (``_finish``), and the gradient through the
  ReLU, ``g * [y > 0]`` (``_relu_mask``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.ops._util import bias_relu_, relu_grad


def _relu_mask(g: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``g * [out > 0]``, or ``g`` when there was no ReLU (``out`` None)."""
    return g if out is None else relu_grad(g, out)


def _finish(out: np.ndarray, bias: np.ndarray | None, relu: bool) -> None:
    """``out += bias`` then ``max(out, 0)``, in place."""
    bias_relu_(out, bias, relu)


def as_2d(x: np.ndarray, kernel: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim not in (3, 4) or kernel.ndim != x.ndim:
        raise ValueError(
            f"{op}: expected a channels_last input of rank 3 (batch, length, channels) or 4 "
            f"(batch, height, width, channels) and a kernel of the same rank, got input "
            f"{x.shape} and kernel {kernel.shape}."
        )
    if x.ndim == 3:
        return x[:, None], kernel[None]
    return x, kernel


def check_bias(bias: np.ndarray | None, filters: int, op: str) -> None:
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{op}: expected a bias of shape ({filters},), got {bias.shape}.")


def checked_output_size(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    padding: tuple,
    strides: tuple,
    dilation: tuple,
    groups: int,
    op: str,
) -> tuple[int, int]:
    """The (OH, OW) of a convolution of channels_last ``x`` (N, H, W, C) by ``kernel``
    (kh, kw, C / groups, F), after checking the channels, the bias and that the kernel
    fits the padded input (each failure a ValueError naming ``op`` and the shapes)."""
    _, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    if cg * groups != c or f % groups:
        raise ValueError(
            f"{op}: the input has {c} channels, but the kernel of shape {kernel.shape} "
            f"with groups={groups} expects {cg * groups} (and filters divisible by groups)."
        )
    check_bias(bias, f, op)
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw) = strides, dilation
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"{op}: the kernel {kernel.shape[:2]} with dilation {tuple(dilation)} does not "
            f"fit the padded input {(h + pt + pb, w + pl + pr)} (input shape {x.shape}); "
            f"the output would have size {(oh, ow)}."
        )
    return oh, ow


def spatial_rank(x: Any, op: str, volumes: bool = False) -> int:
    """The spatial axes of ``x`` (batch and channels aside): 1 or 2, and 3 with
    ``volumes``."""
    rank = len(x.shape) - 2
    if rank not in ((1, 2, 3) if volumes else (1, 2)):
        also = ", 4 (2-D) or 5 (3-D)" if volumes else " or 4 (2-D)"
        raise ValueError(
            f"{op}: expected an input of rank 3 (1-D){also} including the batch and "
            f"channel axes, got shape {tuple(x.shape)}."
        )
    return rank
