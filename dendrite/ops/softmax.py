"""Softmax, log-softmax and log-sum-exp, all through the max shift.

With ``m = max_axis x`` (which cancels exactly), nothing overflows:

- logsumexp: ``l = m + ln sum e^(x - m)``;        dL/dx = g e^(x - l)
- softmax:   ``y = e^(x - m) / sum e^(x - m)``;   dL/dx = y (g - sum_axis(g y))
- log_softmax: ``y = (x - m) - ln sum e^(x - m)``; dL/dx = g - e^y sum_axis(g)

(each ``sum_axis`` keeps the reduced axes so it broadcasts back). These are fused
primitives: the compositions would be slower and would lose the stability of the shift.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dendrite import _native
from dendrite.core import Function, Tensor, as_array, register
from dendrite.ops._util import normalize_axis

# The ufunc's own reduce, without the Python wrapper of np.sum (hot path).
_sum = np.add.reduce


def _shift(x: np.ndarray, axes: tuple | None) -> np.ndarray:
    """max over ``axes`` (kept), never below the dtype's lowest finite value.

    The floor keeps an all -inf slice (say, fully masked) from turning the shift into
    ``-inf - -inf = NaN``: its shifted values stay -inf, so logsumexp gives -inf there.
    """
    if x.dtype.kind != "f":
        return np.maximum.reduce(x, axis=axes, keepdims=True)
    lowest = _LOWEST.get(x.dtype)
    if lowest is None:
        lowest = _LOWEST[x.dtype] = np.finfo(x.dtype).min
    return np.maximum.reduce(x, axis=axes, keepdims=True, initial=lowest)


_LOWEST: dict = {}

# csrc/softmax.c (an older build of the kernels lacks it).
ROW_KERNELS = hasattr(_native.kernels, "softmax_shift")
# Above this many elements NumPy's vectorised reductions beat the kernels' row loops, and
# its dispatch (what the kernels save) no longer counts: the op (its construction
# included) on 32 x 10 took 6.4 us against NumPy's 10.7, 128 x 10 9.0 against 19.0,
# 256 x 100 58 against 65, 64 x 1000 141 against 110.
ROW_KERNELS_UP_TO = 1 << 15


def rows_of(x: np.ndarray) -> int | None:
    """The rows (of the last axis) in which csrc/softmax.c takes ``x``, or None: a small,
    C-contiguous float32 or float64 array with a non-empty last axis."""
    if ROW_KERNELS and x.ndim and x.shape[-1] and x.size <= ROW_KERNELS_UP_TO and _native.usable(x):
        return x.size // x.shape[-1]
    return None


def exp_shifted(
    x: np.ndarray, normalize: bool, floored: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(e, m, s) over the last axis of ``x`` (``rows_of(x)`` must not be None): the shift
    ``m = _shift(x)`` (without ``floored``, the plain maximum), ``e = exp(x - m)`` and its
    sum ``s`` (both kept as size-1 axes), ``e`` divided by ``s`` when ``normalize``: the
    softmax. NumPy's bits: csrc/softmax.c makes the shift and the sum (in NumPy's pairwise
    order), NumPy the exponential."""
    rows, width = x.size // x.shape[-1], x.shape[-1]
    e = np.empty(x.shape, dtype=x.dtype)
    shift = np.empty((*x.shape[:-1], 1), dtype=x.dtype)
    total = np.empty_like(shift)
    _native.kernels.softmax_shift(x, e, shift, rows, width, floored)
    np.exp(e, out=e)
    _native.kernels.softmax_normalize(e, total, rows, width, normalize)
    return e, shift, total


def _axes(axis: Any, ndim: int, op: str) -> tuple:
    try:
        axes = normalize_axis(axis, ndim)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None
    return axes if axes is not None else tuple(range(ndim))


@register("softmax")
class Softmax(Function):
    def forward(self, x: np.ndarray, axis: Any = -1) -> np.ndarray:
        axes = _axes(axis, x.ndim, "softmax")
        if axes == (x.ndim - 1,) and rows_of(x) is not None:
            out, shift, total = exp_shifted(x, normalize=True)
        else:
            shift = _shift(x, axes)
            e = np.exp(x - shift)
            total = _sum(e, axis=axes, keepdims=True)
            out = e / total
        # shift and total are kept for a cross-entropy that follows (softmax_origin).
        self.saved = (out, axes, shift, total)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y, axes = self.saved[:2]
        gy = g * y
        return gy - y * _sum(gy, axis=axes, keepdims=True)


class SoftmaxOrigin(NamedTuple):
    """``probabilities = softmax(logits)`` over one axis. ``shift`` and ``total`` (the max
    and the sum of ``e^(logits - shift)``) are the softmax node's own values when it was
    recorded, so a cross-entropy that follows need not compute them again; None when it ran
    without recording (evaluation, ``no_grad``), where the cross-entropy computes the same
    values from the logits."""

    logits: Tensor
    probabilities: np.ndarray
    shift: np.ndarray | None
    total: np.ndarray | None


def softmax_origin(output: Any, axis: int = -1) -> SoftmaxOrigin | None:
    """Where ``output`` came from when it is ``softmax(logits)`` over ``axis`` (the
    ``_origin`` the softmax op leaves on its result, recorded or not): a cross-entropy then
    starts from the logits, exact and stable even for saturated outputs, as Keras does with
    ``_keras_logits``. None for any other tensor."""
    origin = getattr(output, "_origin", None)
    if origin is None or origin[0] != "softmax":
        return None
    _, logits, axes = origin
    if _axes(axes, logits.ndim, "softmax") != (axis % max(output.ndim, 1),):
        return None
    ctx = output._ctx
    if isinstance(ctx, Softmax) and isinstance(ctx.saved, tuple):
        probabilities, _, shift, total = ctx.saved
        return SoftmaxOrigin(logits, probabilities, shift, total)
    return SoftmaxOrigin(logits, output.data, None, None)


@register("log_softmax")
class LogSoftmax(Function):
    def forward(self, x: np.ndarray, axis: Any = -1) -> np.ndarray:
        axes = _axes(axis, x.ndim, "log_softmax")
        shifted = x - _shift(x, axes)
        out = shifted - np.log(_sum(np.exp(shifted), axis=axes, keepdims=True))
        self.saved = (out, axes)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        y, axes = self.saved
        return g - np.exp(y) * _sum(g, axis=axes, keepdims=True)


@register("logsumexp")
class LogSumExp(Function):
    def forward(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axes = normalize_axis(axis, x.ndim)
        m = _shift(x, axes)
        kept = np.log(_sum(np.exp(x - m), axis=axes, keepdims=True)) + m
        self.saved = (x, kept)
        if keepdims:
            return kept
        return kept.reshape(()) if axes is None else np.squeeze(kept, axis=axes)

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, kept = self.saved
        return g.reshape(kept.shape) * np.exp(x - kept)


def softmax(x: Any, axis: Any = -1) -> Tensor:
    """e^x normalised to sum to 1 along ``axis`` (an int or a tuple; default the last).

    The result remembers its logits (``softmax_origin``), recorded or not."""
    logits = x if isinstance(x, Tensor) else Tensor._make(as_array(x))
    out = Softmax.apply(logits, axis=axis)
    out._origin = ("softmax", logits, axis)  # the axis as given, normalised when read
    return out


def log_softmax(x: Any, axis: Any = -1) -> Tensor:
    """ln softmax(x), computed stably: ``x - logsumexp(x, axis, keepdims=True)``."""
    return LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """ln sum e^x over ``axis`` (all axes when None), stable for large |x|."""
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)
