"""Joining and cutting: concatenate, stack, split, pad.

- concatenate along an axis: each input gets back its own slab of the gradient;
- stack (a new axis): input i gets ``g`` indexed at i along that axis;
- split is a composition of slices (``getitem``);
- pad: every output element is a copy of one input element (or the constant), so
  ``dL/dx[j]`` is the sum of ``g`` over the output positions that copy ``x[j]``: the
  centre slab for ``constant`` mode; for the other modes the copies are found by padding an
  array of element indices the same way and summing with ``bincount``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops.indexing import getitem

_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "circular")


def _axis(axis: Any, ndim: int, op: str) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for tensors of rank {ndim}.")
    return int(axis) % max(ndim, 1)


@register("concatenate")
class Concatenate(Function):
    def forward(self, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        if not arrays:
            raise ValueError("concatenate: needs at least one tensor.")
        ndim = arrays[0].ndim
        if ndim == 0:
            raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated.")
        axis = _axis(axis, ndim, "concatenate")
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"concatenate: incompatible shapes {shapes} along axis {axis}: all axes but "
                f"the concatenation axis must match."
            ) from None
        self.saved = (axis, np.cumsum([a.shape[axis] for a in arrays])[:-1])
        return out

    def backward(self, g: np.ndarray) -> tuple:
        axis, bounds = self.saved
        pieces = np.split(g, bounds, axis=axis)
        return tuple(p if need else None for p, need in zip(pieces, self.needs_grad))


@register("stack")
class Stack(Function):
    def forward(self, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        if not arrays:
            raise ValueError("stack: needs at least one tensor.")
        axis = _axis(axis, arrays[0].ndim + 1, "stack")
        try:
            out = np.stack(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"stack: all tensors must have the same shape, got {shapes}."
            ) from None
        self.saved = axis
        return out

    def backward(self, g: np.ndarray) -> tuple:
        lead = (slice(None),) * self.saved
        return tuple(g[lead + (i,)] if need else None for i, need in enumerate(self.needs_grad))


@register("pad")
class Pad(Function):
    def forward(
        self,
        x: np.ndarray,
        pad_width: Any = 0,
        mode: str = "constant",
        constant_values: Any = None,
    ) -> np.ndarray:
        if mode not in _PAD_MODES:
            raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}.")
        try:
            widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
        except ValueError:
            raise ValueError(
                f"pad: pad_width {pad_width!r} does not fit a tensor of shape {x.shape}: give "
                f"an int, (before, after), or one (before, after) per axis."
            ) from None
        if np.any(widths < 0):
            raise ValueError(f"pad: pad_width must be non-negative, got {pad_width!r}.")
        mode = "wrap" if mode == "circular" else mode
        self.saved = (x.shape, widths, mode)
        if mode == "constant":
            value = 0 if constant_values is None else constant_values
            return np.pad(x, widths, mode="constant", constant_values=value)
        return np.pad(x, widths, mode=mode)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, widths, mode = self.saved
        if mode == "constant":
            return g[tuple(slice(b, b + n) for (b, _), n in zip(widths, shape))]
        source = np.pad(np.arange(int(np.prod(shape))).reshape(shape), widths, mode=mode)
        summed = np.bincount(source.ravel(), weights=g.ravel(), minlength=source.size)
        return summed[: int(np.prod(shape))].reshape(shape).astype(g.dtype, copy=False)


def concatenate(xs: Any, axis: int = 0) -> Tensor:
    """Join a sequence of tensors along an existing axis."""
    return Concatenate.apply(*xs, axis=axis)


def stack(x: Any, axis: int = 0) -> Tensor:
    """Join a sequence of same-shaped tensors along a new axis."""
    return Stack.apply(*x, axis=axis)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Cut x along ``axis``: into that many equal parts (an int) or at those indices.

    Each part is a slice of x (``getitem``), so its gradient flows back into place.
    """
    shape = x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)
    axis = _axis(axis, len(shape), "split")
    n = shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise ValueError(
                f"split: axis {axis} of shape {tuple(shape)} (size {n}) cannot be split into "
                f"{sections} equal sections."
            )
        bounds = [n // sections * i for i in range(1, sections)]
    else:
        bounds = [int(i) for i in indices_or_sections]
    starts = [0, *bounds]
    ends = [*bounds, n]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(starts, ends)]


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Tensor:
    """Pad x with ``pad_width`` (int, (before, after), or one pair per axis) elements.

    Args:
        x: input tensor.
        pad_width: the widths, as NumPy and Keras take them.
        mode: "constant" (default), "edge", "reflect", "symmetric", "wrap" or "circular".
        constant_values: the fill value of "constant" mode (0 when None).
    """
    if constant_values is not None and mode != "constant":
        raise ValueError(f"pad: constant_values is only used with mode='constant', not {mode!r}.")
    return Pad.apply(x, pad_width=pad_width, mode=mode, constant_values=constant_values)
