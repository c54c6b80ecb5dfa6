"""Element-wise functions of one tensor and their derivatives.

For ``y = f(x)`` applied element by element the Jacobian is diagonal, so the VJP is
``dL/dx = g * f'(x)``:

- negative:   y = -x,            f' = -1
- exp:        y = e^x,           f' = y
- expm1:      y = e^x - 1,       f' = y + 1
- log:        y = ln x,          f' = 1 / x
- log1p:      y = ln(1 + x),     f' = 1 / (1 + x)
- sqrt:       y = x^(1/2),       f' = 1 / (2 y)      (inf at 0: the maths has no slope there)
- square:     y = x^2,           f' = 2 x
- abs:        y = |x|,           f' = sign(x)        (0 at x = 0, never NaN)
- tanh:       y = tanh x,        f' = 1 - y^2
- sin, cos:   f' = cos x, -sin x
- erf:        y = 2/sqrt(pi) int_0^x e^(-t^2) dt,    f' = 2/sqrt(pi) e^(-x^2)

``sign``, ``floor``, ``ceil`` and ``round`` are piecewise constant: their derivative is zero
almost everywhere, so they return plain, non-differentiable tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import divide

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


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


@register("expm1")
class Expm1(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.expm1(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * np.exp(self.saved)


@register("log")
class Log(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.log(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g / self.saved


@register("log1p")
class Log1p(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.log1p(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g / (1 + self.saved)


@register("sqrt")
class Sqrt(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.sqrt(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return g / (2 * self.saved)


@register("square")
class Square(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return x * x

    def backward(self, g: np.ndarray) -> np.ndarray:
        return 2 * g * self.saved


@register("abs")
class Abs(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.abs(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * np.sign(self.saved)


@register("tanh")
class Tanh(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.tanh(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y = self.saved
        return g * (1 - y * y)


@register("sin")
class Sin(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.sin(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * np.cos(self.saved)


@register("cos")
class Cos(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.cos(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return -g * np.sin(self.saved)


# Rational approximations of erf (|x| < 1) and erfc (1 <= |x| < 6) from Moshier's Cephes
# library (public domain, the ones SciPy uses): within 2.3e-16 of the true value in float64.
# Beyond |x| = 6, erfc(x) < 2.2e-17 and erf(x) rounds to +-1.
_ERF_T = (
    9.60497373987051638749e0,
    9.00260197203842689217e1,
    2.23200534594684319226e3,
    7.00332514112805075473e3,
    5.55923013010394962768e4,
)
_ERF_U = (
    3.35617141647503099647e1,
    5.21357949780152679795e2,
    4.59432382970980127987e3,
    2.26290000613890934246e4,
    4.92673942608635921086e4,
)
_ERFC_P = (
    2.46196981473530512524e-10,
    5.64189564831068821977e-1,
    7.46321056442269912687e0,
    4.86371970985681366614e1,
    1.96520832956077098242e2,
    5.26445194995477358631e2,
    9.34528527171957607540e2,
    1.02755188689515710272e3,
    5.57535335369399327526e2,
)
_ERFC_Q = (
    1.32281951154744992508e1,
    8.67072140885989742329e1,
    3.54937778887819891062e2,
    9.75708501743205489753e2,
    1.82390916687909736289e3,
    2.24633760818710981792e3,
    1.65666309194161350182e3,
    5.57535340817727675546e2,
)


def _polynomial(x: np.ndarray, coefficients: tuple, monic: bool = False) -> np.ndarray:
    """Horner's rule, highest power first (``monic``: an implicit leading coefficient 1)."""
    result = x + coefficients[0] if monic else np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def erf_array(x: np.ndarray) -> np.ndarray:
    """The error function of an array, in its own dtype (NumPy has no ``erf``)."""
    ax = np.abs(x)
    z = x * x
    small = x * _polynomial(z, _ERF_T) / _polynomial(z, _ERF_U, monic=True)
    a = np.clip(ax, 1, 6)
    erfc = np.exp(-a * a) * _polynomial(a, _ERFC_P) / _polynomial(a, _ERFC_Q, monic=True)
    return np.where(ax < 1, small, np.copysign(1 - erfc, x))


@register("erf")
class Erf(Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return erf_array(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        return g * (_TWO_OVER_SQRT_PI * np.exp(-x * x))


def negative(x: Any) -> Tensor:
    """-x."""
    return Negative.apply(x)


def exp(x: Any) -> Tensor:
    """e^x, element-wise."""
    return Exp.apply(x)


def expm1(x: Any) -> Tensor:
    """e^x - 1, accurate for small x."""
    return Expm1.apply(x)


def log(x: Any) -> Tensor:
    """Natural logarithm, element-wise."""
    return Log.apply(x)


def log1p(x: Any) -> Tensor:
    """ln(1 + x), accurate for small x."""
    return Log1p.apply(x)


def sqrt(x: Any) -> Tensor:
    """Square root (its gradient at 0 is inf, as in the maths)."""
    return Sqrt.apply(x)


def square(x: Any) -> Tensor:
    """x^2, element-wise."""
    return Square.apply(x)


def abs(x: Any) -> Tensor:  # noqa: A001
    """|x|, element-wise (gradient 0 at 0)."""
    return Abs.apply(x)


absolute = abs


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(x)


def sin(x: Any) -> Tensor:
    """Sine (radians)."""
    return Sin.apply(x)


def cos(x: Any) -> Tensor:
    """Cosine (radians)."""
    return Cos.apply(x)


def erf(x: Any) -> Tensor:
    """The Gauss error function."""
    return Erf.apply(x)


def reciprocal(x: Any) -> Tensor:
    """1 / x (a composition: divide)."""
    return divide(1, x)


def rsqrt(x: Any) -> Tensor:
    """1 / sqrt(x) (a composition: sqrt, then divide)."""
    return reciprocal(sqrt(x))


def sign(x: Any) -> Tensor:
    """-1, 0 or 1 by the sign of x; not differentiable (plain result)."""
    return Tensor._make(np.sign(raw(x)))


def floor(x: Any) -> Tensor:
    """Round down; not differentiable (plain result)."""
    return Tensor._make(np.floor(raw(x)))


def ceil(x: Any) -> Tensor:
    """Round up; not differentiable (plain result)."""
    return Tensor._make(np.ceil(raw(x)))


def round(x: Any, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even (NumPy's and Keras' rule); not differentiable (plain result)."""
    return Tensor._make(np.round(raw(x), decimals))
