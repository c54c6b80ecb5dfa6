"""Comparisons, and the selections they drive: maximum, minimum, clip, where.

Comparisons (``equal``, ``less``, ..., ``logical_and``, ...) give plain boolean tensors: no
gradient flows through a yes/no answer.

The selections route the upstream gradient ``g`` to whichever input was picked:

- maximum(a, b): dL/da = g [a > b] + g/2 [a = b],  dL/db = g [b > a] + g/2 [a = b]
  (ties split half and half, as PyTorch does; TensorFlow gives a tie wholly to ``a``);
  minimum likewise with ``<``;
- clip(x, lo, hi): dL/dx = g [lo <= x <= hi] (the bounds count as inside, as in PyTorch's
  ``clamp``); the bounds are constants and get no gradient;
- where(c, a, b): dL/da = g [c], dL/db = g [not c]; the condition gets none.

Each gradient is summed back over broadcast axes (``unbroadcast``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import broadcast_error, raw, unbroadcast


def _compared(ufunc: Any, name: str) -> Any:
    def compare(x1: Any, x2: Any) -> Tensor:
        a = x1.data if isinstance(x1, Tensor) else x1
        b = x2.data if isinstance(x2, Tensor) else x2
        try:
            return Tensor._make(np.asarray(ufunc(a, b)))
        except ValueError:
            raise broadcast_error(name, np.asarray(a), np.asarray(b)) from None

    compare.__name__ = name
    compare.__doc__ = f"Element-wise ``{name}``, broadcasting; a plain boolean tensor."
    return compare


equal = _compared(np.equal, "equal")
not_equal = _compared(np.not_equal, "not_equal")
less = _compared(np.less, "less")
less_equal = _compared(np.less_equal, "less_equal")
greater = _compared(np.greater, "greater")
greater_equal = _compared(np.greater_equal, "greater_equal")
logical_and = _compared(np.logical_and, "logical_and")
logical_or = _compared(np.logical_or, "logical_or")
logical_xor = _compared(np.logical_xor, "logical_xor")


def logical_not(x: Any) -> Tensor:
    """Element-wise not; a plain boolean tensor."""
    return Tensor._make(np.logical_not(raw(x)))


def isnan(x: Any) -> Tensor:
    """Where x is NaN; a plain boolean tensor."""
    return Tensor._make(np.isnan(raw(x)))


def isfinite(x: Any) -> Tensor:
    """Where x is neither infinite nor NaN; a plain boolean tensor."""
    return Tensor._make(np.isfinite(raw(x)))


class _Extremum(Function):
    """maximum / minimum: the picked side gets g, a tie gives g/2 to each."""

    _pick = staticmethod(np.maximum)
    _name = "maximum"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            out = self._pick(a, b)
        except ValueError:
            raise broadcast_error(self._name, a, b) from None
        self.saved = (a, b, out)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        a, b, out = self.saved
        hit_a = a == out
        hit_b = b == out
        # 1 where only this side was picked, 0.5 at a tie, 0 where the other side won.
        share = hit_a.astype(g.dtype) - hit_b * np.asarray(0.5, g.dtype) * hit_a
        ga = unbroadcast(g * share, a.shape) if self.needs_grad[0] else None
        gb = None
        if self.needs_grad[1]:
            share_b = hit_b.astype(g.dtype) - hit_a * np.asarray(0.5, g.dtype) * hit_b
            gb = unbroadcast(g * share_b, b.shape)
        return ga, gb


@register("maximum")
class Maximum(_Extremum):
    _pick = staticmethod(np.maximum)
    _name = "maximum"


@register("minimum")
class Minimum(_Extremum):
    _pick = staticmethod(np.minimum)
    _name = "minimum"


@register("clip")
class Clip(Function):
    def forward(self, x: np.ndarray, x_min: Any = None, x_max: Any = None) -> np.ndarray:
        self.saved = (x, x_min, x_max)
        out = np.clip(x, x_min, x_max)
        return out.astype(x.dtype, copy=False)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, lo, hi = self.saved
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return g * inside


@register("where")
class Where(Function):
    def forward(self, a: np.ndarray, b: np.ndarray, condition: Any = None) -> np.ndarray:
        self.saved = (condition, a.shape, b.shape)
        try:
            return np.where(condition, a, b)
        except ValueError:
            raise broadcast_error("where", np.asarray(condition), a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        condition, sa, sb = self.saved
        zero = np.zeros((), dtype=g.dtype)
        ga = unbroadcast(np.where(condition, g, zero), sa) if self.needs_grad[0] else None
        gb = unbroadcast(np.where(condition, zero, g), sb) if self.needs_grad[1] else None
        return ga, gb


def maximum(x1: Any, x2: Any) -> Tensor:
    """Element-wise larger of x1 and x2, broadcasting (a tie splits the gradient evenly)."""
    return Maximum.apply(x1, x2)


def minimum(x1: Any, x2: Any) -> Tensor:
    """Element-wise smaller of x1 and x2, broadcasting (a tie splits the gradient evenly)."""
    return Minimum.apply(x1, x2)


def clip(x: Any, x_min: Any, x_max: Any) -> Tensor:
    """Limit x to [x_min, x_max] (Keras' argument names); either bound may be None.

    The gradient passes where ``x_min <= x <= x_max`` (bounds included) and is 0 outside.
    """
    if x_min is None and x_max is None:
        raise ValueError("clip: at least one of x_min and x_max must be given.")
    return Clip.apply(x, x_min=_bound(x_min), x_max=_bound(x_max))


def _bound(value: Any) -> Any:
    if value is None or isinstance(value, (int, float)):
        return value
    return raw(value)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """Pick ``x1`` where ``condition`` holds and ``x2`` elsewhere, broadcasting all three.

    With only ``condition``, the indices of its non-zero elements (a tuple of plain integer
    tensors, one per axis), as in NumPy and Keras.
    """
    condition = raw(condition)
    if x1 is None and x2 is None:
        return tuple(Tensor._make(i) for i in np.nonzero(condition))
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither.")
    return Where.apply(x1, x2, condition=condition.astype(bool, copy=False))
