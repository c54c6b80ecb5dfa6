"""Reductions that skip NaN, with Keras 3's names, as compositions of existing ops:

- nanprod / nancumsum / nancumprod: NaN replaced by the identity (1 for products, 0 for
  sums) with ``where``, then the ordinary reduction (gradient 0 at NaN);
- nanvar = sum over the present values of (x - nanmean)^2 / their count, nanstd its root
  (an all-NaN slice gives NaN);
- nanquantile(x, q): per slice, the present values sorted (NaN sorted last), the position
  ``p = q (n - 1)`` taken with that slice's own count n, and the one or two sorted values
  read as ``quantile`` reads them (gathers: the gradient goes to those elements with the
  interpolation weights); an all-NaN slice gives NaN. nanpercentile = nanquantile(q / 100),
  nanmedian = nanquantile(0.5);
- nanargmax / nanargmin: plain int32 indices of the extreme present value, -1 for an
  all-NaN slice (Keras' rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import normalize_axis, raw
from dendrite.ops.arithmetic import divide, multiply, subtract
from dendrite.ops.comparison import where
from dendrite.ops.creation import cast
from dendrite.ops.indexing import take_along_axis
from dendrite.ops.movement import expand_dims, moveaxis, reshape, transpose
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.reduce_more import cumprod, cumsum, prod
from dendrite.ops.statistics import _METHODS
from dendrite.ops.unary import sqrt, square


def _float_result(x: Any) -> Any:
    """Keras' ``result_type(x.dtype, float)``: integers and booleans become floatx."""
    if raw(x).dtype.kind in "biu":
        return cast(x, _settings.floatx())
    return x


def _filled(x: Any, fill: float) -> Any:
    data = raw(x)
    if data.dtype.kind not in "fc":
        return x
    missing = np.isnan(data)
    if not missing.any():
        return x
    return where(missing, np.asarray(fill, dtype=data.dtype), x)


def _axes(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    if isinstance(axis, list):
        axis = tuple(axis)
    try:
        return normalize_axis(axis, ndim)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None


def nanprod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The product over ``axis`` with NaN counted as 1."""
    if axis == () or axis == []:
        return _filled(x, 1.0) if isinstance(x, Tensor) else Tensor._make(raw(_filled(x, 1.0)))
    out = prod(_filled(x, 1.0), axis=_axes(axis, raw(x).ndim, "nanprod"), keepdims=keepdims)
    kind = raw(x).dtype
    if kind.kind in "biu" and raw(out).dtype != kind:
        # Keras' integer products: the input's dtype, at least 32 bits (bool -> int32).
        target = (
            kind
            if kind.itemsize >= 4 and kind.kind != "b"
            else np.dtype("uint32" if kind.kind == "u" else "int32")
        )
        out = Tensor._make(raw(out).astype(target))
    return out


def nancumsum(x: Any, axis: Any = None, dtype: Any = None) -> Tensor:
    """The running sum along ``axis`` (of the flattened tensor when None), NaN counted as 0."""
    return cumsum(_filled(x, 0.0), axis=axis, dtype=dtype)


def nancumprod(x: Any, axis: Any = None, dtype: Any = None) -> Tensor:
    """The running product along ``axis`` (flattened when None), NaN counted as 1."""
    return cumprod(_filled(x, 1.0), axis=axis, dtype=dtype)


def nanvar(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The population variance over ``axis`` of the values that are not NaN."""
    x = _float_result(x)
    data = raw(x)
    if axis == () or axis == []:
        return where(np.isnan(data), x, np.zeros((), data.dtype))
    axes = _axes(axis, data.ndim, "nanvar")
    missing = np.isnan(data)
    zero = np.zeros((), data.dtype)
    present = np.sum(~missing, axis=axes, keepdims=True)
    # Divide by at least 1 (an all-NaN slice is set to NaN at the end, with no gradient).
    count = np.maximum(present, 1).astype(data.dtype)
    filled = where(missing, zero, x)
    centre = divide(reduce_sum(filled, axis=axes, keepdims=True), count)
    centred = where(missing, zero, subtract(filled, centre))
    out = divide(reduce_sum(square(centred), axis=axes, keepdims=True), count)
    out = where(present == 0, np.asarray(np.nan, data.dtype), out)
    if not keepdims:
        out = reshape(out, np.sum(~missing, axis=axes).shape)
    return out


def nanstd(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The population standard deviation over ``axis`` of the values that are not NaN."""
    return sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def nanquantile(
    x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False
) -> Tensor:
    """The q-th quantiles (q in [0, 1], a number or 1-D) over ``axis`` of the values that
    are not NaN; NumPy's result shape (q's axis first); NaN for an all-NaN slice."""
    if method not in _METHODS:
        raise ValueError(f"nanquantile: method must be one of {_METHODS}, got {method!r}.")
    qs = np.asarray(q.data if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1 or np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise ValueError(f"nanquantile: q must be a number or 1-D, in [0, 1]; got {qs.tolist()}.")
    x = _float_result(x)
    data = raw(x)
    ndim = data.ndim
    axes = _axes(axis, ndim, "nanquantile")
    axes = tuple(range(ndim)) if axes is None else axes
    if ndim == 0:
        x, data, axes, ndim = reshape(x, (1,)), data.reshape(1), (0,), 1
    kept = [a for a in range(ndim) if a not in axes]
    n = int(np.prod([data.shape[a] for a in axes], dtype=np.int64))
    if n == 0:
        raise ValueError("nanquantile: cannot take a quantile of an empty slice.")
    flat = reshape(transpose(x, (*kept, *axes)), tuple(data.shape[a] for a in kept) + (n,))
    values = raw(flat)
    order = np.argsort(np.where(np.isnan(values), np.inf, values), axis=-1, kind="stable")
    count = np.sum(~np.isnan(values), axis=-1, keepdims=True)  # (..., 1)
    position = qs.reshape(-1) * np.maximum(count - 1, 0)  # (..., Q)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, np.maximum(count - 1, 0))
    fraction = (position - lower).astype(values.dtype)
    if method == "lower":
        upper, fraction = lower, np.zeros_like(fraction)
    elif method == "higher":
        lower = upper = np.ceil(position).astype(np.intp)
    elif method == "nearest":
        lower = upper = np.around(position).astype(np.intp)
    elif method == "midpoint":
        fraction = np.where(position > lower, 0.5, 0.0).astype(values.dtype)

    def sorted_at(index: np.ndarray) -> Tensor:
        return take_along_axis(flat, np.take_along_axis(order, index, axis=-1), axis=-1)

    low = sorted_at(lower)
    out = low
    if not np.all(lower == upper):
        out = low + multiply(sorted_at(upper) - low, fraction)
    empty = count == 0
    if np.any(empty):
        out = where(np.broadcast_to(empty, position.shape), np.asarray(np.nan, values.dtype), out)
    out = moveaxis(out, -1, 0)  # q first, as NumPy
    if keepdims:
        for a in axes:
            out = expand_dims(out, a + 1)
    return out[0] if qs.ndim == 0 else out


def nanpercentile(
    x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False
) -> Tensor:
    """The q-th percentiles (q in [0, 100]) over ``axis``, NaN ignored; see nanquantile."""
    qs = np.asarray(q.data if isinstance(q, Tensor) else q, dtype=np.float64)
    return nanquantile(x, qs / 100, axis=axis, method=method, keepdims=keepdims)


def nanmedian(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The median over ``axis`` of the values that are not NaN."""
    if axis == () or axis == []:
        return x if isinstance(x, Tensor) else Tensor._make(raw(x))
    return nanquantile(x, 0.5, axis=axis, keepdims=keepdims)


def _nanarg(x: Any, axis: Any, keepdims: bool, largest: bool) -> Tensor:
    data = raw(x)
    pick = np.argmax if largest else np.argmin
    if data.dtype.kind not in "fc":
        return Tensor._make(np.asarray(pick(data, axis=axis, keepdims=keepdims), np.int32))
    missing = np.isnan(data)
    clean = np.where(missing, -np.inf if largest else np.inf, data)
    index = np.asarray(pick(clean, axis=axis, keepdims=keepdims), np.int32)
    empty = np.all(missing, axis=axis, keepdims=keepdims)
    return Tensor._make(np.asarray(np.where(empty, np.int32(-1), index), np.int32))


def nanargmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Indices (int32) of the largest values over ``axis`` ignoring NaN; -1 where a slice is
    all NaN."""
    return _nanarg(x, axis, keepdims, largest=True)


def nanargmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Indices (int32) of the smallest values over ``axis`` ignoring NaN; -1 where a slice
    is all NaN."""
    return _nanarg(x, axis, keepdims, largest=False)
