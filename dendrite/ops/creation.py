"""Making and converting tensors: zeros, ones, full, arange, eye, one_hot, the ``*_like``
forms, convert_to_tensor / convert_to_numpy, shape, and ``cast``.

Only ``cast`` between floating dtypes is differentiable: ``y = x`` in another precision, so
``dL/dx = g`` converted back to x's dtype. Everything else here makes new constants (plain
tensors, no gradient). Floating results default to ``floatx()`` (float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Function, SymbolicValue, Tensor, register
from dendrite.ops._util import raw


def _dtype(dtype: Any) -> np.dtype:
    """A NumPy dtype from a name, a NumPy dtype or None (``floatx()``)."""
    if dtype is None:
        return np.dtype(_settings.floatx())
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"Unknown dtype {dtype!r}.") from None


def _is_float(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


@register("cast")
class Cast(Function):
    def forward(self, x: np.ndarray, dtype: Any = None) -> np.ndarray:
        self.saved = x.dtype
        return x.astype(dtype, copy=False)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.astype(self.saved, copy=False)


def cast(x: Any, dtype: Any) -> Tensor:
    """x converted to ``dtype``; differentiable between floating dtypes, plain otherwise."""
    target = _dtype(dtype)
    if not _is_float(target):
        return Tensor._make(raw(x).astype(target))
    if isinstance(x, Tensor) and x.dtype == target:
        return x
    return Cast.apply(x, dtype=target)


def as_float_tensor(value: Any, dtype: Any = None) -> Tensor:
    """``value`` as a floating Tensor: ``dtype`` when given, else its own float dtype (float64
    stays float64), else ``floatx()`` (integers and booleans become float32). The one
    integer-to-float rule of losses, metrics and layers; casting a Tensor keeps its gradient
    path."""
    if isinstance(value, Tensor):
        if dtype is not None and value.data.dtype != dtype:
            return cast(value, dtype)
        if dtype is None and value.data.dtype.kind != "f":
            return cast(value, _settings.floatx())
        return value
    array = raw(value)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    elif array.dtype.kind != "f":
        array = array.astype(_settings.floatx())
    return Tensor._make(array)


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> Tensor:
    """A Tensor from x (a Tensor is returned as it is unless ``dtype`` differs).

    Python floats and lists of them become ``floatx()``; ndarrays keep their dtype.
    """
    if sparse or ragged:
        raise ValueError("convert_to_tensor: sparse and ragged tensors are not supported.")
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    return Tensor(x, dtype=None if dtype is None else _dtype(dtype))


def convert_to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of x's value (changing it does not change the tensor)."""
    return np.array(raw(x))


def shape(x: Any) -> tuple[int, ...]:
    """The shape of x as a tuple of ints (of a symbolic tensor: its shape, None where
    unknown, as Keras)."""
    if isinstance(x, Tensor):
        return x.data.shape
    if isinstance(x, SymbolicValue):
        return x.shape
    return tuple(raw(x).shape)


def _shape_tuple(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def zeros(shape: Any, dtype: Any = None) -> Tensor:
    """A tensor of zeros (``floatx()`` unless ``dtype`` says otherwise)."""
    return Tensor._make(np.zeros(_shape_tuple(shape), dtype=_dtype(dtype)))


def ones(shape: Any, dtype: Any = None) -> Tensor:
    """A tensor of ones (``floatx()`` unless ``dtype`` says otherwise)."""
    return Tensor._make(np.ones(_shape_tuple(shape), dtype=_dtype(dtype)))


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    """A tensor filled with ``fill_value`` (``floatx()`` unless ``dtype`` says otherwise)."""
    return Tensor._make(np.full(_shape_tuple(shape), raw(fill_value), dtype=_dtype(dtype)))


def _like_dtype(x: Any, dtype: Any) -> np.dtype:
    return raw(x).dtype if dtype is None else _dtype(dtype)


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    """Zeros with x's shape and (unless given) dtype."""
    return Tensor._make(np.zeros(raw(x).shape, dtype=_like_dtype(x, dtype)))


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    """Ones with x's shape and (unless given) dtype."""
    return Tensor._make(np.ones(raw(x).shape, dtype=_like_dtype(x, dtype)))


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    """``fill_value`` with x's shape and (unless given) dtype."""
    return Tensor._make(np.full(raw(x).shape, raw(fill_value), dtype=_like_dtype(x, dtype)))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values in [start, stop) (or [0, start) when ``stop`` is None).

    Integer arguments give integers; any float gives ``floatx()`` unless ``dtype`` is set.
    """
    if stop is None:
        start, stop = 0, start
    values = (start, stop, step)
    if dtype is not None:
        target = _dtype(dtype)
    elif all(isinstance(v, (int, np.integer)) for v in values):
        target = np.dtype(np.int64)
    else:
        target = np.dtype(_settings.floatx())
    return Tensor._make(np.arange(start, stop, step).astype(target, copy=False))


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Tensor:  # noqa: N803
    """An N x M matrix with ones on diagonal ``k`` and zeros elsewhere."""
    return Tensor._make(np.eye(N, M, k, dtype=_dtype(dtype)))


def one_hot(
    x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False
) -> Tensor:
    """Integer labels as one-hot vectors along a new ``axis`` (no gradient).

    Labels outside ``[0, num_classes)`` give all-zero vectors (TensorFlow's rule).
    """
    if sparse:
        raise ValueError("one_hot: sparse outputs are not supported.")
    labels = raw(x)
    if not np.issubdtype(labels.dtype, np.integer):
        if labels.size and not np.all(np.mod(labels, 1) == 0):
            raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}.")
        labels = labels.astype(np.int64)
    out = labels[..., None] == np.arange(int(num_classes))
    out = out.astype(_dtype(dtype), copy=False)
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return Tensor._make(out)
