"""Hinge metrics, each the running mean of a per-sample value (``y`` labels, ``p`` scores;
labels made only of 0 and 1 in a batch are mapped to -1 and 1 first, as Keras does):

- hinge:             ``mean(max(1 - y p, 0))`` over the last axis
- squared_hinge:     ``mean(max(1 - y p, 0)^2)`` over the last axis
- categorical_hinge: ``max(max((1 - y) p) - sum(y p) + 1, 0)`` (one-hot ``y``)

A 1-D batch of hinge or squared hinge counts one value per element, as the regression
metrics do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.metrics.base import to_array
from dendrite.metrics.regression import _aligned, _last_axis_mean, _PlainMetric
from dendrite.registry import register


def _hinge_labels(y_true: np.ndarray) -> np.ndarray:
    """-1/1 labels: a batch of 0/1 labels becomes ``2 y - 1``; others stay as they are."""
    if np.all((y_true == 0) | (y_true == 1)):
        return 2.0 * y_true - 1.0
    return y_true


def hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(max(1 - y_true * y_pred, 0))`` over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return _last_axis_mean(np.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0))


def squared_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(max(1 - y_true * y_pred, 0)^2)`` over the last axis."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return _last_axis_mean(np.square(np.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)))


def categorical_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``max(max((1 - y_true) y_pred) - sum(y_true y_pred) + 1, 0)``."""
    y_pred = to_array(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float64)
    y_true = to_array(y_true).astype(y_pred.dtype, copy=False)
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((1.0 - y_true) * y_pred, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


@register("metric")
class Hinge(_PlainMetric):
    """Running mean of the hinge loss (labels -1/1, or 0/1 mapped to them)."""

    def __init__(self, name: str = "hinge", dtype: Any = None) -> None:
        super().__init__(hinge, name=name, dtype=dtype)


@register("metric")
class SquaredHinge(_PlainMetric):
    """Running mean of the squared hinge loss (labels -1/1, or 0/1 mapped to them)."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(squared_hinge, name=name, dtype=dtype)


@register("metric")
class CategoricalHinge(_PlainMetric):
    """Running mean of the categorical hinge loss (one-hot labels)."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None) -> None:
        super().__init__(categorical_hinge, name=name, dtype=dtype)
