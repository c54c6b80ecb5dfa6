"""Ops that move elements without arithmetic: reshape, transpose, indexing.

Each VJP routes the gradient back to where the element came from: reshape back, transpose
by the inverse permutation, and indexing scatters into zeros (adding where an index
repeats).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register


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
        self.saved = (x.shape, x.dtype, index)
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, dtype, index = self.saved
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out


def reshape(x: Any, newshape: Any) -> Tensor:
    """The same elements in a new shape (one axis may be -1)."""
    shape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    return Reshape.apply(x, shape=shape)


def transpose(x: Any, axes: Any = None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None)."""
    return Transpose.apply(x, axes=axes)


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing."""
    return GetItem.apply(x, index=_plain_index(index))
