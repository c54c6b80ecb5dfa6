"""More activations with Keras 3's names and defaults, all compositions of existing ops
(their gradients follow from those ops):

- celu(x, alpha=1)       = max(0, x) + min(0, alpha (e^(x / alpha) - 1))
- glu(x, axis=-1)        = a sigmoid(b), with x split in two halves a, b along ``axis``
- hard_tanh(x)           = clip(x, -1, 1)                  (slope 1 inside, bounds included)
- hard_shrink(x, t=0.5)  = x where |x| > t, else 0
- soft_shrink(x, t=0.5)  = x - t where x > t, x + t where x < -t, else 0
- tanh_shrink(x)         = x - tanh x
- squareplus(x, b=4)     = (x + sqrt(x^2 + b)) / 2
- sparse_plus(x)         = 0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1
- sparse_sigmoid(x)      = 0 for x <= -1, (x + 1) / 2 for -1 < x < 1, 1 for x >= 1
- threshold(x, t, v)     = x where x > t, else v
- sparsemax(x, axis=-1)  = max(x - tau, 0), tau chosen so that the result sums to 1
  (Martins & Astudillo, 2016). On the support S (k elements), ``tau = (sum_S x - 1) / k``,
  so the Jacobian is ``diag(s) - s s^T / k`` (s the 0/1 support mask); the composition
  computes tau from x through the mask, which gives exactly that.
  Keras 3.15's own sparsemax divides the sum of the *cumulative* sums over the support by k
  (a bug: its rows do not sum to 1 once the support has two elements); this one follows the
  paper, and agrees with Keras wherever the support is a single element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.activations import relu, sigmoid
from dendrite.ops.arithmetic import add, divide, multiply, subtract
from dendrite.ops.comparison import clip, minimum, where
from dendrite.ops.joining import split
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.unary import expm1, sqrt, square, tanh
from dendrite.ops.unary_more import _float_input


def _scalar(value: float, like: Any) -> np.ndarray:
    """A constant in ``like``'s dtype (a where-branch must not upcast a float32 tensor)."""
    return np.asarray(value, dtype=raw(like).dtype)


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """Continuously differentiable ELU: ``max(0, x) + min(0, alpha (e^(x / alpha) - 1))``."""
    x = _float_input(x)
    negative = multiply(alpha, expm1(divide(minimum(x, 0.0), alpha)))
    return add(relu(x), negative)


def glu(x: Any, axis: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` with ``a, b`` the two halves of x along
    ``axis`` (its size must be even)."""
    x = _float_input(x)
    shape = np.shape(raw(x))
    if not shape or not -len(shape) <= axis < len(shape) or shape[axis] % 2:
        raise ValueError(
            f"glu: axis {axis} of the input (shape {shape}) must exist and have an even size."
        )
    a, b = split(x, 2, axis=axis)
    return multiply(a, sigmoid(b))


def hard_tanh(x: Any) -> Tensor:
    """``clip(x, -1, 1)``."""
    return clip(_float_input(x), -1.0, 1.0)


def hard_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x where ``|x| > threshold``, else 0."""
    x = _float_input(x)
    data = raw(x)
    return where(np.abs(data) > threshold, x, _scalar(0.0, x))


def soft_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """``x - threshold`` above threshold, ``x + threshold`` below -threshold, else 0."""
    x = _float_input(x)
    data = raw(x)
    shifted = where(data > threshold, subtract(x, threshold), add(x, threshold))
    return where(np.abs(data) > threshold, shifted, _scalar(0.0, x))


def tanh_shrink(x: Any) -> Tensor:
    """``x - tanh(x)``."""
    x = _float_input(x)
    return subtract(x, tanh(x))


def squareplus(x: Any, b: float = 4) -> Tensor:
    """``(x + sqrt(x^2 + b)) / 2``, a smooth ReLU."""
    x = _float_input(x)
    return multiply(add(x, sqrt(add(square(x), b))), 0.5)


def sparse_plus(x: Any) -> Tensor:
    """0 for x <= -1, ``(x + 1)^2 / 4`` for -1 < x < 1, x for x >= 1 (a smooth ReLU with a
    bounded curved part)."""
    x = _float_input(x)
    data = raw(x)
    curved = multiply(square(add(x, 1.0)), 0.25)
    return where(data <= -1, _scalar(0.0, x), where(data < 1, curved, x))


def sparse_sigmoid(x: Any) -> Tensor:
    """0 for x <= -1, ``(x + 1) / 2`` for -1 < x < 1, 1 for x >= 1."""
    x = _float_input(x)
    data = raw(x)
    ramp = multiply(add(x, 1.0), 0.5)
    return where(data <= -1, _scalar(0.0, x), where(data >= 1, _scalar(1.0, x), ramp))


def threshold(x: Any, threshold: float, default_value: float) -> Tensor:
    """x where ``x > threshold``, else ``default_value`` (PyTorch's ``threshold``)."""
    x = _float_input(x)
    return where(raw(x) > threshold, x, _scalar(default_value, x))


def sparsemax(x: Any, axis: int = -1) -> Tensor:
    """The Euclidean projection of x onto the probability simplex along ``axis``: like
    softmax, a distribution, but with exact zeros (``max(x - tau, 0)``)."""
    x = _float_input(x)
    data = raw(x)
    if data.ndim == 0 or not -data.ndim <= axis < data.ndim:
        raise ValueError(f"sparsemax: axis {axis} is out of range for shape {data.shape}.")
    ordered = -np.sort(-data, axis=axis)
    cumulative = np.cumsum(ordered, axis=axis)
    shape = [1] * data.ndim
    shape[axis] = -1
    rank = np.arange(1, data.shape[axis] + 1, dtype=data.dtype).reshape(shape)
    k = np.sum(ordered - (cumulative - 1) / rank > 0, axis=axis, keepdims=True).astype(data.dtype)
    # x_i is in the support when it is larger than the k-th largest value's threshold.
    kth = np.take_along_axis(ordered, k.astype(np.intp) - 1, axis=axis)
    support = data >= kth
    inside = multiply(x, support.astype(data.dtype))
    tau = divide(subtract(reduce_sum(inside, axis=axis, keepdims=True), 1.0), k)
    return where(support, subtract(x, tau), _scalar(0.0, x))
