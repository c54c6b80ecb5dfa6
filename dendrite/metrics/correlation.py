"""Correlation metrics (Keras 3 names), each the running mean of a per-sample coefficient
computed along ``axis`` (``y`` the targets, ``p`` the predictions, means and variances
over ``axis``, variances and standard deviations of the population, ``eps`` Keras'
``epsilon()``):

- pearson_correlation:     ``mean(((y - mean y) / std y) ((p - mean p) / std p))``
- concordance_correlation: ``mean(2 (y - mean p)(p - mean p) / (var y + var p + (mean y -
  mean p)^2 + eps))`` -- Keras 3's formula as it stands: the first factor centres ``y`` on
  the mean of ``p`` (Lin's coefficient centres it on its own mean); kept so that
  dendrite's numbers are Keras'.

``PearsonCorrelation`` and ``ConcordanceCorrelation`` average these per-sample values over
the batches seen, weighted by ``sample_weight`` (Keras' ``MeanMetricWrapper``); they are
streaming means of per-sample coefficients, not one coefficient over every value seen.
A constant row has standard deviation 0 and a Pearson value of NaN, as in Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import MeanMetricWrapper
from dendrite.metrics.regression import _aligned
from dendrite.registry import register


def pearson_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Per-sample Pearson coefficient along ``axis`` (see the module docstring)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    true_c = y_true - np.mean(y_true, axis=axis, keepdims=True)
    pred_c = y_pred - np.mean(y_pred, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        true_c = true_c / np.std(true_c, axis=axis, keepdims=True)
        pred_c = pred_c / np.std(pred_c, axis=axis, keepdims=True)
    return np.mean(true_c * pred_c, axis=axis)


def concordance_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Per-sample concordance coefficient along ``axis``, Keras 3's formula (see the module
    docstring)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    true_mean = np.mean(y_true, axis=axis, keepdims=True)
    pred_mean = np.mean(y_pred, axis=axis, keepdims=True)
    true_var = np.var(y_true - true_mean, axis=axis, keepdims=True)
    pred_var = np.var(y_pred - pred_mean, axis=axis, keepdims=True)
    covariance = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + np.square(true_mean - pred_mean)
    return np.mean(2.0 * covariance / (norm + _settings.epsilon()), axis=axis)


class _CorrelationMetric(MeanMetricWrapper):
    _fn: Any = None
    _default_name = ""

    def __init__(self, name: str | None = None, dtype: Any = None, axis: int = -1) -> None:
        super().__init__(type(self)._fn, name=name or self._default_name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


@register("metric")
class PearsonCorrelation(_CorrelationMetric):
    """Running (weighted) mean of the per-sample Pearson coefficient (see the module
    docstring).

    Args:
        name: the metric's name ("pearson_correlation").
        dtype: as for ``Metric``.
        axis: the axis the coefficient is computed along (-1).
    """

    _fn = staticmethod(pearson_correlation)
    _default_name = "pearson_correlation"

    def __init__(self, name: str = "pearson_correlation", dtype: Any = None, axis: int = -1):
        super().__init__(name=name, dtype=dtype, axis=axis)


@register("metric")
class ConcordanceCorrelation(_CorrelationMetric):
    """Running (weighted) mean of the per-sample concordance coefficient (Keras 3's
    formula, see the module docstring).

    Args:
        name: the metric's name ("concordance_correlation").
        dtype: as for ``Metric``.
        axis: the axis the coefficient is computed along (-1).
    """

    _fn = staticmethod(concordance_correlation)
    _default_name = "concordance_correlation"

    def __init__(self, name: str = "concordance_correlation", dtype: Any = None, axis: int = -1):
        super().__init__(name=name, dtype=dtype, axis=axis)
