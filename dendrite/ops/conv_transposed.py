"""Transposed convolution, channels_last: the primitive ``ConvTranspose`` (1-D and 2-D;
a 1-D input is a 2-D one of height 1) and the Keras op built on it (``conv_transpose``).

**Transposed convolution** (Keras kernel (kh, kw, F, C)) is the input-gradient of a
convolution (``dendrite.ops.conv``) run as a forward pass: with ``x_2`` the input as rows
(N H W, C) and ``K_2 = K.reshape(kh kw F, C)``, ``y = crop(col2im(x_2 K_2^T))``: each input
pixel's row of ``x_2 K_2^T`` is added onto the output window it would have been read from
(kh * kw strided slice-adds), and the padding is then cropped. Its VJP is a convolution:
``dL/dx = cols(pad(g)) K_2`` and ``dL/dK_2 = cols(pad(g))^T x_2`` (``dL/db = sum_rows g``).

The output size follows Keras (``windows.transpose_output_length``): ``(n - 1) s +
max((k - 1) d + 1, s)`` for 'valid' and ``n s`` for 'same', unless ``output_padding`` sets
it; 'same' crops the padding the matching convolution would add, the odd pixel at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._products import product
from dendrite.ops._util import sum_rows
from dendrite.ops.conv_common import _finish, _relu_mask, as_2d, check_bias, spatial_rank
from dendrite.ops.windows import (
    Geometry,
    crop_spatial,
    im2col,
    input_grad,
    normalize_tuple,
    pad_spatial,
    standardize_data_format,
    standardize_padding,
    to_channels_first,
    to_channels_last,
    transpose_output_length,
)


@register("conv_transpose")
class ConvTranspose(Function):
    """Fused ``relu?(conv_transpose(x, K) + b)``, channels_last, kernel (kh, kw, F, C).

    Options: strides, dilation, padding (the (before, after) pairs that the matching
    convolution would put around the output), output_size (its spatial size), relu.
    """

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None = None,
        strides: tuple = (1, 1),
        padding: tuple = ((0, 0), (0, 0)),
        output_size: tuple = (1, 1),
        dilation: tuple = (1, 1),
        relu: bool = False,
    ) -> np.ndarray:
        one_d = x.ndim == 3
        x, kernel = as_2d(x, kernel, "conv_transpose")
        n, h, w, c = x.shape
        kh, kw, f, kc = kernel.shape
        if kc != c:
            raise ValueError(
                f"conv_transpose: the input has {c} channels, but the kernel of shape "
                f"{kernel.shape} (kh, kw, filters, in_channels) expects {kc}."
            )
        check_bias(bias, f, "conv_transpose")
        (pt, pb), (pl, pr) = padding
        (sh, sw), (dh, dw) = strides, dilation
        out_h, out_w = output_size
        hp, wp = out_h + pt + pb, out_w + pl + pr
        if (hp - (kh - 1) * dh - 1) // sh + 1 != h or (wp - (kw - 1) * dw - 1) // sw + 1 != w:
            raise ValueError(
                f"conv_transpose: an output of size {tuple(output_size)} with padding "
                f"{tuple(padding)} does not match the input {x.shape} for kernel "
                f"{kernel.shape[:2]}, strides {tuple(strides)}, dilation {tuple(dilation)}."
            )
        geom = Geometry(kh, kw, sh, sw, dh, dw, h, w)
        x2 = x.reshape(n * h * w, c)
        k2 = kernel.reshape(kh * kw * f, c)
        full = input_grad(x2, kernel, (n, hp, wp, f), geom)
        out = crop_spatial(full, padding, (n, out_h, out_w))
        out = np.ascontiguousarray(out)
        _finish(out, bias, relu)
        if self.needs_grad:
            needs = self.needs_grad
            self.saved = (
                x2 if needs[1] else None,
                k2 if needs[0] else None,
                out if relu else None,
                x.shape,
                kernel.shape,
                padding,
                geom,
                one_d,
            )
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> tuple:
        x2, k2, out, x_shape, k_shape, padding, geom, one_d = self.saved
        if one_d:
            g = g[:, None]
        g = _relu_mask(g, out)
        needs = self.needs_grad
        gb = sum_rows(g.reshape(-1, g.shape[-1])) if len(needs) > 2 and needs[2] else None
        cols = im2col(pad_spatial(g, padding), geom)
        gx = product(cols, k2).reshape(x_shape) if needs[0] else None
        gk = product(cols.T, x2).reshape(k_shape) if needs[1] else None
        if one_d:
            gx = None if gx is None else gx[:, 0]
            gk = None if gk is None else gk[0]
        return (gx, gk, gb)[: len(self.needs_grad)]


def fused_conv_transpose(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    dilation_rate: Any = 1,
    relu: bool = False,
) -> Tensor:
    """``relu?(conv_transpose(x, kernel) + bias)``, channels_last, kernel (k..., F, C)."""
    rank = spatial_rank(x, "conv_transpose")
    kernel_size = tuple(kernel.shape[:rank])
    strides = normalize_tuple(strides, rank, "strides")
    dilation = normalize_tuple(dilation_rate, rank, "dilation_rate")
    padding = standardize_padding(padding)
    if output_padding is not None:
        output_padding = normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
    sizes = []
    pads = []
    for axis in range(rank):
        extra = None if output_padding is None else output_padding[axis]
        k, s, d = kernel_size[axis], strides[axis], dilation[axis]
        size = transpose_output_length(x.shape[1 + axis], k, padding, s, extra, d)
        if padding == "same":
            total = max((x.shape[1 + axis] - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((0, 0))
        sizes.append(size)
    if rank == 1:
        strides, dilation = (1, *strides), (1, *dilation)
        pads, sizes = [(0, 0), *pads], [1, *sizes]
    args = (x, kernel) if bias is None else (x, kernel, bias)
    return ConvTranspose.apply(
        *args,
        strides=strides,
        padding=tuple(pads),
        output_size=tuple(sizes),
        dilation=dilation,
        relu=relu,
    )


def conv_transpose(
    inputs: Any,
    kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Tensor:
    """Keras' ``ops.conv_transpose`` (the gradient of ``conv`` with respect to its input);
    kernel (k..., filters, C)."""
    data_format = standardize_data_format(data_format)
    rank = spatial_rank(inputs, "conv_transpose", volumes=True)
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, rank)
    if rank == 3:  # conv3d.py builds on this module, hence the import here
        from dendrite.ops.conv3d import fused_conv3d_transpose as transposed
    else:
        transposed = fused_conv_transpose
    out = transposed(
        x,
        kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation_rate,
    )
    return out if data_format == "channels_last" else to_channels_first(out, rank)
