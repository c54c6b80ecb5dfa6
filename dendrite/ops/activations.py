"""Activation functions (Keras 3 names and defaults), with stable fused derivatives.

Element-wise ``y = f(x)``, so ``dL/dx = g * f'(x)``. With ``s(x) = 1 / (1 + e^-x)``:

- relu:       max(x, 0);                        f' = [x > 0] (0 at x = 0, no NaN)
- relu6:      min(max(x, 0), 6);                f' = [0 < x < 6]
- leaky_relu: x if x > 0 else a x;              f' = 1 if x > 0 else a   (a = negative_slope)
- elu:        x if x > 0 else a (e^x - 1);      f' = 1 if x > 0 else y + a
- sigmoid:    s(x), as e^-|x| based forms;     f' = y (1 - y)
- softplus:   ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|);  f' = s(x)
- softsign:   x / (1 + |x|);                    f' = 1 / (1 + |x|)^2
- silu:       x s(x);                           f' = s(x) (1 + x (1 - s(x)))
- gelu exact: x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  f' = Phi(x) + x phi(x)
- gelu tanh:  x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3);
              f' = (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2, t = tanh u

The stable forms never evaluate e^x for large positive x, so nothing overflows for |x| > 100
in float32. selu, hard_sigmoid, hard_silu, log_sigmoid and linear are compositions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, as_array, register
from dendrite.ops._util import relu_grad
from dendrite.ops.arithmetic import add, divide, multiply
from dendrite.ops.unary import erf_array, negative

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715
# Klambauer et al. (2017), the constants Keras uses.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """s(x) without overflow: 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0."""
    e = np.exp(-np.abs(x))
    inverse = 1 / (1 + e)
    return np.where(x >= 0, inverse, e * inverse)


@register("relu")
class Relu(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.maximum(x, 0)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return relu_grad(g, self.saved)


@register("relu6")
class Relu6(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.minimum(np.maximum(x, 0), 6)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        return g * ((x > 0) & (x < 6))


@register("leaky_relu")
class LeakyRelu(Function):
    def forward(self, x: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
        positive = x > 0
        self.saved = (positive, negative_slope)
        return np.where(positive, x, x * negative_slope)

    def backward(self, g: np.ndarray) -> np.ndarray:
        positive, slope = self.saved
        return np.where(positive, g, g * slope)


@register("elu")
class Elu(Function):
    def forward(self, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        positive = x > 0
        out = np.where(positive, x, alpha * np.expm1(np.minimum(x, 0)))
        self.saved = (positive, out, alpha)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        positive, out, alpha = self.saved
        return np.where(positive, g, g * (out + alpha))


@register("sigmoid")
class Sigmoid(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = _sigmoid(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y = self.saved
        return g * y * (1 - y)


@register("softplus")
class Softplus(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * _sigmoid(self.saved)


@register("softsign")
class Softsign(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        denominator = 1 + np.abs(x)
        self.saved = denominator
        return x / denominator

    def backward(self, g: np.ndarray) -> np.ndarray:
        d = self.saved
        return g / (d * d)


@register("silu")
class Silu(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        s = _sigmoid(x)
        self.saved = (x, s)
        return x * s

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, s = self.saved
        return g * (s * (1 + x * (1 - s)))


@register("gelu")
class Gelu(Function):
    def forward(self, x: np.ndarray, approximate: bool = True) -> np.ndarray:
        if approximate:
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
            self.saved = (x, t, True)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + erf_array(x * _INV_SQRT_2))
        self.saved = (x, cdf, False)
        return x * cdf

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, value, approximate = self.saved
        if approximate:
            t = value
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return g * (value + x * pdf)


def relu(x: Any) -> Tensor:
    """max(x, 0) (gradient 0 at 0)."""
    return Relu.apply(x)


def relu6(x: Any) -> Tensor:
    """min(max(x, 0), 6)."""
    return Relu6.apply(x)


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise (Keras' default slope 0.2)."""
    return LeakyRelu.apply(x, negative_slope=float(negative_slope))


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: x for x > 0, ``alpha * (e^x - 1)`` otherwise."""
    return Elu.apply(x, alpha=float(alpha))


def selu(x: Any) -> Tensor:
    """Scaled ELU: ``scale * elu(x, alpha)`` with Klambauer et al.'s constants."""
    return multiply(elu(x, alpha=SELU_ALPHA), SELU_SCALE)


def gelu(x: Any, approximate: bool = True) -> Tensor:
    """Gaussian error linear unit, ``x * Phi(x)``.

    Args:
        x: input.
        approximate: use the tanh approximation (Keras' default); ``False`` gives the exact
            form through erf (PyTorch's default).
    """
    return Gelu.apply(x, approximate=bool(approximate))


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e^-x), stable for any |x|. The result remembers its logits
    (``_origin``), recorded or not, for a binary cross-entropy that follows."""
    logits = x if isinstance(x, Tensor) else Tensor._make(as_array(x))
    out = Sigmoid.apply(logits)
    out._origin = ("sigmoid", logits, ())
    return out


def softplus(x: Any) -> Tensor:
    """ln(1 + e^x), stable for any |x|."""
    return Softplus.apply(x)


def softsign(x: Any) -> Tensor:
    """x / (1 + |x|)."""
    return Softsign.apply(x)


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return Silu.apply(x)


swish = silu


def hard_sigmoid(x: Any) -> Tensor:
    """Keras 3's piecewise-linear sigmoid: ``relu6(x + 3) / 6``."""
    return divide(relu6(add(x, 3)), 6)


def hard_silu(x: Any) -> Tensor:
    """``x * hard_sigmoid(x)`` (also called hard_swish)."""
    return multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def log_sigmoid(x: Any) -> Tensor:
    """ln s(x) = -softplus(-x), stable for any |x|."""
    return negative(softplus(negative(x)))


def linear(x: Any) -> Tensor:
    """The identity (Keras' ``linear`` activation): returns x itself."""
    return x if isinstance(x, Tensor) else Tensor(x)
