"""Ops that move elements without arithmetic: reshape, transpose, broadcast_to, and the
compositions built on them (expand_dims, squeeze, ravel, moveaxis, swapaxes, tile).

Each VJP routes the gradient back to where the element came from: reshape back to the
input shape, transpose by the inverse permutation, and ``broadcast_to`` sums over the
copies (``unbroadcast``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import unbroadcast


@register("reshape")
class Reshape(Function):
    def forward(self, x: np.ndarray, shape: tuple = ()) -> np.ndarray:
        self.saved = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into shape {tuple(shape)}."
            ) from None

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(self.saved)


@register("transpose")
class Transpose(Function):
    def forward(self, x: np.ndarray, axes: Any = None) -> np.ndarray:
        if axes is None:
            axes = tuple(reversed(range(x.ndim)))
        axes = tuple(int(a) % max(x.ndim, 1) for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of a "
                f"tensor of shape {x.shape}."
            )
        self.saved = axes
        return np.transpose(x, axes)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return np.transpose(g, np.argsort(self.saved))


@register("broadcast_to")
class BroadcastTo(Function):
    def forward(self, x: np.ndarray, shape: tuple = ()) -> np.ndarray:
        self.saved = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(
                f"broadcast_to: cannot broadcast a tensor of shape {x.shape} to shape "
                f"{tuple(shape)} (each trailing axis must match or be 1)."
            ) from None

    def backward(self, g: np.ndarray) -> np.ndarray:
        return unbroadcast(g, self.saved)


def _shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)


def _as_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def reshape(x: Any, newshape: Any) -> Tensor:
    """The same elements in a new shape (one axis may be -1)."""
    return Reshape.apply(x, shape=_as_shape(newshape))


def transpose(x: Any, axes: Any = None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None)."""
    return Transpose.apply(x, axes=axes)


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """Repeat x along size-1 (and new leading) axes to ``shape``, NumPy's rules."""
    return BroadcastTo.apply(x, shape=_as_shape(shape))


def expand_dims(x: Any, axis: Any) -> Tensor:
    """Insert size-1 axes at ``axis`` (an int or a tuple) (a reshape)."""
    shape = _shape_of(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    rank = len(shape) + len(axes)
    if not all(-rank <= a < rank for a in axes):
        raise ValueError(
            f"expand_dims: axis {axis} is out of range for a result of rank {rank} "
            f"(input shape {shape})."
        )
    positions = {int(a) % rank for a in axes}
    if len(positions) != len(axes):
        raise ValueError(f"expand_dims: repeated axis in {axis}.")
    rest = iter(shape)
    out = [1 if i in positions else next(rest) for i in range(rank)]
    return Reshape.apply(x, shape=tuple(out))


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """Remove size-1 axes: those at ``axis`` (an int or a tuple), or all of them (a reshape)."""
    shape = _shape_of(x)
    if axis is None:
        out = tuple(n for n in shape if n != 1)
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        ndim = len(shape)
        chosen = set()
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"squeeze: axis {a} is out of range for shape {shape}.")
            a = int(a) % ndim
            if shape[a] != 1:
                raise ValueError(
                    f"squeeze: cannot squeeze axis {a} of shape {shape}: its size is "
                    f"{shape[a]}, not 1."
                )
            chosen.add(a)
        out = tuple(n for i, n in enumerate(shape) if i not in chosen)
    return Reshape.apply(x, shape=out)


def ravel(x: Any) -> Tensor:
    """The elements as a 1-D tensor, in C order (a reshape)."""
    return Reshape.apply(x, shape=(-1,))


def flatten(x: Any) -> Tensor:
    """Alias of ``ravel``: all elements in one axis."""
    return ravel(x)


def moveaxis(x: Any, source: Any, destination: Any) -> Tensor:
    """Move axes to new positions, the others keeping their order (a transpose)."""
    ndim = len(_shape_of(x))
    src = [int(a) % ndim for a in ((source,) if np.ndim(source) == 0 else source)]
    dst = [int(a) % ndim for a in ((destination,) if np.ndim(destination) == 0 else destination)]
    if len(src) != len(dst):
        raise ValueError(
            f"moveaxis: source {source} and destination {destination} differ in length."
        )
    order = [a for a in range(ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Transpose.apply(x, axes=tuple(order))


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (a transpose)."""
    ndim = len(_shape_of(x))
    order = list(range(ndim))
    a, b = int(axis1) % ndim, int(axis2) % ndim
    order[a], order[b] = order[b], order[a]
    return Transpose.apply(x, axes=tuple(order))


def tile(x: Any, repeats: Any) -> Tensor:
    """Repeat the whole tensor ``repeats[i]`` times along axis i (NumPy's ``tile``).

    A composition: interleave size-1 axes (reshape), broadcast over them, merge them.
    """
    shape = _shape_of(x)
    reps = _as_shape(repeats)
    ndim = max(len(shape), len(reps))
    shape = (1,) * (ndim - len(shape)) + tuple(shape)
    reps = (1,) * (ndim - len(reps)) + reps
    spread = tuple(v for n in shape for v in (1, n))
    target = tuple(v for r, n in zip(reps, shape) for v in (r, n))
    out = broadcast_to(reshape(x, spread), target)
    return reshape(out, tuple(r * n for r, n in zip(reps, shape)))
