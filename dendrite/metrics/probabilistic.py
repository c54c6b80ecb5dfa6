"""Distribution metrics, each the running mean of a per-sample value (``eps`` is Keras's
backend epsilon, 1e-7):

- kl_divergence: ``sum(y log(y / p))`` over the last axis, ``y`` and ``p`` clipped to
  ``[eps, 1]``
- poisson:       ``mean(p - y log(p + eps))`` over the last axis (a 1-D batch counts one
  value per element, as the regression metrics do)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import to_array
from dendrite.metrics.regression import _aligned, _last_axis_mean, _PlainMetric
from dendrite.registry import register


def kl_divergence(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample Kullback-Leibler divergence ``sum(y_true log(y_true / y_pred))``."""
    y_pred = to_array(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float64)
    y_true = to_array(y_true).astype(y_pred.dtype, copy=False)
    eps = _settings.epsilon()
    y_true = np.clip(y_true, eps, 1.0)
    y_pred = np.clip(y_pred, eps, 1.0)
    return np.sum(y_true * np.log(y_true / y_pred), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(y_pred - y_true log(y_pred + eps))`` over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return _last_axis_mean(y_pred - y_true * np.log(y_pred + _settings.epsilon()))


@register("metric")
class KLDivergence(_PlainMetric):
    """Running mean of the Kullback-Leibler divergence of ``y_pred`` from ``y_true``."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(kl_divergence, name=name, dtype=dtype)


@register("metric")
class Poisson(_PlainMetric):
    """Running mean of the Poisson loss ``y_pred - y_true log(y_pred)``."""

    def __init__(self, name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(poisson, name=name, dtype=dtype)
