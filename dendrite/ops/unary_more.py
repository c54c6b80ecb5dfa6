"""More element-wise functions of one tensor, with Keras 3's names.

Primitives (``y = f(x)``, VJP ``dL/dx = g * f'(x)``):

- arcsin:  f' = 1 / sqrt(1 - x^2)          (inf at x = +-1, as in the maths)
- arccos:  f' = -1 / sqrt(1 - x^2)
- arctan:  f' = 1 / (1 + x^2)
- arcsinh: f' = 1 / sqrt(x^2 + 1)
- arccosh: f' = 1 / sqrt(x^2 - 1)          (x >= 1)
- cbrt:    y = x^(1/3) (real, odd), f' = 1 / (3 y^2)   (inf at 0)
- erfc:    y = 1 - erf(x) without cancellation, f' = -2/sqrt(pi) e^(-x^2)
- erfinv:  erf(y) = x, f' = sqrt(pi)/2 e^(y^2)

Compositions (their gradients follow from the ops they use):

- tan = sin / cos;  sinh = (expm1(x) - expm1(-x)) / 2 (exact near 0);
  cosh = (e^x + e^-x) / 2;  arctanh = log1p(2x / (1 - x)) / 2;
- log2 = ln x / ln 2;  log10 = ln x / ln 10;  exp2 = 2^x (``power``);
- deg2rad = x pi / 180;  rad2deg = x 180 / pi;
- nan_to_num: x where it is finite (gradient g there, 0 at replaced values).

Not differentiable (piecewise constant, or yes/no answers): trunc, signbit, isinf,
isposinf, isneginf return plain tensors, as ``sign`` and ``floor`` do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add, divide, multiply, power, subtract
from dendrite.ops.comparison import where
from dendrite.ops.creation import cast
from dendrite.ops.unary import _ERFC_P, _ERFC_Q, _polynomial, cos, erf_array, exp, expm1, log1p, sin
from dendrite.ops.unary import log as natural_log

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@register("arcsin")
class Arcsin(Function):
    """y = arcsin x on [-1, 1]; dL/dx = g / sqrt(1 - x^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.arcsin(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        with np.errstate(divide="ignore"):
            return g / np.sqrt(1 - x * x)


@register("arccos")
class Arccos(Function):
    """y = arccos x on [-1, 1]; dL/dx = -g / sqrt(1 - x^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.arccos(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        with np.errstate(divide="ignore"):
            return -g / np.sqrt(1 - x * x)


@register("arctan")
class Arctan(Function):
    """y = arctan x; dL/dx = g / (1 + x^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.arctan(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        return g / (1 + x * x)


@register("arcsinh")
class Arcsinh(Function):
    """y = arcsinh x = ln(x + sqrt(x^2 + 1)); dL/dx = g / sqrt(x^2 + 1)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.arcsinh(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        return g / np.hypot(x, 1)


@register("arccosh")
class Arccosh(Function):
    """y = arccosh x = ln(x + sqrt(x^2 - 1)) for x >= 1; dL/dx = g / sqrt(x^2 - 1)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.arccosh(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / np.sqrt((x - 1) * (x + 1))


@register("cbrt")
class Cbrt(Function):
    """y = x^(1/3), real for negative x too; dL/dx = g / (3 y^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.cbrt(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y = self.saved
        with np.errstate(divide="ignore"):
            return g / (3 * y * y)


def _erfc_tail(a: np.ndarray) -> np.ndarray:
    """erfc(a) for a >= 8 by its asymptotic series,
    ``e^(-a^2) / (a sqrt(pi)) * sum_n (-1)^n (2n - 1)!! / (2 a^2)^n``: at a >= 8 the terms
    shrink at least until n = 64, and 24 of them leave a relative error below 1e-20."""
    inverse = 1 / (2 * a * a)
    total = np.ones_like(a)
    term = np.ones_like(a)
    for n in range(1, 25):
        term = -term * (2 * n - 1) * inverse
        total = total + term
    with np.errstate(under="ignore"):
        return np.exp(-a * a) / (a * math.sqrt(math.pi)) * total


def erfc_array(x: np.ndarray) -> np.ndarray:
    """The complementary error function ``1 - erf(x)`` of an array, in its own dtype, without
    the cancellation of computing ``1 - erf(x)`` for large x (Cephes' rational form for
    1 <= |x| < 8, the asymptotic series beyond; erfc(-x) = 2 - erfc(x))."""
    ax = np.abs(x)
    a = np.clip(ax, 1, 8)
    with np.errstate(under="ignore"):
        middle = np.exp(-a * a) * _polynomial(a, _ERFC_P) / _polynomial(a, _ERFC_Q, monic=True)
    tail = _erfc_tail(np.maximum(ax, 8))
    positive = np.where(ax < 8, middle, tail)
    positive = np.where(ax < 1, 1 - erf_array(ax), positive)
    return np.where(x < 0, 2 - positive, positive).astype(x.dtype, copy=False)


@register("erfc")
class Erfc(Function):
    """y = erfc x = 1 - erf x; dL/dx = -g 2/sqrt(pi) e^(-x^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return erfc_array(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x = self.saved
        return -g * (_TWO_OVER_SQRT_PI * np.exp(-x * x))


def erfinv_array(x: np.ndarray) -> np.ndarray:
    """The inverse error function of an array in (-1, 1) (+-inf at +-1, NaN outside).

    Giles' single-precision approximation (2010), then three Newton steps on erf(y) = x,
    each ``y -= (erf(y) - x) / (2/sqrt(pi) e^(-y^2))``, which bring it to float64 accuracy.
    """
    work = x.astype(np.float64)
    inside = np.abs(work) < 1
    z = np.where(inside, work, 0.0)
    w = -np.log((1 - z) * (1 + z))
    small = w < 5
    ws = w - 2.5
    p_small = 2.81022636e-08
    for c in (
        3.43273939e-07,
        -3.5233877e-06,
        -4.39150654e-06,
        0.00021858087,
        -0.00125372503,
        -0.00417768164,
        0.246640727,
        1.50140941,
    ):
        p_small = p_small * ws + c
    wl = np.sqrt(np.maximum(w, 5)) - 3
    p_large = -0.000200214257
    for c in (
        0.000100950558,
        0.00134934322,
        -0.00367342844,
        0.00573950773,
        -0.0076224613,
        0.00943887047,
        1.00167406,
        2.83297682,
    ):
        p_large = p_large * wl + c
    y = np.where(small, p_small, p_large) * z
    for _ in range(3):
        y = y - (erf_array(y) - z) / (_TWO_OVER_SQRT_PI * np.exp(-y * y))
    y = np.where(inside, y, np.where(np.abs(work) == 1, np.copysign(np.inf, work), np.nan))
    return y.astype(x.dtype, copy=False)


@register("erfinv")
class Erfinv(Function):
    """y = erfinv x (erf y = x); dL/dx = g sqrt(pi)/2 e^(y^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = erfinv_array(x)
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y = self.saved
        with np.errstate(over="ignore"):
            return g * np.exp(y * y) / _TWO_OVER_SQRT_PI


def _float_input(x: Any) -> Any:
    """Integer and boolean inputs become floatx tensors (Keras' rule for transcendental
    functions); floating inputs and Tensors of them pass through."""
    if raw(x).dtype.kind in "biu":
        return cast(x, _settings.floatx())
    return x


def arcsin(x: Any) -> Tensor:
    """Inverse sine, element-wise (NaN outside [-1, 1])."""
    return Arcsin.apply(_float_input(x))


def arccos(x: Any) -> Tensor:
    """Inverse cosine, element-wise (NaN outside [-1, 1])."""
    return Arccos.apply(_float_input(x))


def arctan(x: Any) -> Tensor:
    """Inverse tangent, element-wise, in (-pi/2, pi/2)."""
    return Arctan.apply(_float_input(x))


def arcsinh(x: Any) -> Tensor:
    """Inverse hyperbolic sine, element-wise."""
    return Arcsinh.apply(_float_input(x))


def arccosh(x: Any) -> Tensor:
    """Inverse hyperbolic cosine, element-wise (NaN below 1)."""
    return Arccosh.apply(_float_input(x))


def arctanh(x: Any) -> Tensor:
    """Inverse hyperbolic tangent, ``log1p(2x / (1 - x)) / 2`` (exact near 0; +-inf at
    +-1, NaN outside [-1, 1])."""
    x = _float_input(x)
    return multiply(log1p(divide(multiply(x, 2.0), subtract(1.0, x))), 0.5)


def tan(x: Any) -> Tensor:
    """Tangent (radians): ``sin x / cos x``."""
    x = _float_input(x)
    return divide(sin(x), cos(x))


def sinh(x: Any) -> Tensor:
    """Hyperbolic sine, ``(expm1(x) - expm1(-x)) / 2`` (no cancellation near 0)."""
    x = _float_input(x)
    return multiply(subtract(expm1(x), expm1(multiply(x, -1.0))), 0.5)


def cosh(x: Any) -> Tensor:
    """Hyperbolic cosine, ``(e^x + e^-x) / 2``."""
    x = _float_input(x)
    return multiply(add(exp(x), exp(multiply(x, -1.0))), 0.5)


def cbrt(x: Any) -> Tensor:
    """Real cube root, element-wise (negative for negative x)."""
    return Cbrt.apply(_float_input(x))


def log2(x: Any) -> Tensor:
    """Base-2 logarithm, ``ln x / ln 2``."""
    return divide(natural_log(_float_input(x)), math.log(2.0))


def log10(x: Any) -> Tensor:
    """Base-10 logarithm, ``ln x / ln 10``."""
    return divide(natural_log(_float_input(x)), math.log(10.0))


def exp2(x: Any) -> Tensor:
    """2^x, element-wise (``power(2, x)``: exact at integers)."""
    x = _float_input(x)
    two = np.asarray(2.0, dtype=raw(x).dtype)
    return power(two, x)


def deg2rad(x: Any) -> Tensor:
    """Degrees to radians: ``x pi / 180``."""
    return multiply(_float_input(x), math.pi / 180.0)


def rad2deg(x: Any) -> Tensor:
    """Radians to degrees: ``x 180 / pi``."""
    return multiply(_float_input(x), 180.0 / math.pi)


def erfc(x: Any) -> Tensor:
    """The complementary error function ``1 - erf(x)``, accurate where it is tiny."""
    return Erfc.apply(_float_input(x))


def erfinv(x: Any) -> Tensor:
    """The inverse error function on (-1, 1) (+-inf at +-1, NaN outside)."""
    return Erfinv.apply(_float_input(x))


def nan_to_num(
    x: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """x with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (the dtype's
    largest / most negative finite values when None, as NumPy and Keras do). The gradient
    passes where x is finite and is 0 at the replaced values."""
    data = raw(x)
    if data.dtype.kind not in "fc":
        return x if isinstance(x, Tensor) else Tensor._make(data)
    filled = np.nan_to_num(data, nan=nan, posinf=posinf, neginf=neginf)
    return where(np.isfinite(data), x, filled)


def trunc(x: Any) -> Tensor:
    """Round toward zero; not differentiable (plain result)."""
    return Tensor._make(np.trunc(raw(x)))


def signbit(x: Any) -> Tensor:
    """Whether the sign bit is set (True for -0.0 and negative values); plain boolean."""
    return Tensor._make(np.signbit(raw(x)))


def isinf(x: Any) -> Tensor:
    """Where x is +inf or -inf; a plain boolean tensor."""
    return Tensor._make(np.isinf(raw(x)))


def isposinf(x: Any) -> Tensor:
    """Where x is +inf; a plain boolean tensor."""
    return Tensor._make(np.isposinf(raw(x)))


def isneginf(x: Any) -> Tensor:
    """Where x is -inf; a plain boolean tensor."""
    return Tensor._make(np.isneginf(raw(x)))
