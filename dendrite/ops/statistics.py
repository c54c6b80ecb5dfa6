"""Statistics with Keras 3's names, as compositions of existing ops:

- quantile(x, q) with NumPy's methods: sort x (a gather), then for the position
  ``p = q (n - 1)`` take ``v[floor p] + (v[ceil p] - v[floor p]) (p - floor p)``
  ("linear"), or the lower / higher / nearest element, or the midpoint. The gradient goes
  to the one or two sorted elements each result read, with those weights.
  percentile(x, q) = quantile(x, q / 100); median = quantile(x, 0.5);
- average(x, weights) = sum(w x) / sum(w); ptp = max - min; moments = (mean, variance);
- nansum / nanmean / nanmax / nanmin: the reductions with NaN taken as absent (0 for
  the sum; an all-NaN slice gives NaN for the mean, max and min; the gradient at NaN is 0);
- normalize(x, axis, order=2, epsilon) = x / max(||x||_order, epsilon), as Keras computes
  it (for order 2: x rsqrt(max(sum x^2, epsilon)));

count_nonzero (int32), isclose and allclose (booleans) are plain results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import normalize_axis, raw
from dendrite.ops.arithmetic import divide, multiply, subtract
from dendrite.ops.comparison import maximum, where
from dendrite.ops.creation import cast
from dendrite.ops.indexing import take_along_axis
from dendrite.ops.linalg_more import norm
from dendrite.ops.movement import expand_dims, moveaxis, reshape, transpose
from dendrite.ops.reduce import max as reduce_max
from dendrite.ops.reduce import mean, var
from dendrite.ops.reduce import min as reduce_min
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.unary import rsqrt, square
from dendrite.ops.unary_more import _float_input

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    try:
        axes = normalize_axis(axis, ndim)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None
    return tuple(range(ndim)) if axes is None else axes


def quantile(
    x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False
) -> Tensor:
    """The q-th quantiles (q in [0, 1], a number or 1-D) of x over ``axis`` (all axes when
    None), NumPy's result shape: q's axes first, then x's remaining axes."""
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {_METHODS}, got {method!r}.")
    # Python numbers as they are: dendrite's policy would read 0.3 as float32.
    qs = np.asarray(q.data if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1 or np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise ValueError(f"quantile: q must be a number or 1-D, in [0, 1]; got {qs.tolist()}.")
    x = _float_input(x)
    data = raw(x)
    ndim = data.ndim
    axes = _axes(axis, ndim, "quantile")
    if ndim == 0:
        x, data, axes, ndim = reshape(x, (1,)), data.reshape(1), (0,), 1
    kept = [a for a in range(ndim) if a not in axes]
    moved = transpose(x, (*kept, *axes))
    n = int(np.prod([data.shape[a] for a in axes], dtype=np.int64))
    if n == 0:
        raise ValueError("quantile: cannot take a quantile of an empty slice.")
    flat = reshape(moved, tuple(data.shape[a] for a in kept) + (n,))
    order = np.argsort(raw(flat), axis=-1, kind="stable")
    position = qs.reshape(-1) * (n - 1)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, n - 1)
    fraction = (position - lower).astype(data.dtype)
    if method == "lower":
        upper, fraction = lower, np.zeros_like(fraction)
    elif method == "higher":
        lower = upper = np.ceil(position).astype(np.intp)
    elif method == "nearest":
        lower = upper = np.around(position).astype(np.intp)
    elif method == "midpoint":
        fraction = np.where(position > lower, 0.5, 0.0).astype(data.dtype)

    def sorted_at(index: np.ndarray) -> Tensor:
        picked = np.take(order, index, axis=-1)
        return take_along_axis(flat, picked, axis=-1)

    low = sorted_at(lower)
    out = low if np.all(lower == upper) else low + (sorted_at(upper) - low) * fraction
    out = moveaxis(out, -1, 0)  # q first, as NumPy
    if keepdims:
        for a in axes:
            out = expand_dims(out, a + 1)
    return out[0] if qs.ndim == 0 else out


def percentile(
    x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False
) -> Tensor:
    """The q-th percentiles (q in [0, 100]) of x over ``axis``; see ``quantile``."""
    qs = np.asarray(q.data if isinstance(q, Tensor) else q, dtype=np.float64)
    return quantile(x, qs / 100, axis, method, keepdims)


def median(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The median over ``axis`` (the mean of the two middle values of an even count)."""
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


def average(x: Any, axis: Any = None, weights: Any = None) -> Tensor:
    """The weighted mean ``sum(w x) / sum(w)`` over ``axis``; 1-D ``weights`` run along
    ``axis``, otherwise they must broadcast against x."""
    x = _float_input(x)
    if weights is None:
        return mean(x, axis=axis)
    w = weights if isinstance(weights, Tensor) else Tensor._make(raw(weights))
    if w.dtype != raw(x).dtype:
        w = cast(w, raw(x).dtype)
    shape, wshape = np.shape(raw(x)), np.shape(raw(w))
    if axis is not None and len(wshape) == 1 and wshape != shape:
        a = _axes(axis, len(shape), "average")
        if len(a) != 1 or shape[a[0]] != wshape[0]:
            raise ValueError(
                f"average: 1-D weights of length {wshape[0]} must match axis {axis} of x "
                f"(shape {shape})."
            )
        view = [1] * len(shape)
        view[a[0]] = wshape[0]
        w = reshape(w, view)
    total = reduce_sum(multiply(x, w), axis=axis)
    return divide(total, reduce_sum(multiply(np.ones(shape, raw(x).dtype), w), axis=axis))


def ptp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The range ``max - min`` over ``axis``."""
    return subtract(reduce_max(x, axis, keepdims), reduce_min(x, axis, keepdims))


def moments(
    x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False
) -> tuple[Tensor, Tensor]:
    """The mean and (population) variance of x over ``axes``; ``synchronized`` concerns
    several devices, which dendrite's one process does not have (accepted, ignored)."""
    x = _float_input(x)
    return mean(x, axis=axes, keepdims=keepdims), var(x, axis=axes, keepdims=keepdims)


def _without_nan(x: Any, fill: float) -> tuple[Any, np.ndarray]:
    x = _float_input(x)
    data = raw(x)
    missing = np.isnan(data)
    return where(missing, np.asarray(fill, dtype=data.dtype), x), missing


def nansum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The sum over ``axis`` with NaN counted as 0."""
    filled, _ = _without_nan(x, 0.0)
    return reduce_sum(filled, axis=axis, keepdims=keepdims)


def nanmean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The mean over ``axis`` of the values that are not NaN (NaN when there are none)."""
    filled, missing = _without_nan(x, 0.0)
    count = np.sum(~missing, axis=normalize_axis(axis, missing.ndim), keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(reduce_sum(filled, axis, keepdims), count.astype(raw(filled).dtype))


def _nan_extreme(x: Any, axis: Any, keepdims: bool, largest: bool) -> Tensor:
    filled, missing = _without_nan(x, -np.inf if largest else np.inf)
    reduce = reduce_max if largest else reduce_min
    out = reduce(filled, axis, keepdims)
    empty = np.all(missing, axis=normalize_axis(axis, missing.ndim), keepdims=keepdims)
    if np.any(empty):
        out = where(empty, np.asarray(np.nan, dtype=out.dtype), out)
    return out


def nanmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The largest value over ``axis`` ignoring NaN (NaN for an all-NaN slice)."""
    return _nan_extreme(x, axis, keepdims, largest=True)


def nanmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The smallest value over ``axis`` ignoring NaN (NaN for an all-NaN slice)."""
    return _nan_extreme(x, axis, keepdims, largest=False)


def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None) -> Tensor:
    """x divided by its ``order``-norm along ``axis``, the norm floored at ``epsilon``
    (``keras.config.epsilon()``, 1e-7, when None), as Keras computes it."""
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"normalize: order must be an integer >= 1, got {order!r}.")
    x = _float_input(x)
    eps = _settings.epsilon() if epsilon is None else epsilon
    if order == 2:
        # Keras' min(rsqrt(total), 1 / eps), written so a zero vector's gradient stays finite.
        total = reduce_sum(square(x), axis=axis, keepdims=True)
        return multiply(x, rsqrt(maximum(total, eps * eps)))
    return divide(x, maximum(norm(x, ord=order, axis=axis, keepdims=True), eps))


def count_nonzero(x: Any, axis: Any = None) -> Tensor:
    """How many elements over ``axis`` are not zero; a plain int32 tensor."""
    data = raw(x)
    axes = normalize_axis(axis, data.ndim)
    return Tensor._make(np.asarray(np.count_nonzero(data, axis=axes)).astype(np.int32))


def isclose(
    x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False
) -> Tensor:
    """Where ``|x1 - x2| <= atol + rtol |x2|``, broadcasting; a plain boolean tensor."""
    return Tensor._make(np.isclose(raw(x1), raw(x2), rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(
    x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False
) -> Tensor:
    """Whether ``isclose`` holds everywhere; a plain boolean scalar tensor."""
    close = np.isclose(raw(x1), raw(x2), rtol=rtol, atol=atol, equal_nan=equal_nan)
    return Tensor._make(np.asarray(np.all(close)))
