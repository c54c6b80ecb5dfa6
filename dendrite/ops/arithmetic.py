"""Binary arithmetic with NumPy broadcasting: add, subtract, multiply, divide, power.

For ``z = a op b`` broadcast to a common shape, each VJP is computed at that shape and summed
back to the operand's own shape (``unbroadcast``):

- add:      dL/da = g,            dL/db = g
- subtract: dL/da = g,            dL/db = -g
- multiply: dL/da = g * b,        dL/db = g * a
- divide:   dL/da = g / b,        dL/db = -g * a / b^2
- power:    dL/da = g * b a^(b-1), dL/db = g * a^b ln(a)   (taken as 0 where a <= 0)

and two compositions: ``floor_divide(a, b) = floor(a / b)`` (a step function: its gradient
is zero wherever it is defined, so the result is a plain tensor) and
``mod(a, b) = a - floor(a / b) * b`` (the sign of ``b``, as Python's ``%``; dL/da = g,
dL/db = -g floor(a / b)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import broadcast_error, unbroadcast


@register("add")
class Add(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.saved = (a.shape, b.shape)
        try:
            return a + b
        except ValueError:
            raise broadcast_error("add", a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        sa, sb = self.saved
        return unbroadcast(g, sa), unbroadcast(g, sb)


@register("subtract")
class Subtract(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.saved = (a.shape, b.shape)
        try:
            return a - b
        except ValueError:
            raise broadcast_error("subtract", a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        sa, sb = self.saved
        return unbroadcast(g, sa), (unbroadcast(-g, sb) if self.needs_grad[1] else None)


@register("multiply")
class Multiply(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.saved = (a, b)
        try:
            return a * b
        except ValueError:
            raise broadcast_error("multiply", a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        a, b = self.saved
        ga = unbroadcast(g * b, a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(g * a, b.shape) if self.needs_grad[1] else None
        return ga, gb


@register("divide")
class Divide(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.saved = (a, b)
        try:
            return a / b
        except ValueError:
            raise broadcast_error("divide", a, b) from None

    def backward(self, g: np.ndarray) -> tuple:
        a, b = self.saved
        ga = unbroadcast(g / b, a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if self.needs_grad[1] else None
        return ga, gb


@register("power")
class Power(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            out = np.power(a, b)
        except ValueError:
            raise broadcast_error("power", a, b) from None
        self.saved = (a, b, out)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        a, b, out = self.saved
        ga = gb = None
        if self.needs_grad[0]:
            ga = unbroadcast(g * b * np.power(a, b - 1), a.shape)
        if self.needs_grad[1]:
            positive = a > 0
            log_a = np.log(np.where(positive, a, 1))
            gb = unbroadcast(g * out * log_a, b.shape)
        return ga, gb


def add(x1: Any, x2: Any) -> Tensor:
    """x1 + x2, broadcasting."""
    return Add.apply(x1, x2)


def subtract(x1: Any, x2: Any) -> Tensor:
    """x1 - x2, broadcasting."""
    return Subtract.apply(x1, x2)


def multiply(x1: Any, x2: Any) -> Tensor:
    """x1 * x2, element-wise, broadcasting."""
    return Multiply.apply(x1, x2)


def divide(x1: Any, x2: Any) -> Tensor:
    """x1 / x2, element-wise true division, broadcasting."""
    return Divide.apply(x1, x2)


def true_divide(x1: Any, x2: Any) -> Tensor:
    """Alias of ``divide``."""
    return Divide.apply(x1, x2)


def power(x1: Any, x2: Any) -> Tensor:
    """x1 ** x2, element-wise, broadcasting."""
    return Power.apply(x1, x2)


def floor_divide(x1: Any, x2: Any) -> Tensor:
    """x1 // x2 = floor(x1 / x2), element-wise, broadcasting; not differentiable (a plain
    result), as NumPy's ``floor_divide``."""
    a = x1.data if isinstance(x1, Tensor) else np.asarray(x1)
    b = x2.data if isinstance(x2, Tensor) else np.asarray(x2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return Tensor._make(np.floor_divide(a, b))


def mod(x1: Any, x2: Any) -> Tensor:
    """x1 % x2 = x1 - floor(x1 / x2) * x2, element-wise (the result has the sign of x2, as
    Python's and NumPy's ``%``); differentiable in both arguments."""
    return subtract(x1, multiply(floor_divide(x1, x2), x2))
