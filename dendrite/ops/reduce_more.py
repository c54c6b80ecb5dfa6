"""More reductions with Keras 3's names: prod and cumsum (primitives), cumprod, all, any.

- prod over axes: p = prod_i x_i, dL/dx_i = g prod_{j != i} x_j. The product of the others
  is computed from exclusive running products from both ends (left_i * right_i), so it is
  exact when some x_j are zero, where g p / x_i would divide by zero;
- cumsum along an axis: y_k = sum_{i <= k} x_i, dL/dx_i = sum_{k >= i} g_k (a reversed
  cumulative sum of g);
- cumprod along an axis: y_k = prod_{i <= k} x_i, a composition
  exp(cumsum(log|x|)) would fail at zeros, so it is a primitive too:
  dL/dx_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j, computed by the same
  exclusive-product trick along the axis (quadratic only in the axis length);
- all / any: plain boolean results (no gradient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import normalize_axis, raw, reduced_grad


def _axes(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    try:
        return normalize_axis(axis, ndim)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None


def _products_of_the_others(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """For each element, the product of the other elements of its reduction group."""
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    flat = moved.reshape(moved.shape[: x.ndim - len(axes)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return np.moveaxis(others, tuple(range(x.ndim - len(axes), x.ndim)), axes)


@register("prod")
class Prod(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = _axes(axis, x.ndim, "prod")
        self.saved = (x, axes, keepdims)
        return np.prod(x, axis=axes, keepdims=keepdims)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, axes, keepdims = self.saved
        every = tuple(range(x.ndim)) if axes is None else axes
        others = _products_of_the_others(x, every) if x.ndim else np.ones_like(x)
        return (reduced_grad(g, x.shape, axes, keepdims) * others).astype(g.dtype, copy=False)


@register("cumsum")
class Cumsum(Function):
    def forward(self, x: np.ndarray, axis: int = 0) -> np.ndarray:
        self.saved = axis
        return np.cumsum(x, axis=axis, dtype=x.dtype)

    def backward(self, g: np.ndarray) -> np.ndarray:
        axis = self.saved
        return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


@register("cumprod")
class Cumprod(Function):
    def forward(self, x: np.ndarray, axis: int = 0) -> np.ndarray:
        self.saved = (x, axis)
        return np.cumprod(x, axis=axis, dtype=x.dtype)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, axis = self.saved
        xs = np.moveaxis(x, axis, -1)
        gs = np.moveaxis(g, axis, -1)
        n = xs.shape[-1]
        grad = np.zeros_like(xs)
        for i in range(n):
            # d y_k / d x_i for k >= i: the product of x_0..x_k without x_i.
            before = np.prod(xs[..., :i], axis=-1, keepdims=True)
            after = np.cumprod(xs[..., i + 1 :], axis=-1)
            partial = np.concatenate([before, before * after], axis=-1)
            grad[..., i] = np.sum(gs[..., i:] * partial, axis=-1)
        return np.moveaxis(grad, -1, axis)


def _axis_index(x: Any, axis: Any, op: str) -> tuple[Any, int]:
    ndim = x.ndim if isinstance(x, (Tensor, np.ndarray)) else np.ndim(x)
    if axis is None:
        from dendrite.ops.movement import reshape

        return reshape(x, (-1,)), 0
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of rank {ndim}.")
    return x, int(axis) % max(ndim, 1)


def _in_dtype(out: Tensor, dtype: Any) -> Tensor:
    """``out`` cast to ``dtype`` when one is asked for (Keras' ``dtype=`` argument)."""
    if dtype is None:
        return out
    from dendrite.ops.creation import cast

    return cast(out, dtype)


def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tensor:
    """Product over ``axis`` (all axes when None); exact gradients with zeros present."""
    out = Prod.apply(x, axis=axis, keepdims=keepdims)
    return _in_dtype(out, dtype)


def cumsum(x: Any, axis: Any = None, dtype: Any = None) -> Tensor:
    """Running sum along ``axis`` (of the flattened tensor when None)."""
    x, axis = _axis_index(x, axis, "cumsum")
    out = Cumsum.apply(x, axis=axis)
    return _in_dtype(out, dtype)


def cumprod(x: Any, axis: Any = None, dtype: Any = None) -> Tensor:
    """Running product along ``axis`` (of the flattened tensor when None)."""
    x, axis = _axis_index(x, axis, "cumprod")
    out = Cumprod.apply(x, axis=axis)
    return _in_dtype(out, dtype)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (over ``axis``) is true; a plain boolean tensor."""
    return Tensor._make(np.asarray(np.all(raw(x), axis=axis, keepdims=keepdims)))


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether some element (over ``axis``) is true; a plain boolean tensor."""
    return Tensor._make(np.asarray(np.any(raw(x), axis=axis, keepdims=keepdims)))
