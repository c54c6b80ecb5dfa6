"""Windows along one axis, as a new axis: ``UnfoldAxis`` and its adjoint ``FoldAxis``.

They turn a 3-D convolution into a 2-D one (``dendrite.ops.conv3d``): unfolding the depth
axis puts each output depth's ``k`` input slices side by side in the channels, where the
2-D convolution sums over them with its other offsets; folding runs the same sum backwards
for the transposed convolution.

For ``x`` of shape (N, L, *rest, C), zero-padded along axis 1 by ``pads`` = (before, after)
to ``xp`` of length ``Lp = L + before + after``, a window of ``k`` taps with stride ``s`` and
dilation ``d`` gives ``O = (Lp - (k - 1) d - 1) // s + 1`` windows, and

    unfold:  u[n, o, ..., i, c] = xp[n, o s + i d, ..., c]       (N, O, *rest, k, C)

read through one strided view of ``xp`` and copied once. Its adjoint adds every tap back
where it was read from, then crops the padding:

    fold:    y = crop(yp),  yp[n, o s + i d, ..., c] += u[n, o, ..., i, c]   (N, L, *rest, C)

``k`` strided slice-adds (no scatter, no loop over positions). Each is the VJP of the other:
``dL/dx = fold(dL/du)`` and ``dL/du = unfold(dL/dy)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dendrite.core import Function, register


def _windows(length: int, size: int, stride: int, dilation: int, pads: tuple) -> int:
    """How many windows of ``size`` taps fit the padded length (may be <= 0)."""
    return (length + pads[0] + pads[1] - (size - 1) * dilation - 1) // stride + 1


def unfold(x: np.ndarray, size: int, stride: int, dilation: int, pads: tuple) -> np.ndarray:
    """``u`` of the module docstring, on arrays (a fresh, contiguous array)."""
    before, after = pads
    if before or after:
        padded = np.zeros((x.shape[0], x.shape[1] + before + after, *x.shape[2:]), x.dtype)
        padded[:, before : before + x.shape[1]] = x
        x = padded
    count = _windows(x.shape[1], size, stride, dilation, (0, 0))
    s_n, s_l, *s_rest = x.strides
    view = as_strided(
        x,
        (x.shape[0], count, *x.shape[2:-1], size, x.shape[-1]),
        (s_n, s_l * stride, *s_rest[:-1], s_l * dilation, s_rest[-1]),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def fold(u: np.ndarray, length: int, stride: int, dilation: int, pads: tuple) -> np.ndarray:
    """``y`` of the module docstring, on arrays: ``u`` (N, O, *rest, k, C) -> (N, length,
    *rest, C)."""
    n, count, *rest, size, channels = u.shape
    before, after = pads
    out = np.zeros((n, length + before + after, *rest, channels), u.dtype)
    span = (count - 1) * stride + 1
    for i in range(size):
        start = i * dilation
        out[:, start : start + span : stride] += u[..., i, :]
    return out[:, before : before + length] if before or after else out


def _check(shape: tuple, op: str) -> None:
    if len(shape) < 3:
        raise ValueError(
            f"{op}: expected an input of rank >= 3 (batch, windowed axis, ..., channels), got "
            f"shape {shape}."
        )


@register("unfold_axis")
class UnfoldAxis(Function):
    """``u[n, o, ..., i, c] = xp[n, o s + i d, ..., c]`` (see the module docstring).

    Options: size (k), stride (s), dilation (d), pads ((before, after) zeros on axis 1).
    """

    def forward(
        self,
        x: np.ndarray,
        size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        pads: tuple = (0, 0),
    ) -> np.ndarray:
        _check(x.shape, "unfold_axis")
        if _windows(x.shape[1], size, stride, dilation, pads) <= 0:
            raise ValueError(
                f"unfold_axis: a window of {size} taps with dilation {dilation} does not fit "
                f"axis 1 of the input {x.shape} padded by {tuple(pads)}."
            )
        self.saved = (x.shape[1], size, stride, dilation, tuple(pads))
        return unfold(x, size, stride, dilation, pads)

    def backward(self, g: np.ndarray) -> np.ndarray:
        length, _, stride, dilation, pads = self.saved
        return fold(g, length, stride, dilation, pads)


@register("fold_axis")
class FoldAxis(Function):
    """``y = crop(yp)``, ``yp[n, o s + i d, ..., c] += u[n, o, ..., i, c]``: the adjoint of
    ``UnfoldAxis`` (see the module docstring). Options: length (L, the unpadded output
    length), stride, dilation, pads."""

    def forward(
        self,
        u: np.ndarray,
        length: int = 1,
        stride: int = 1,
        dilation: int = 1,
        pads: tuple = (0, 0),
    ) -> np.ndarray:
        _check(u.shape[:-1], "fold_axis")
        size = u.shape[-2]
        if _windows(length, size, stride, dilation, pads) != u.shape[1]:
            raise ValueError(
                f"fold_axis: {u.shape[1]} windows of {size} taps (stride {stride}, dilation "
                f"{dilation}) do not cover an axis of length {length} padded by {tuple(pads)}."
            )
        self.saved = (size, stride, dilation, tuple(pads))
        return fold(u, length, stride, dilation, pads)

    def backward(self, g: np.ndarray) -> np.ndarray:
        size, stride, dilation, pads = self.saved
        return unfold(g, size, stride, dilation, pads)
