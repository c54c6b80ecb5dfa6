"""More products with Keras 3's names, compositions of multiply, sum and tensordot:

- inner(a, b) = sum over the last axes of a and b (``tensordot`` with axes ([-1], [-1]));
  a number times a tensor when either is a scalar;
- vdot(a, b) = sum(ravel(a) * ravel(b));
- kron(a, b): with both at rank r (the smaller one padded with leading 1s),
  ``a[i1, ..] b[j1, ..]`` at ``(i1 n1 + j1, ...)``: a broadcast product of a reshaped to
  (m1, 1, m2, 1, ...) and b to (1, n1, 1, n2, ...), then merged axes;
- cross(a, b): the vector product of 3-vectors (or 2-vectors, taken with a zero third
  component; two 2-vectors give the scalar z component), along axisa / axisb, the result's
  vector axis at axisc (``axis`` sets all three).

Every gradient follows from those ops (for cross: dL/da = b x g, dL/db = g x a).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import multiply, subtract
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import stack
from dendrite.ops.linalg import tensordot
from dendrite.ops.movement import broadcast_to, moveaxis, reshape
from dendrite.ops.reduce import sum as reduce_sum


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, (Tensor, np.ndarray)) else np.shape(raw(x))


def inner(x1: Any, x2: Any) -> Tensor:
    """The inner product over the last axes (NumPy's ``inner``)."""
    s1, s2 = _shape(x1), _shape(x2)
    if not s1 or not s2:
        return multiply(x1, x2)
    if s1[-1] != s2[-1]:
        raise ValueError(f"inner: the last axes differ in size: shapes {s1} and {s2}.")
    return tensordot(x1, x2, axes=([len(s1) - 1], [len(s2) - 1]))


def vdot(x1: Any, x2: Any) -> Tensor:
    """The dot product of the flattened operands (a scalar)."""
    a, b = reshape(x1, (-1,)), reshape(x2, (-1,))
    if _shape(a) != _shape(b):
        raise ValueError(f"vdot: sizes differ: shapes {_shape(x1)} and {_shape(x2)}.")
    return reduce_sum(multiply(a, b))


def kron(x1: Any, x2: Any) -> Tensor:
    """The Kronecker product: blocks ``x1[i] * x2``."""
    s1, s2 = _shape(x1), _shape(x2)
    rank = max(len(s1), len(s2))
    s1 = (1,) * (rank - len(s1)) + s1
    s2 = (1,) * (rank - len(s2)) + s2
    a = reshape(x1, tuple(d for n in s1 for d in (n, 1)))
    b = reshape(x2, tuple(d for n in s2 for d in (1, n)))
    return reshape(multiply(a, b), tuple(m * n for m, n in zip(s1, s2)))


def cross(
    x1: Any, x2: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None
) -> Tensor:
    """The cross product of 2- or 3-vectors along ``axisa`` / ``axisb`` (NumPy's rules)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(x1, axisa, -1), moveaxis(x2, axisb, -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(
            f"cross: the vector axes must have size 2 or 3, got {na} and {nb} "
            f"(shapes {_shape(x1)} and {_shape(x2)})."
        )

    def part(v: Any, i: int, n: int) -> Any:
        return getitem(v, (Ellipsis, i)) if i < n else None

    a0, a1, a2 = (part(a, i, na) for i in range(3))
    b0, b1, b2 = (part(b, i, nb) for i in range(3))
    z = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2 and nb == 2:
        return z

    def times(u: Any, v: Any) -> Any:
        return None if u is None or v is None else multiply(u, v)

    def minus(u: Any, v: Any) -> Any:
        if v is None:
            return u
        return multiply(v, -1.0) if u is None else subtract(u, v)

    x = minus(times(a1, b2), times(a2, b1))
    y = minus(times(a2, b0), times(a0, b2))
    out = stack(_broadcast((x, y, z)), axis=-1)
    return moveaxis(out, -1, axisc)


def _broadcast(parts: tuple) -> list:
    """The three components at one common shape (a 2-vector's missing terms are smaller)."""
    shape = np.broadcast_shapes(*[_shape(t) for t in parts])
    return [t if _shape(t) == shape else broadcast_to(t, shape) for t in parts]
