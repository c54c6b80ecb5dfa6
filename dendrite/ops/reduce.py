"""Reductions: sum, mean, max, min, std (primitives); var (a composition); argmax, argmin.

- sum over axes:  every element contributes once, dL/dx = g broadcast back over the
  reduced axes;
- mean:           dL/dx = g / n, n the number of elements reduced;
- max (and min):  dL/dx = g [x = max] / k, where k is the number of elements that tie for
  the maximum: the gradient is split evenly among ties (as TensorFlow's ``reduce_max`` and
  PyTorch's ``amax`` do);
- var = mean((x - mean x)^2) is a composition; std = sqrt(var) is a primitive, so that its
  gradient at zero spread can be 0 rather than the composition's 0 * inf = NaN;
- argmax / argmin return plain integer tensors: an index has no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import expand_to, normalize_axis, raw, reduced_grad
from dendrite.ops.arithmetic import subtract
from dendrite.ops.unary import square


def _checked_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    try:
        return normalize_axis(axis, ndim)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None


@register("sum")
class Sum(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = _checked_axes(axis, x.ndim, "sum")
        self.saved = (x.shape, axes, keepdims)
        return np.add.reduce(x, axis=axes, keepdims=keepdims)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdims = self.saved
        return expand_to(reduced_grad(g, shape, axes, keepdims), shape)


@register("mean")
class Mean(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = _checked_axes(axis, x.ndim, "mean")
        count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        self.saved = (x.shape, axes, keepdims, count)
        if x.dtype.kind != "f":
            return np.mean(x, axis=axes, keepdims=keepdims)
        return np.add.reduce(x, axis=axes, keepdims=keepdims) / (count or 1)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdims, count = self.saved
        return expand_to(reduced_grad(g, shape, axes, keepdims) / (count or 1), shape)


class _Extreme(Function):
    """max / min over axes; the gradient is shared evenly by the elements that tie."""

    _reduce = staticmethod(np.max)
    _name = "max"

    def forward(
        self, x: np.ndarray, axis: Any = None, keepdims: bool = False, initial: Any = None
    ) -> np.ndarray:
        axes = _checked_axes(axis, x.ndim, self._name)
        if x.size == 0 and initial is None:
            raise ValueError(f"{self._name}: cannot reduce an empty tensor of shape {x.shape}.")
        kwargs = {} if initial is None else {"initial": initial}
        out = self._reduce(x, axis=axes, keepdims=keepdims, **kwargs)
        self.saved = (x, axes, keepdims, out)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, axes, keepdims, out = self.saved
        shape = x.shape
        hit = x == reduced_grad(out, shape, axes, keepdims)
        count = np.sum(hit, axis=axes, keepdims=True)
        share = reduced_grad(g, shape, axes, keepdims) / np.maximum(count, 1).astype(g.dtype)
        return hit * share


@register("max")
class Max(_Extreme):
    _reduce = staticmethod(np.max)
    _name = "max"


@register("min")
class Min(_Extreme):
    _reduce = staticmethod(np.min)
    _name = "min"


@register("std")
class Std(Function):
    """s = sqrt(mean((x - mean x)^2)); dL/dx = g (x - mean x) / (n s).

    At s = 0 every deviation is 0 too and the formula is 0/0: the gradient is taken as 0
    there, exact when one element is reduced (std is then constantly 0), and the zero
    subgradient otherwise (as for abs at 0). The composition sqrt(var) would give NaN.
    """

    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = _checked_axes(axis, x.ndim, "std")
        deviation = x - np.mean(x, axis=axes, keepdims=True)
        kept = np.sqrt(np.mean(deviation * deviation, axis=axes, keepdims=True))
        count = deviation.size // (kept.size or 1)
        self.saved = (deviation, kept, count, axes, keepdims)
        if keepdims:
            return kept
        return kept.reshape(()) if axes is None else np.squeeze(kept, axis=axes)

    def backward(self, g: np.ndarray) -> np.ndarray:
        deviation, kept, count, axes, keepdims = self.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = reduced_grad(g, deviation.shape, axes, keepdims) / (count * kept)
            return np.where(kept > 0, deviation * scale, 0).astype(g.dtype, copy=False)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (an int or tuple; all axes when None)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (all axes when None)."""
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Tensor:  # noqa: A001
    """Largest element over ``axis`` (all axes when None); ties share the gradient evenly."""
    return Max.apply(x, axis=axis, keepdims=keepdims, initial=initial)


def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Tensor:  # noqa: A001
    """Smallest element over ``axis`` (all axes when None); ties share the gradient evenly."""
    return Min.apply(x, axis=axis, keepdims=keepdims, initial=initial)


amax = max
amin = min


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population variance (divides by n, as Keras and NumPy do) over ``axis``."""
    centred = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centred), axis=axis, keepdims=keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population standard deviation, ``sqrt(var(x))``, over ``axis``.

    Where the spread is zero the gradient is taken as 0 (see ``Std``).
    """
    return Std.apply(x, axis=axis, keepdims=keepdims)


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Index of the largest element (over the flattened tensor when ``axis`` is None).

    A plain integer tensor: no gradient.
    """
    return Tensor._make(np.asarray(np.argmax(raw(x), axis=axis, keepdims=keepdims)))


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest element (over the flattened tensor when ``axis`` is None).

    A plain integer tensor: no gradient.
    """
    return Tensor._make(np.asarray(np.argmin(raw(x), axis=axis, keepdims=keepdims)))
