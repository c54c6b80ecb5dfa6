"""Reductions: sum and mean.

For ``s = sum_{axes} x`` every element contributes once: dL/dx = g broadcast back over the
reduced axes. For the mean, dL/dx = g / n with n the number of elements reduced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import normalize_axis, reduced_grad


@register("sum")
class Sum(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = normalize_axis(axis, x.ndim)
        self.saved = (x.shape, axes, keepdims)
        return np.sum(x, axis=axes, keepdims=keepdims)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdims = self.saved
        return np.broadcast_to(reduced_grad(g, shape, axes, keepdims), shape)


@register("mean")
class Mean(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = normalize_axis(axis, x.ndim)
        count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        self.saved = (x.shape, axes, keepdims, count)
        return np.mean(x, axis=axes, keepdims=keepdims)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdims, count = self.saved
        g = reduced_grad(g, shape, axes, keepdims) / max(count, 1)
        return np.broadcast_to(g, shape)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when None)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (all axes when None)."""
    return Mean.apply(x, axis=axis, keepdims=keepdims)
