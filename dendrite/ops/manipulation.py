"""Array manipulation with Keras 3's names, as compositions of gathers (``getitem``, ``take``),
joins and reshapes, so that each gradient routes g back to where its value came from:

- flip / fliplr / flipud: ``x[..., ::-1, ...]``; roll: a gather with the rolled index;
  rot90: flips and a transpose (as NumPy builds it);
- diagonal(x, offset, axis1, axis2): ``x[..., i, i + offset]`` (the diagonal last);
  trace = the diagonal's sum; diag: the diagonal of a matrix, or the matrix with a vector on
  its k-th diagonal (a gather from the vector and one zero); diagflat = diag(ravel(x), k);
- hstack / vstack / dstack / append: ``concatenate`` after NumPy's reshapes;
- hsplit / vsplit / array_split / unstack: slices (``getitem``);
- meshgrid: reshapes and ``broadcast_to``; copy: x * 1 (a new tensor, gradient g).

``tri`` and ``identity`` make constants (plain tensors, ``floatx`` unless ``dtype``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import multiply
from dendrite.ops.creation import _dtype
from dendrite.ops.indexing import getitem, take
from dendrite.ops.joining import concatenate, split
from dendrite.ops.movement import broadcast_to, moveaxis, reshape, transpose
from dendrite.ops.reduce import sum as reduce_sum


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, (Tensor, np.ndarray)) else np.shape(raw(x))


def _axis(axis: int, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor of rank {ndim}.")
    return int(axis) % ndim


def flip(x: Any, axis: Any = None) -> Tensor:
    """x with the order of its elements reversed along ``axis`` (every axis when None)."""
    ndim = len(_shape(x))
    axes = range(ndim) if axis is None else (axis,) if np.ndim(axis) == 0 else axis
    index = [slice(None)] * ndim
    for a in axes:
        index[_axis(a, ndim, "flip")] = slice(None, None, -1)
    return getitem(x, tuple(index))


def fliplr(x: Any) -> Tensor:
    """x reversed along axis 1 (needs at least 2 axes)."""
    if len(_shape(x)) < 2:
        raise ValueError(f"fliplr: needs at least 2 axes, got shape {_shape(x)}.")
    return flip(x, 1)


def flipud(x: Any) -> Tensor:
    """x reversed along axis 0 (needs at least 1 axis)."""
    if len(_shape(x)) < 1:
        raise ValueError("flipud: needs at least 1 axis, got a scalar.")
    return flip(x, 0)


def roll(x: Any, shift: Any, axis: Any = None) -> Tensor:
    """x with its elements shifted by ``shift`` along ``axis`` (of the flattened x when
    None, keeping the shape); those that fall off one end come back at the other."""
    shape = _shape(x)
    if axis is None:
        flat = reshape(x, (-1,))
        n = int(np.prod(shape, dtype=np.int64))
        index = np.roll(np.arange(n), int(np.sum(shift)))
        return reshape(take(flat, index, axis=0), shape)
    shifts = np.broadcast_to(np.asarray(shift), np.shape(axis))
    axes = np.broadcast_to(np.asarray(axis), shifts.shape)
    out = x
    for s, a in zip(np.atleast_1d(shifts), np.atleast_1d(axes)):
        a = _axis(int(a), len(shape), "roll")
        out = take(out, np.roll(np.arange(shape[a]), int(s)), axis=a)
    return out


def rot90(array: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Tensor:
    """``array`` rotated by 90 degrees ``k`` times in the plane of ``axes`` (from the first
    axis towards the second), as NumPy's ``rot90``."""
    ndim = len(_shape(array))
    if len(axes) != 2 or ndim < 2:
        raise ValueError(f"rot90: needs 2 axes and an input of rank >= 2, got {axes}, {ndim}.")
    a0, a1 = _axis(axes[0], ndim, "rot90"), _axis(axes[1], ndim, "rot90")
    if a0 == a1:
        raise ValueError(f"rot90: the two axes must differ, got {axes}.")
    k %= 4
    if k == 0:
        return copy(array)
    if k == 2:
        return flip(flip(array, a0), a1)
    perm = list(range(ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(array, a1), perm)
    return flip(transpose(array, perm), a1)


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The ``offset``-th diagonal of the planes (axis1, axis2), as a new last axis."""
    shape = _shape(x)
    if len(shape) < 2:
        raise ValueError(f"diagonal: needs at least 2 axes, got shape {shape}.")
    a1, a2 = _axis(axis1, len(shape), "diagonal"), _axis(axis2, len(shape), "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}.")
    moved = moveaxis(x, (a1, a2), (-2, -1))
    rows, cols = shape[a1], shape[a2]
    start_r, start_c = max(-offset, 0), max(offset, 0)
    length = max(0, min(rows - start_r, cols - start_c))
    i = np.arange(length)
    return getitem(moved, (Ellipsis, i + start_r, i + start_c))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the ``offset``-th diagonal of the planes (axis1, axis2)."""
    return reduce_sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(x: Any, k: int = 0) -> Tensor:
    """For a vector: the square matrix with it on the k-th diagonal (zeros elsewhere). For
    a matrix: its k-th diagonal."""
    shape = _shape(x)
    if len(shape) == 2:
        return diagonal(x, k)
    if len(shape) != 1:
        raise ValueError(f"diag: needs a 1-D or 2-D input, got shape {shape}.")
    n = shape[0]
    size = n + abs(k)
    index = np.full((size, size), n)  # n points at the appended zero
    i = np.arange(n)
    index[i + max(-k, 0), i + max(k, 0)] = i
    padded = concatenate([x, np.zeros((1,), dtype=raw(x).dtype)], axis=0)
    return take(padded, index, axis=0)


def diagflat(x: Any, k: int = 0) -> Tensor:
    """The square matrix with the flattened x on its k-th diagonal."""
    return diag(reshape(x, (-1,)), k)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Tensor:  # noqa: N803
    """An N x M matrix with ones at and below the k-th diagonal, zeros above (a constant)."""
    return Tensor._make(np.tri(N, M, k, dtype=_dtype(dtype)))


def identity(n: int, dtype: Any = None) -> Tensor:
    """The n x n identity matrix (a constant, ``floatx`` unless ``dtype``)."""
    return Tensor._make(np.identity(n, dtype=_dtype(dtype)))


def _reshaped(xs: Any, rank: int) -> list:
    """Each tensor given NumPy's ``atleast_{rank}d`` shape."""
    out = []
    for x in xs:
        shape = _shape(x)
        if len(shape) < rank:
            if rank == 2:
                shape = (1, *shape) if shape else (1, 1)
            elif len(shape) == 0:
                shape = (1, 1, 1)
            elif len(shape) == 1:
                shape = (1, shape[0], 1)
            else:
                shape = (*shape, 1)
            x = reshape(x, shape)
        out.append(x)
    return out


def hstack(xs: Any) -> Tensor:
    """Join along axis 1 (axis 0 for 1-D tensors), as NumPy's ``hstack``."""
    xs = [reshape(x, (1,)) if not _shape(x) else x for x in xs]
    return concatenate(xs, axis=0 if len(_shape(xs[0])) == 1 else 1)


def vstack(xs: Any) -> Tensor:
    """Join along axis 0 after making every tensor at least 2-D (a vector is a row)."""
    return concatenate(_reshaped(xs, 2), axis=0)


def dstack(xs: Any) -> Tensor:
    """Join along axis 2 after making every tensor at least 3-D ((n,) -> (1, n, 1),
    (m, n) -> (m, n, 1))."""
    return concatenate(_reshaped(xs, 3), axis=2)


def array_split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Cut x along ``axis`` into that many parts (an int; the first ``n % sections`` get one
    element more, as NumPy's ``array_split``) or at the given indices."""
    shape = _shape(x)
    axis = _axis(axis, len(shape), "array_split")
    if not isinstance(indices_or_sections, (int, np.integer)):
        return split(x, indices_or_sections, axis=axis)
    sections = int(indices_or_sections)
    if sections <= 0:
        raise ValueError(f"array_split: the number of sections must be > 0, got {sections}.")
    size, extra = divmod(shape[axis], sections)
    bounds = np.cumsum([size + 1] * extra + [size] * (sections - extra))[:-1]
    return split(x, [int(b) for b in bounds], axis=axis)


def hsplit(x: Any, indices_or_sections: Any) -> list[Tensor]:
    """``split`` along axis 1 (axis 0 for 1-D tensors)."""
    return split(x, indices_or_sections, axis=0 if len(_shape(x)) == 1 else 1)


def vsplit(x: Any, indices_or_sections: Any) -> list[Tensor]:
    """``split`` along axis 0 (needs at least 2 axes)."""
    if len(_shape(x)) < 2:
        raise ValueError(f"vsplit: needs at least 2 axes, got shape {_shape(x)}.")
    return split(x, indices_or_sections, axis=0)


def unstack(x: Any, num: int | None = None, axis: int = 0) -> list[Tensor]:
    """The slices of x along ``axis``, that axis removed (``num``, when given, must be its
    size)."""
    shape = _shape(x)
    axis = _axis(axis, len(shape), "unstack")
    if num is not None and num != shape[axis]:
        raise ValueError(f"unstack: num={num} but axis {axis} of shape {shape} has {shape[axis]}.")
    lead = (slice(None),) * axis
    return [getitem(x, (*lead, i)) for i in range(shape[axis])]


def append(x1: Any, x2: Any, axis: int | None = None) -> Tensor:
    """x2 joined after x1 along ``axis`` (both flattened when None)."""
    if axis is None:
        return concatenate([reshape(x1, (-1,)), reshape(x2, (-1,))], axis=0)
    return concatenate([x1, x2], axis=axis)


def copy(x: Any) -> Tensor:
    """A new tensor with x's values (gradient g)."""
    data = raw(x)
    if data.dtype.kind not in "fc":
        return Tensor._make(data.copy())
    return multiply(x, np.ones((), dtype=data.dtype))


def meshgrid(*x: Any, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-D tensors: with ``indexing="xy"`` (Cartesian, the default)
    the first two outputs axes are swapped relative to ``"ij"`` (matrix indexing)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}.")
    sizes = [int(np.prod(_shape(v), dtype=np.int64)) for v in x]
    shape = list(sizes)
    if indexing == "xy" and len(sizes) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    grids = []
    for i, v in enumerate(x):
        axis = i
        if indexing == "xy" and i < 2 and len(sizes) >= 2:
            axis = 1 - i
        view = [1] * len(sizes)
        view[axis] = sizes[i]
        grids.append(broadcast_to(reshape(v, view), shape))
    return grids
