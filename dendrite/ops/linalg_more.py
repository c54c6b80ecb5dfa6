"""Compositions with Keras 3's names: norm, outer, dot, tril, triu, linspace.

- norm: vector norms ``(sum |x|^p)^(1/p)`` (p = 2 by default, 1, inf = max |x|) and the
  Frobenius norm of matrices, built from differentiable ops;
- outer(a, b) = a_i b_j (flattened operands);
- dot: NumPy's ``dot`` (matmul for 2-D, the inner product for 1-D, a scalar product);
- tril / triu: x times the lower / upper triangular 0/1 mask of its last two axes
  (gradient: g times the same mask);
- linspace: evenly spaced numbers (a constant, no gradient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import multiply, power
from dendrite.ops.linalg import matmul, tensordot
from dendrite.ops.movement import reshape
from dendrite.ops.reduce import max as reduce_max
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.unary import abs as absolute
from dendrite.ops.unary import sqrt, square


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A002
    """The vector norm over ``axis`` (all elements when None: the Frobenius norm)."""
    if ord in (None, 2, "fro", "euclidean"):
        return sqrt(reduce_sum(square(x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return reduce_sum(absolute(x), axis=axis, keepdims=keepdims)
    if ord in (np.inf, "inf"):
        return reduce_max(absolute(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, (int, float)) and ord > 0:
        total = reduce_sum(power(absolute(x), float(ord)), axis=axis, keepdims=keepdims)
        return power(total, 1.0 / float(ord))
    raise ValueError(f"norm: unsupported ord {ord!r} (None, 'fro', 1, 2, inf or p > 0).")


def outer(x1: Any, x2: Any) -> Tensor:
    """The outer product of the flattened operands: shape (x1.size, x2.size)."""
    return multiply(reshape(x1, (-1, 1)), reshape(x2, (1, -1)))


def dot(x1: Any, x2: Any) -> Tensor:
    """NumPy's ``dot``: matmul for 2-D operands, the inner product of 1-D ones, the last
    axis of x1 with the second-to-last of x2 otherwise."""
    a, b = np.ndim(raw(x1)), np.ndim(raw(x2))
    if a == 0 or b == 0:
        return multiply(x1, x2)
    if b == 1 or (a <= 2 and b <= 2):
        return matmul(x1, x2)
    return tensordot(x1, x2, axes=([a - 1], [b - 2]))


def _triangle(x: Any, k: int, lower: bool) -> Tensor:
    shape = np.shape(raw(x))
    if len(shape) < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs at least 2 axes, got {shape}.")
    ones = np.ones(shape[-2:], dtype=bool)
    mask = np.tril(ones, k) if lower else np.triu(ones, k)
    return multiply(x, mask.astype(raw(x).dtype))


def tril(x: Any, k: int = 0) -> Tensor:
    """x with the elements above the k-th diagonal set to zero."""
    return _triangle(x, k, lower=True)


def triu(x: Any, k: int = 0) -> Tensor:
    """x with the elements below the k-th diagonal set to zero."""
    return _triangle(x, k, lower=False)


def linspace(
    start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None, axis: int = 0
) -> Tensor:
    """``num`` evenly spaced numbers from start to stop (``floatx`` unless ``dtype``)."""
    values = np.linspace(raw(start), raw(stop), num, endpoint=endpoint, axis=axis)
    return Tensor._make(values.astype(dtype or _settings.floatx()))
