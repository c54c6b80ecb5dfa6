"""Indexing: ``x[index]`` (the primitive) and the gathers built on it: take,
take_along_axis, repeat.

``y = x[index]`` reads some elements of x, possibly several times. The VJP scatters the
gradient back into zeros of x's shape, adding where an index repeats:
``dL/dx[j] = sum over the positions i that read j of g[i]`` (``np.add.at``; plain assignment
for basic indexing, which never repeats an element).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.movement import reshape


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _plain_index(index: Any) -> Any:
    """Indices given as Tensors become their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


@register("getitem")
class GetItem(Function):
    def forward(self, x: np.ndarray, index: Any = None) -> np.ndarray:
        self.saved = (x.shape, index)
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, index = self.saved
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing."""
    return GetItem.apply(x, index=_plain_index(index))


def get_item(x: Any, key: Any) -> Tensor:
    """``x[key]``: ``getitem`` under Keras' public name and argument name."""
    return GetItem.apply(x, index=_plain_index(key))


def _ndim(x: Any) -> int:
    return x.ndim if isinstance(x, (Tensor, np.ndarray)) else np.ndim(x)


def _axis(axis: Any, ndim: int, op: str) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of rank {ndim}.")
    return int(axis) % max(ndim, 1)


def take(x: Any, indices: Any, axis: Any = None) -> Tensor:
    """Elements of x at ``indices`` along ``axis`` (of the flattened x when None).

    The result has shape ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]``.
    """
    idx = raw(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"take: indices must be integers, got dtype {idx.dtype}.")
    if axis is None:
        return getitem(reshape(x, (-1,)), idx)
    axis = _axis(axis, _ndim(x), "take")
    return getitem(x, (slice(None),) * axis + (idx,))


def take_along_axis(x: Any, indices: Any, axis: Any = None) -> Tensor:
    """Pick, along ``axis``, the elements named by ``indices`` (NumPy's take_along_axis).

    ``indices`` has x's rank; its other axes broadcast against x's. Used, for example, to
    read the log-probability of each sample's label.
    """
    idx = raw(indices)
    if axis is None:
        x = reshape(x, (-1,))
        idx = idx.reshape(-1)
        axis = 0
    shape = x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)
    ndim = len(shape)
    axis = _axis(axis, ndim, "take_along_axis")
    if idx.ndim != ndim:
        raise ValueError(
            f"take_along_axis: indices of shape {idx.shape} must have the rank of x, whose "
            f"shape is {tuple(shape)}."
        )
    index = []
    for d in range(ndim):
        if d == axis:
            index.append(idx)
        else:
            position = [1] * ndim
            position[d] = shape[d]
            index.append(np.arange(shape[d]).reshape(position))
    return getitem(x, tuple(index))


def repeat(x: Any, repeats: Any, axis: Any = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (flattened when None), as NumPy.

    A gather: ``take`` with the index ``[0, 0, 1, 1, ...]``.
    """
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    shape = x.shape if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)
    axis = _axis(axis, len(shape), "repeat")
    index = np.repeat(np.arange(shape[axis]), raw(repeats))
    return take(x, index, axis=axis)
