"""Accuracy metrics: how often the prediction matches the label.

Each per-sample function returns 1.0 for a hit and 0.0 for a miss (averaged over the last
axis where Keras does), and the class is its running mean.

- accuracy:                  ``y_true == y_pred``
- binary_accuracy:           ``y_true == (y_pred > threshold)``
- categorical_accuracy:      ``argmax(y_true) == argmax(y_pred)``
- sparse_categorical_accuracy: ``y_true == argmax(y_pred)``
- top_k (sparse or one-hot): the label's score is at least the k-th largest score (ties at
  the boundary count as hits, as TensorFlow's ``in_top_k``).

A 1-D batch (``y_true`` and ``y_pred`` both of shape ``(n,)``) counts as ``n`` samples (in
Keras it would be averaged into one value per batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.metrics.base import MeanMetricWrapper, masked_weight, squeeze_or_expand, to_array
from dendrite.registry import register


def _per_sample(hits: np.ndarray) -> np.ndarray:
    """Average over the last axis (Keras); a 1-D batch already has one value per sample."""
    if hits.ndim < 2:
        return hits.astype(np.float64)
    return np.mean(hits, axis=-1, dtype=np.float64)


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Fraction of exact matches along the last axis."""
    y_true, y_pred = squeeze_or_expand(to_array(y_true), to_array(y_pred))
    return _per_sample(y_true == y_pred)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Fraction of ``y_true == (y_pred > threshold)`` along the last axis."""
    y_true, y_pred = squeeze_or_expand(to_array(y_true), to_array(y_pred))
    return _per_sample(y_true == (y_pred > threshold))


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where the one-hot label's class is the top-scoring class."""
    y_true, y_pred = to_array(y_true), to_array(y_pred)
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def _sparse_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        return y_true[..., 0]
    return y_true


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where the integer label is the top-scoring class."""
    y_pred = to_array(y_pred)
    y_true = _sparse_labels(to_array(y_true), y_pred)
    return (np.argmax(y_pred, axis=-1) == y_true).astype(np.float64)


def _in_top_k(labels: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Whether each label's score is among the ``k`` largest of its row."""
    classes = scores.shape[-1]
    labels = labels.astype(np.intp, copy=False)
    if k >= classes:
        return np.ones(labels.shape, dtype=bool)
    kth = np.partition(scores, classes - k, axis=-1)[..., classes - k]
    picked = np.take_along_axis(scores, labels[..., None], axis=-1)[..., 0]
    return picked >= kth


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where the one-hot label's class is among the ``k`` top-scoring classes."""
    y_true, y_pred = to_array(y_true), to_array(y_pred)
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where the integer label is among the ``k`` top-scoring classes."""
    y_pred = to_array(y_pred)
    y_true = _sparse_labels(to_array(y_true), y_pred)
    return _in_top_k(y_true, y_pred, k).astype(np.float64)


@register("metric", aliases=("acc",))
class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric")
class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches a 0/1 label.

    Args:
        name, dtype: as for ``Metric``.
        threshold: in (0, 1); predictions above it count as 1.
    """

    def __init__(
        self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5
    ) -> None:
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError(
                f"BinaryAccuracy: threshold must be in the interval (0, 1), got {threshold}."
            )
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        sample_weight = masked_weight(y_pred, sample_weight)
        y_true, y_pred = squeeze_or_expand(to_array(y_true), to_array(y_pred))
        if sample_weight is None and y_true.shape == y_pred.shape and y_pred.ndim:
            # Hot path: one comparison pass and one count.
            hits = np.count_nonzero(y_true == (y_pred > self.threshold))
            samples = y_pred.shape[0]
            self.total += hits * samples / y_pred.size
            self.count += samples
            return
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


@register("metric")
class CategoricalAccuracy(MeanMetricWrapper):
    """How often the top-scoring class is the one-hot label's class."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric")
class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the top-scoring class is the integer label (logits or probabilities)."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        sample_weight = masked_weight(y_pred, sample_weight)
        if sample_weight is not None:
            super().update_state(y_true, to_array(y_pred), sample_weight)
            return
        # Hot path: argmax, compare, count.
        y_pred = to_array(y_pred)
        y_true = _sparse_labels(to_array(y_true), y_pred)
        hits = np.count_nonzero(y_pred.argmax(axis=-1) == y_true)
        size = max(y_true.size, 1)
        samples = y_true.shape[0] if y_true.ndim else 1
        self.total += hits * samples / size
        self.count += samples

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@register("metric")
class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the ``k`` top-scoring classes."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


@register("metric")
class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` top-scoring classes."""

    def __init__(
        self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None
    ):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}
