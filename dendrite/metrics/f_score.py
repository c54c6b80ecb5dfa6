"""FBetaScore and F1Score: the harmonic mean of precision and recall, per class or averaged.

Inputs are ``(samples, classes)``: one-hot or multi-label ``y_true``, scores ``y_pred``. A
prediction counts as positive when it exceeds ``threshold``, or, with ``threshold=None``,
when it is its row's largest score (and not 0). With weights ``w`` (1 by default), per class
``c`` (or summed over every class with ``average="micro"``):

    TP_c = sum w y p      FP_c = sum w (1 - y) p      FN_c = sum w y (1 - p)

    P = TP / (TP + FP + eps)        R = TP / (TP + FN + eps)
    F_beta = (1 + beta^2) P R / (beta^2 P + R + eps)

with ``eps = 1e-7`` (Keras's backend epsilon), so an undefined score is 0. ``average``:
None gives one score per class; "micro" the score of the pooled counts; "macro" the mean of
the per-class scores; "weighted" their mean weighted by each class's (weighted) number of
positives ``sum w y``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import Metric, to_array
from dendrite.registry import register

_AVERAGES = (None, "micro", "macro", "weighted")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@register("metric")
class FBetaScore(Metric):
    """The F-beta score (see the module docstring).

    Args:
        average: None (a score per class, an array of shape ``(classes,)``), "micro",
            "macro" or "weighted" (a float).
        beta: weight of recall against precision (> 0); 1 gives the F1 score.
        threshold: predictions above it (in (0, 1]) are positive; None takes each row's
            largest score as its positive.
        name, dtype: as for ``Metric``.
    """

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ) -> None:
        cls = type(self).__name__
        if average not in _AVERAGES:
            raise ValueError(
                f"{cls}: invalid `average` argument value. Expected one of: None, 'micro', "
                f"'macro', 'weighted'. Received: average={average!r}"
            )
        if not _is_number(beta) or not beta > 0:
            raise ValueError(f"{cls}: `beta` must be a number > 0. Received: beta={beta!r}")
        if threshold is not None and (not _is_number(threshold) or not 0 < threshold <= 1):
            raise ValueError(
                f"{cls}: `threshold` must be None or a number with 0 < threshold <= 1. "
                f"Received: threshold={threshold!r}"
            )
        super().__init__(name=name, dtype=dtype)
        self.average = average
        self.beta = float(beta)
        self.threshold = None if threshold is None else float(threshold)
        self.axis = None if average == "micro" else 0
        self.num_classes: int | None = None
        self.reset_state()

    def _check(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        cls = type(self).__name__
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                f"{cls} expects 2D inputs with shape (batch_size, output_dim). Received input "
                f"shapes: y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}."
            )
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{cls}: y_true and y_pred must have the same shape, got {y_true.shape} and "
                f"{y_pred.shape}."
            )
        if self.num_classes is None:
            self.num_classes = y_pred.shape[1]
            self.reset_state()
        elif y_pred.shape[1] != self.num_classes:
            raise ValueError(
                f"{cls}: expected {self.num_classes} classes (set by the first batch), got "
                f"y_pred of shape {y_pred.shape}."
            )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = np.asarray(to_array(y_true), dtype=np.float64)
        y_pred = np.asarray(to_array(y_pred), dtype=np.float64)
        self._check(y_true, y_pred)
        if self.threshold is None:
            top = np.max(y_pred, axis=-1, keepdims=True) if y_pred.size else y_pred
            positive = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            positive = y_pred > self.threshold
        p = positive.astype(np.float64)
        if sample_weight is None:
            w = 1.0
        else:
            w = np.asarray(to_array(sample_weight), dtype=np.float64)
            if w.ndim == 1:
                w = w[:, None]
            try:
                w = np.broadcast_to(w, y_true.shape)
            except ValueError:
                raise ValueError(
                    f"{type(self).__name__}: sample_weight of shape {np.shape(sample_weight)} "
                    f"cannot be broadcast to y_true of shape {y_true.shape}."
                ) from None
        self.true_positives += np.sum(w * p * y_true, axis=self.axis)
        self.false_positives += np.sum(w * p * (1.0 - y_true), axis=self.axis)
        self.false_negatives += np.sum(w * (1.0 - p) * y_true, axis=self.axis)
        self.intermediate_weights += np.sum(w * y_true, axis=self.axis)

    def result(self) -> Any:
        """The score: an array of shape ``(classes,)`` with ``average=None``, else a float.
        Before the first batch (the number of classes still unknown) that array is empty
        and the float 0."""
        if self.num_classes is None:
            return np.zeros(0) if self.average is None else 0.0
        eps = _settings.epsilon()
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        beta2 = self.beta**2
        score = (1.0 + beta2) * (precision * recall) / (beta2 * precision + recall + eps)
        if self.average == "weighted":
            weights = self.intermediate_weights
            return float(np.sum(score * weights / (np.sum(weights) + eps)))
        if self.average is not None:
            return float(np.mean(score))
        return score

    def reset_state(self) -> None:
        shape = () if self.average == "micro" or self.num_classes is None else (self.num_classes,)
        self.true_positives = np.zeros(shape)
        self.false_positives = np.zeros(shape)
        self.false_negatives = np.zeros(shape)
        self.intermediate_weights = np.zeros(shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


@register("metric")
class F1Score(FBetaScore):
    """The F1 score: ``2 P R / (P + R)``, ``FBetaScore`` with ``beta=1``.

    Args:
        average, threshold, name, dtype: as for ``FBetaScore``.
    """

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str = "f1_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
