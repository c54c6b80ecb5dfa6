"""More element-wise functions of two tensors (broadcasting), with Keras 3's names.

Primitives, with ``r^2 = x1^2 + x2^2`` (each gradient summed back over broadcast axes):

- arctan2(x1, x2) = the angle of the point (x2, x1):
  dL/dx1 = g x2 / r^2,  dL/dx2 = -g x1 / r^2   (0 at the origin, where it has no slope);
- hypot(x1, x2) = r, without overflow for large x:
  dL/dx1 = g x1 / r,  dL/dx2 = g x2 / r        (0 at the origin).

Compositions:

- logaddexp(a, b) = ln(e^a + e^b) = max(a, b) + log1p(e^(-|a - b|)) (no overflow);
  d/da = sigmoid(a - b), and at a tie 1/2 each;
- fmod(a, b) = a - trunc(a / b) b (the sign of a, as C's fmod; ``mod`` takes b's sign):
  dL/da = g, dL/db = -g trunc(a / b);
- divide_no_nan(a, b) = a / b, and 0 where b = 0 (gradient 0 there, for both).

Not differentiable: heaviside(x1, x2) = 0 for x1 < 0, x2 at x1 = 0, 1 for x1 > 0 (plain).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import broadcast_error, raw, unbroadcast
from dendrite.ops.arithmetic import add, divide, multiply, subtract
from dendrite.ops.comparison import maximum, where
from dendrite.ops.unary import abs as absolute
from dendrite.ops.unary import exp, log1p
from dendrite.ops.unary_more import _float_input


def _radius_squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^2 + b^2, with 1 where both are 0 (their gradients are then 0 / 1 = 0)."""
    r2 = a * a + b * b
    return np.where(r2 == 0, 1, r2)


@register("arctan2")
class Arctan2(Function):
    """y = arctan2(x1, x2); dL/dx1 = g x2 / r^2, dL/dx2 = -g x1 / r^2."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.saved = (a, b)
        try:
            return np.arctan2(a, b)
        except ValueError:
            raise broadcast_error("arctan2", a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        a, b = self.saved
        scale = g / _radius_squared(a, b)
        ga = unbroadcast(scale * b, a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(-scale * a, b.shape) if self.needs_grad[1] else None
        return ga, gb


@register("hypot")
class Hypot(Function):
    """r = sqrt(x1^2 + x2^2); dL/dx1 = g x1 / r, dL/dx2 = g x2 / r."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            out = np.hypot(a, b)
        except ValueError:
            raise broadcast_error("hypot", a, b) from None
        self.saved = (a, b, out)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        a, b, r = self.saved
        scale = g / np.where(r == 0, 1, r)
        ga = unbroadcast(scale * a, a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(scale * b, b.shape) if self.needs_grad[1] else None
        return ga, gb


def arctan2(x1: Any, x2: Any) -> Tensor:
    """The angle of the point (x2, x1) in radians, in [-pi, pi], broadcasting."""
    return Arctan2.apply(_float_input(x1), _float_input(x2))


def hypot(x1: Any, x2: Any) -> Tensor:
    """sqrt(x1^2 + x2^2), element-wise, without overflow; broadcasting."""
    return Hypot.apply(_float_input(x1), _float_input(x2))


def logaddexp(x1: Any, x2: Any) -> Tensor:
    """ln(e^x1 + e^x2), element-wise, as ``max + log1p(e^(-|x1 - x2|))`` (no overflow)."""
    x1, x2 = _float_input(x1), _float_input(x2)
    return add(maximum(x1, x2), log1p(exp(-absolute(subtract(x1, x2)))))


def fmod(x1: Any, x2: Any) -> Tensor:
    """The remainder of x1 / x2 with the sign of x1 (C's ``fmod``; ``mod`` has x2's sign):
    ``x1 - trunc(x1 / x2) x2``; differentiable in both arguments for floats."""
    a, b = raw(x1), raw(x2)
    if np.result_type(a, b).kind in "biu":
        with np.errstate(divide="ignore", invalid="ignore"):
            return Tensor._make(np.fmod(a, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient = np.round((a - np.fmod(a, b)) / b)  # the whole number fmod took away
    return subtract(x1, multiply(quotient, x2))


def heaviside(x1: Any, x2: Any) -> Tensor:
    """The step function: 0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0; plain."""
    a, b = raw(x1), raw(x2)
    dtype = np.result_type(a, b)
    if dtype.kind in "biu":
        dtype = np.dtype("float32")
    return Tensor._make(np.heaviside(a, b).astype(dtype))


def divide_no_nan(x1: Any, x2: Any) -> Tensor:
    """x1 / x2, and 0 where x2 == 0 (instead of inf or NaN), broadcasting; the gradient is
    0 there too."""
    x1, x2 = _float_input(x1), _float_input(x2)
    zero = raw(x2) == 0
    safe = where(zero, np.ones((), dtype=raw(x2).dtype), x2)
    quotient = divide(x1, safe)
    return where(zero, np.zeros((), dtype=quotient.dtype), quotient)
