"""Element-wise functions of one tensor and their derivatives.

- negative: y = -x,          dy/dx = -1
- exp:      y = e^x,         dy/dx = y
- log:      y = ln x,        dy/dx = 1/x
- relu:     y = max(x, 0),   dy/dx = 1 where x > 0 else 0 (0 at x = 0, no NaN)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register


@register("negative")
class Negative(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, g: np.ndarray) -> np.ndarray:
        return -g


@register("exp")
class Exp(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.exp(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.saved


@register("log")
class Log(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.log(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g / self.saved


@register("relu")
class Relu(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.maximum(x, 0)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * (self.saved > 0)


def negative(x: Any) -> Tensor:
    """-x."""
    return Negative.apply(x)


def exp(x: Any) -> Tensor:
    """e^x, element-wise."""
    return Exp.apply(x)


def log(x: Any) -> Tensor:
    """Natural logarithm, element-wise."""
    return Log.apply(x)


def relu(x: Any) -> Tensor:
    """max(x, 0), element-wise (gradient 0 at 0)."""
    return Relu.apply(x)
