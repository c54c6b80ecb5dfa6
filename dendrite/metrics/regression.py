"""Regression and probabilistic metrics on NumPy arrays, each the running mean of a
per-sample value (errors are averaged over the last axis, as the Keras losses of the same
names, and a 1-D batch counts one value per element; ``eps`` is Keras's backend epsilon,
``dendrite.backend.epsilon()`` (1e-7), read at each update):

- mean_squared_error:              ``mean((y - p)^2)``
- mean_absolute_error:             ``mean(|y - p|)``
- mean_absolute_percentage_error:  ``100 mean(|y - p| / max(|y|, eps))``
- mean_squared_logarithmic_error:  ``mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))^2)``
- RootMeanSquaredError:            ``sqrt`` of the running mean of ``(y - p)^2``
- log_cosh:                        ``mean(log cosh(p - y))``, as ``e + softplus(-2e) - log 2``
- cosine_similarity:               ``sum(y_hat p_hat)`` over ``axis``, ``x_hat = x / max(|x|, eps)``
  (1 for the same direction; the loss of that name is its negative)
- binary / categorical / sparse categorical cross-entropy, from probabilities (clipped to
  ``[eps, 1 - eps]``) or from logits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import Mean, MeanMetricWrapper, squeeze_or_expand, to_array
from dendrite.registry import register


def _aligned(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_pred = to_array(y_pred)
    y_true = to_array(y_true)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float64)
    y_true, y_pred = squeeze_or_expand(y_true.astype(y_pred.dtype, copy=False), y_pred)
    return y_true, y_pred


def _last_axis_mean(values: np.ndarray) -> np.ndarray:
    """Average over the last axis; a 1-D batch already has one value per sample."""
    return np.mean(values, axis=-1, dtype=np.float64) if values.ndim > 1 else values


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean((y_true - y_pred)^2)`` over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    diff = y_true - y_pred
    return _last_axis_mean(np.square(diff, out=diff))


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(|y_true - y_pred|)`` over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    diff = y_true - y_pred
    return _last_axis_mean(np.abs(diff, out=diff))


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``100 mean(|y_true - y_pred| / max(|y_true|, eps))``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), _settings.epsilon()))
    return 100.0 * _last_axis_mean(diff)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean((log1p(max(y_pred, eps)) - log1p(max(y_true, eps)))^2)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    eps = _settings.epsilon()
    diff = np.log1p(np.maximum(y_pred, eps)) - np.log1p(np.maximum(y_true, eps))
    return _last_axis_mean(np.square(diff))


def log_cosh(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(log(cosh(y_pred - y_true)))`` over the last axis (overflow-free)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    e = y_pred - y_true
    return _last_axis_mean(e + np.logaddexp(0.0, -2.0 * e) - math.log(2.0))


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Per-sample cosine of the angle between ``y_true`` and ``y_pred`` along ``axis``
    (0 where either is the zero vector)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    eps = _settings.epsilon()

    def unit(x: np.ndarray) -> np.ndarray:
        norm = np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
        return x / np.maximum(norm, eps)

    return np.sum(unit(y_true) * unit(y_pred), axis=axis)


def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0
) -> np.ndarray:
    """Per-sample binary cross-entropy, averaged over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        values = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        eps = _settings.epsilon()
        p = np.clip(y_pred, eps, 1.0 - eps)
        values = -(y_true * np.log(p) + (1.0 - y_true) * np.log1p(-p))
    return _last_axis_mean(values)


def _log_probabilities(y_pred: np.ndarray, from_logits: bool) -> np.ndarray:
    if from_logits:
        shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    p = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    eps = _settings.epsilon()
    return np.log(np.clip(p, eps, 1.0 - eps))


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0
) -> np.ndarray:
    """Per-sample ``-sum(y_true * log p)`` over the class (last) axis."""
    y_pred = to_array(y_pred)
    y_true = to_array(y_true).astype(y_pred.dtype, copy=False)
    if label_smoothing:
        classes = y_true.shape[-1]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    return -np.sum(y_true * _log_probabilities(y_pred, from_logits), axis=-1)


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False
) -> np.ndarray:
    """Per-sample ``-log p[label]`` for integer labels."""
    y_pred = to_array(y_pred)
    y_true = to_array(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    labels = y_true.astype(np.intp)[..., None]
    return -np.take_along_axis(_log_probabilities(y_pred, from_logits), labels, axis=-1)[..., 0]


@register("metric", aliases=("mse", "MSE"))
class MeanSquaredError(MeanMetricWrapper):
    """Running mean of the squared error."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric", aliases=("mae", "MAE"))
class MeanAbsoluteError(MeanMetricWrapper):
    """Running mean of the absolute error."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric", aliases=("mape", "MAPE"))
class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Running mean of the absolute percentage error."""

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric", aliases=("msle", "MSLE"))
class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Running mean of the squared logarithmic error."""

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric", aliases=("rmse",))
class RootMeanSquaredError(Mean):
    """``sqrt(sum_i w_i e_i / sum_i w_i)`` with ``e_i`` the per-sample mean squared error."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = _aligned(y_true, y_pred)
        super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self) -> float:
        return math.sqrt(super().result())


class _PlainMetric(MeanMetricWrapper):
    """A function metric whose config is just its name and dtype (as Keras's)."""

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric")
class LogCoshError(_PlainMetric):
    """Running mean of the logarithm of the hyperbolic cosine of the error."""

    def __init__(self, name: str = "logcosh", dtype: Any = None) -> None:
        super().__init__(log_cosh, name=name, dtype=dtype)


@register("metric")
class CosineSimilarity(MeanMetricWrapper):
    """Running mean of the cosine similarity of ``y_true`` and ``y_pred`` along ``axis``.

    Args:
        name, dtype: as for ``Metric``.
        axis: the axis along which the vectors lie (default the last).
    """

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}


class _CrossentropyMetric(MeanMetricWrapper):
    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}


@register("metric", aliases=("bce", "BCE"))
class BinaryCrossentropy(_CrossentropyMetric):
    """Running mean of the binary cross-entropy."""

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(
            binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


@register("metric")
class CategoricalCrossentropy(_CrossentropyMetric):
    """Running mean of the categorical cross-entropy (one-hot labels)."""

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(
            categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


@register("metric")
class SparseCategoricalCrossentropy(_CrossentropyMetric):
    """Running mean of the sparse categorical cross-entropy (integer labels)."""

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(
            sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits
        )
