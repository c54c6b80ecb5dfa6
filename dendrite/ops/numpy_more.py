"""More of Keras 3's NumPy-like ops, most as compositions of existing ops (gradients follow):

- diff(a, n, axis): ``a[1:] - a[:-1]`` along axis, n times;
- sinc(x) = sin(pi x) / (pi x), 1 at 0 (its gradient 0 there);
- i0: the modified Bessel function of order 0, a primitive: value NumPy's ``i0``, gradient
  ``g I1(x)``, ``I1(x) = (1/2 pi) int_0^{2 pi} e^{x cos t} cos t dt`` by the trapezoid rule
  on 256 points (exact to rounding for a periodic analytic integrand, |x| < ~700);
- fabs = |x| in floats; fmax / fmin: the larger / smaller, a NaN losing to a number;
- ldexp(x1, x2) = x1 2^x2 (x2 integer); logaddexp2 = log2(2^x1 + 2^x2) as
  ``max + log2(1 + 2^-|x1 - x2|)``;
- trapezoid(y, x, dx, axis) = sum (y_i + y_{i+1}) / 2 (x_{i+1} - x_i);
- vander(x, N, increasing): the columns x^k by repeated products;
- corrcoef(x): ``cov / sqrt(diag ⊗ diag)``, clipped to [-1, 1] as NumPy clips it;
- correlate(x1, x2, mode): ``c_k = sum_n x1[n + k] x2[n]`` by gathered windows of the
  zero-padded x1, cut to "valid" / "same" / "full" as Keras' PyTorch backend cuts it;
- cdist(x, y): Euclidean distances between the rows, with a zero gradient (not NaN) where
  two rows coincide;
- saturate_cast: clip to the target dtype's range, then cast;
- real / imag / conj / conjugate / angle / isreal: for real tensors x, 0, x, x, 0 or pi,
  True (dendrite's tensors are real; complex arrays are passed to NumPy as plain results).

Plain results (no gradient): isin, nextafter, histogram, logspace, geomspace, empty,
empty_like, dtype, gcd/lcm live in ``bitwise``.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add, divide, multiply, subtract
from dendrite.ops.comparison import clip, maximum, minimum, where
from dendrite.ops.creation import _dtype, cast, convert_to_tensor, zeros, zeros_like
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import pad, split, stack
from dendrite.ops.linalg import matmul
from dendrite.ops.movement import expand_dims, reshape, swapaxes
from dendrite.ops.reduce import mean
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.unary import abs as absolute
from dendrite.ops.unary import log1p, sin, sqrt
from dendrite.ops.unary_more import exp2


def _float64(value: Any) -> np.ndarray:
    """float64 values of a tensor, array or Python number (not via float32)."""
    return np.asarray(value.data if isinstance(value, Tensor) else value, np.float64)


def _number(value: Any) -> float:
    """A Python float from a number or a 0-d tensor (a Python float as it is: not through
    the float32 of dendrite's conversion policy)."""
    return float(value) if isinstance(value, (int, float)) else float(raw(value))


def _floated(x: Any) -> Any:
    """Keras' ``result_type(x.dtype, float)``: integers and booleans become floatx."""
    if raw(x).dtype.kind in "biu":
        return cast(x, _settings.floatx())
    return x


def _plain(array: Any) -> Tensor:
    return Tensor._make(np.asarray(array))


def _axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of rank {ndim}.")
    return axis % ndim


# --- differences, integrals, polynomials ------------------------------------------------------
def diff(a: Any, n: int = 1, axis: int = -1) -> Tensor:
    """The n-th discrete difference along ``axis``: ``a[i + 1] - a[i]``, n times."""
    shape = np.shape(raw(a))
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}.")
    if not shape:
        raise ValueError("diff: needs at least a 1-D input.")
    axis = _axis(axis, len(shape), "diff")
    out = a if isinstance(a, Tensor) else Tensor._make(raw(a))
    for _ in range(n):
        head = [slice(None)] * len(shape)
        tail = [slice(None)] * len(shape)
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        if raw(out).dtype == bool:
            out = _plain(np.not_equal(raw(out)[tuple(head)], raw(out)[tuple(tail)]))
        else:
            out = subtract(getitem(out, tuple(head)), getitem(out, tuple(tail)))
    return out


def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Tensor:
    """The integral of y along ``axis`` by the trapezoid rule, at sample points ``x``
    (1-D along axis, or y's shape) or spacing ``dx``."""
    y = _floated(y)
    shape = np.shape(raw(y))
    axis = _axis(axis, len(shape), "trapezoid")
    head = [slice(None)] * len(shape)
    tail = [slice(None)] * len(shape)
    head[axis], tail[axis] = slice(1, None), slice(None, -1)
    pairs = add(getitem(y, tuple(head)), getitem(y, tuple(tail)))
    if x is None:
        spacing = dx if isinstance(dx, Tensor) else np.asarray(dx, raw(y).dtype)
    else:
        x = _floated(x)
        if np.ndim(raw(x)) == 1:
            steps = diff(x)
            view = [1] * len(shape)
            view[axis] = -1
            spacing = reshape(steps, view)
        else:
            spacing = diff(x, axis=axis)
    return reduce_sum(multiply(pairs, spacing), axis=axis) * np.asarray(0.5, raw(y).dtype)


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Tensor:  # noqa: N803
    """The Vandermonde matrix of 1-D x: columns x^(N-1), ..., x, 1 (reversed when
    ``increasing``); N = len(x) when None."""
    data = raw(x)
    if data.ndim != 1:
        raise ValueError(f"vander: x must be 1-D, got shape {data.shape}.")
    n = data.shape[0] if N is None else int(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {n}.")
    column = x if isinstance(x, Tensor) else Tensor._make(data)
    powers = []
    current = Tensor._make(np.ones(data.shape, data.dtype))
    for k in range(n):
        powers.append(current)
        if k + 1 < n:
            current = multiply(current, column) if k else column
    if not powers:
        return Tensor._make(np.zeros((data.shape[0], 0), data.dtype))
    out = stack(powers if increasing else powers[::-1], axis=1)
    return cast(out, data.dtype) if raw(out).dtype != data.dtype else out


def corrcoef(x: Any) -> Tensor:
    """Pearson correlation coefficients of the rows of x (variables in rows)."""
    data = raw(x)
    if data.dtype == bool or data.dtype.kind in "iu":
        x = cast(x, "float64" if data.dtype == np.int64 else _settings.floatx())
    if data.ndim > 2:
        raise ValueError(f"corrcoef: x must be 1-D or 2-D, got shape {data.shape}.")
    rows = reshape(x, (1, -1)) if data.ndim < 2 else x
    centred = subtract(rows, mean(rows, axis=1, keepdims=True))
    cov = matmul(centred, swapaxes(centred, 0, 1))
    d = sqrt(reduce_sum(multiply(centred, centred), axis=1))
    out = clip(divide(cov, multiply(reshape(d, (-1, 1)), reshape(d, (1, -1)))), -1.0, 1.0)
    return reshape(out, ()) if data.ndim < 2 else out


def correlate(x1: Any, x2: Any, mode: str = "valid") -> Tensor:
    """Cross-correlation of two 1-D signals, ``c_k = sum_n x1[n + k] x2[n]``; ``mode``
    "valid", "same" (x1's length) or "full"."""
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"correlate: mode must be 'valid', 'same' or 'full'; got {mode!r}.")
    a, v = raw(x1), raw(x2)
    dtype = np.result_type(a, v)
    if dtype == np.int64:
        dtype = np.dtype("float64")
    elif dtype not in (np.float16, np.float64):
        dtype = np.dtype("float32")
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError(f"correlate: x1 and x2 must be 1-D; got {a.shape} and {v.shape}.")
    n, m = a.shape[0], v.shape[0]
    if n == 0 or m == 0:
        raise ValueError("correlate: x1 and x2 must not be empty.")
    x1, x2 = cast(x1, dtype), cast(x2, dtype)
    padded = pad(x1, [(m - 1, m - 1)])
    windows = getitem(padded, np.arange(n + m - 1)[:, None] + np.arange(m)[None, :])
    full = reduce_sum(multiply(windows, x2), axis=1)  # lags -(m - 1) .. n - 1
    total = n + m - 1
    if mode == "valid":
        target = builtins.max(n, m) - builtins.min(n, m) + 1
    elif mode == "same":
        target = n
    else:
        return full
    start = (total - target) // 2
    return getitem(full, slice(start, start + target))


def cdist(x: Any, y: Any) -> Tensor:
    """Euclidean distances between the rows of x (..., P, M) and y (..., R, M):
    (..., P, R), batch axes broadcast."""
    a, b = raw(x), raw(y)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("cdist: inputs must have rank >= 2.")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cdist: the last axes must match; got {a.shape[-1]} and {b.shape[-1]}.")
    x, y = _floated(x), _floated(y)
    difference = subtract(expand_dims(x, -2), expand_dims(y, -3))
    squares = reduce_sum(multiply(difference, difference), axis=-1)
    positive = raw(squares) > 0
    safe = where(positive, squares, np.ones((), raw(squares).dtype))
    return where(positive, sqrt(safe), np.zeros((), raw(squares).dtype))


# --- element-wise ------------------------------------------------------------------------------
def sinc(x: Any) -> Tensor:
    """sin(pi x) / (pi x), element-wise (1 at 0)."""
    x = _floated(x)
    data = raw(x)
    zero = data == 0
    safe = where(zero, np.ones((), data.dtype), x)
    scaled = multiply(safe, np.asarray(math.pi, data.dtype))
    return where(zero, np.ones((), data.dtype), divide(sin(scaled), scaled))


def _bessel_i1(x: np.ndarray) -> np.ndarray:
    """I1(x) by the trapezoid rule over one period of e^{x cos t} cos t (scaled by
    e^{|x|} to stay finite), in float64, in blocks of 4096 values."""
    flat = np.asarray(x, np.float64).reshape(-1)
    t = np.linspace(0.0, 2 * np.pi, 256, endpoint=False)
    cos_t = np.cos(t)
    out = np.empty_like(flat)
    for start in range(0, flat.size, 4096):
        block = np.abs(flat[start : start + 4096])[:, None]
        inner = np.mean(np.exp(block * (cos_t - 1.0)) * cos_t, axis=1)
        with np.errstate(over="ignore"):
            out[start : start + 4096] = (
                np.sign(flat[start : start + 4096]) * np.exp(block[:, 0]) * inner
            )
    return out.reshape(np.shape(x))


@register("i0")
class I0(Function):
    """y = I0(x), the modified Bessel function of the first kind, order 0;
    dL/dx = g I1(x)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.saved = x
        return np.i0(x).astype(x.dtype, copy=False)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return (g * _bessel_i1(self.saved)).astype(g.dtype, copy=False)


def i0(x: Any) -> Tensor:
    """The modified Bessel function of the first kind, order 0 (float64 for int64 inputs,
    floatx for other integers)."""
    data = raw(x)
    if data.dtype == np.int64:
        x = cast(x, "float64")
    elif data.dtype.kind in "biu":
        x = cast(x, _settings.floatx())
    return I0.apply(x)


def fabs(x: Any) -> Tensor:
    """|x| as floats (integers and booleans become floatx)."""
    return absolute(_floated(x))


def _nan_aware(x1: Any, x2: Any, pick: Any) -> Tensor:
    a, b = raw(x1), raw(x2)
    if a.dtype.kind not in "fc" and b.dtype.kind not in "fc":
        return pick(x1, x2)
    nan1, nan2 = np.isnan(a), np.isnan(b)
    both = np.broadcast_to(nan1, np.broadcast(a, b).shape)
    return where(both, x2 + zeros_like(x1), where(nan2, x1 + zeros_like(x2), pick(x1, x2)))


def fmax(x1: Any, x2: Any) -> Tensor:
    """Element-wise maximum where a NaN loses to a number (NaN only if both are NaN)."""
    return _nan_aware(x1, x2, maximum)


def fmin(x1: Any, x2: Any) -> Tensor:
    """Element-wise minimum where a NaN loses to a number (NaN only if both are NaN)."""
    return _nan_aware(x1, x2, minimum)


def ldexp(x1: Any, x2: Any) -> Tensor:
    """x1 * 2**x2 (x2 an integer tensor), in floats."""
    exponent = raw(x2)
    if exponent.dtype.kind not in "iu":
        raise TypeError(f"ldexp: the exponent must be an integer type, got {exponent.dtype}.")
    x1 = _floated(x1)
    dtype = raw(x1).dtype
    return multiply(x1, np.ldexp(np.ones((), dtype), exponent).astype(dtype))


def logaddexp2(x1: Any, x2: Any) -> Tensor:
    """log2(2^x1 + 2^x2), element-wise, without overflow."""
    x1, x2 = _floated(x1), _floated(x2)
    dtype = np.result_type(raw(x1), raw(x2))
    larger = maximum(x1, x2)
    tail = log1p(exp2(-absolute(subtract(x1, x2))))
    return add(larger, multiply(tail, np.asarray(1 / math.log(2), dtype)))


def nextafter(x1: Any, x2: Any) -> Tensor:
    """The next representable float after x1 towards x2, element-wise (plain)."""
    a, b = raw(x1), raw(x2)
    dtype = np.result_type(a, b)
    if dtype.kind not in "f":
        dtype = np.dtype(_settings.floatx())
    return _plain(np.nextafter(a.astype(dtype), b.astype(dtype)))


def isin(x1: Any, x2: Any, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each element of x1 occurs in x2 (plain boolean, x1's shape)."""
    return _plain(np.isin(raw(x1), raw(x2), assume_unique=assume_unique, invert=invert))


# --- constants and queries ---------------------------------------------------------------------
def _space_dtype(start: Any, stop: Any, dtype: Any) -> np.dtype:
    if dtype is not None:
        return _dtype(dtype)
    kinds = [raw(v).dtype for v in (start, stop) if isinstance(v, (Tensor, np.ndarray))]
    if any(k == np.float64 for k in kinds):
        return np.dtype("float64")
    return np.dtype(_settings.floatx())


def logspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    base: Any = 10,
    dtype: Any = None,
    axis: int = 0,
) -> Tensor:
    """``base ** linspace(start, stop, num)`` (floatx unless ``dtype``)."""
    target = _space_dtype(start, stop, dtype)
    values = np.logspace(
        _float64(start),
        _float64(stop),
        int(num),
        endpoint=endpoint,
        base=_number(base),
        axis=axis,
    )
    return _plain(values.astype(target))


def geomspace(
    start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None, axis: int = 0
) -> Tensor:
    """Numbers spaced evenly on a log scale from start to stop (floatx unless ``dtype``)."""
    target = _space_dtype(start, stop, dtype)
    values = np.geomspace(
        _float64(start),
        _float64(stop),
        int(num),
        endpoint=endpoint,
        axis=axis,
    )
    return _plain(values.astype(target))


def histogram(x: Any, bins: int = 10, range: Any = None) -> tuple[Tensor, Tensor]:  # noqa: A002
    """Counts of x's values in ``bins`` equal bins over ``range`` (x's min and max when
    None), and the bin edges: ``(counts, edges)``, both in x's float dtype (plain)."""
    data = raw(x)
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"histogram: bins must be a positive integer, got {bins!r}.")
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(_settings.floatx())
    counts, edges = np.histogram(data.reshape(-1), bins=int(bins), range=range)
    return _plain(counts.astype(dtype)), _plain(edges.astype(dtype))


def empty(shape: Any, dtype: Any = None) -> Tensor:
    """A tensor of ``shape`` (floatx unless ``dtype``); its values are zeros."""
    return zeros(shape, dtype=dtype)


def empty_like(x: Any, dtype: Any = None) -> Tensor:
    """A tensor of x's shape and (unless given) dtype; its values are zeros."""
    return zeros_like(x, dtype=dtype)


def array(x: Any, dtype: Any = None) -> Tensor:
    """A tensor from array-like x (``convert_to_tensor``)."""
    return convert_to_tensor(x, dtype=dtype)


def dtype(x: Any) -> str:
    """The name of x's dtype ("float32", "int64", ...)."""
    value = getattr(x, "dtype", None)
    if value is None:
        value = raw(x).dtype
    return np.dtype(value).name


def saturate_cast(x: Any, dtype: Any) -> Tensor:
    """x cast to ``dtype`` with its values first clipped to that dtype's range (no
    wrap-around); differentiable between floating dtypes."""
    target = _dtype(dtype)
    data = raw(x)
    if target.kind == "b":
        return cast(x, target)
    info = np.iinfo(target) if target.kind in "iu" else np.finfo(target)
    lo, hi = info.min, info.max
    if data.dtype.kind in "iu":
        source = np.iinfo(data.dtype)
        lo, hi = builtins.max(lo, source.min), builtins.min(hi, source.max)
        return _plain(np.clip(data, lo, hi).astype(target))
    if data.dtype == bool:
        return cast(x, target)
    if target.kind in "iu":
        values = np.nan_to_num(data.astype(np.float64), nan=0.0)
        low, high = values <= float(lo), values >= float(hi)
        inside = np.where(low | high, 0.0, values).astype(target)
        return _plain(np.where(low, target.type(lo), np.where(high, target.type(hi), inside)))
    finite = np.finfo(data.dtype)
    if finite.max <= hi:
        return cast(x, target)
    return cast(clip(x, float(lo), float(hi)), target)


# --- complex parts (dendrite's tensors are real) --------------------------------------------
def _is_complex(x: Any) -> bool:
    return raw(x).dtype.kind == "c"


def real(x: Any) -> Tensor:
    """The real part: x itself for a real tensor."""
    if _is_complex(x):
        return _plain(np.real(raw(x)))
    return x if isinstance(x, Tensor) else Tensor._make(raw(x))


def imag(x: Any) -> Tensor:
    """The imaginary part: zeros of x's shape and dtype for a real tensor."""
    if _is_complex(x):
        return _plain(np.imag(raw(x)))
    return zeros_like(x)


def conjugate(x: Any) -> Tensor:
    """The complex conjugate: x itself for a real tensor."""
    if _is_complex(x):
        return _plain(np.conjugate(raw(x)))
    return x if isinstance(x, Tensor) else Tensor._make(raw(x))


def conj(x: Any) -> Tensor:
    """The complex conjugate (``conjugate``)."""
    return conjugate(x)


def angle(x: Any) -> Tensor:
    """The argument of each element (0 or pi for real numbers), in floats; plain."""
    data = raw(x)
    if data.dtype.kind in "biu":
        data = data.astype("float64" if data.dtype == np.int64 else _settings.floatx())
    out = np.angle(data)
    return _plain(out.astype(data.dtype) if data.dtype.kind == "f" else out)


def isreal(x: Any) -> Tensor:
    """Whether each element has no imaginary part (True everywhere for real tensors)."""
    return _plain(np.isreal(raw(x)))


def dsplit(x: Any, indices_or_sections: Any) -> list[Tensor]:
    """Split along the third axis (depth); x needs at least 3 dimensions."""
    if np.ndim(raw(x)) < 3:
        raise ValueError("dsplit: only works on tensors of 3 or more dimensions.")
    return split(x, indices_or_sections, axis=2)
