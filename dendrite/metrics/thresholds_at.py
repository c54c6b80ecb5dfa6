"""One rate at the best threshold where another rate reaches a target: PrecisionAtRecall,
RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity.

TP, FP, TN, FN are accumulated at ``num_thresholds`` thresholds ``t_i = i / (T - 1)`` (just
0.5 when ``T = 1``), as in ``dendrite.metrics.condition_counts``. With

    recall = sensitivity = TP / (TP + FN)      precision = TP / (TP + FP)
    specificity = TN / (TN + FP)               (each 0 when its denominator is 0)

``XAtY(value)`` reports ``max_i X(t_i)`` over the thresholds where ``Y(t_i) >= value``, or 0
when there is none (Keras's ``_find_max_under_constraint``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.metrics.base import Metric
from dendrite.metrics.condition_counts import confusion_counts
from dendrite.metrics.confusion import _divide_no_nan
from dendrite.registry import register


class _RateAtRate(Metric):
    """Base class: the confusion counts at every threshold, and the constrained maximum.

    ``_target`` names the constructor argument holding the value to reach (``recall``,
    ``precision``, ``specificity`` or ``sensitivity``).
    """

    _target = ""

    def __init__(
        self,
        value: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        cls = type(self).__name__
        if value is None or not 0 <= value <= 1:
            raise ValueError(
                f"{cls}: argument `{self._target}` must be in the range [0, 1]. "
                f"Received: {self._target}={value!r}"
            )
        if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 0:
            raise ValueError(
                f"{cls}: argument `num_thresholds` must be an integer > 0. "
                f"Received: num_thresholds={num_thresholds!r}"
            )
        super().__init__(name=name, dtype=dtype)
        self.value = float(value)
        setattr(self, self._target, value)
        self.num_thresholds = int(num_thresholds)
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds = [0.5]
        else:
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds = [0.0, *inner, 1.0]
        self._evenly = num_thresholds > 1
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        tp, fp, tn, fn = confusion_counts(
            y_true, y_pred, sample_weight, self.thresholds, self.class_id, evenly=self._evenly
        )
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += tn
        self.false_negatives += fn

    def reset_state(self) -> None:
        size = len(self.thresholds)
        self.true_positives = np.zeros(size)
        self.false_positives = np.zeros(size)
        self.true_negatives = np.zeros(size)
        self.false_negatives = np.zeros(size)

    # the four rates, one per threshold
    def _recall(self) -> np.ndarray:
        tp = self.true_positives
        return _divide_no_nan(tp, tp + self.false_negatives)

    def _precision(self) -> np.ndarray:
        tp = self.true_positives
        return _divide_no_nan(tp, tp + self.false_positives)

    def _specificity(self) -> np.ndarray:
        tn = self.true_negatives
        return _divide_no_nan(tn, tn + self.false_positives)

    def _best(self, constrained: np.ndarray, dependent: np.ndarray) -> float:
        """``max(dependent)`` where ``constrained >= value``; 0 when nowhere."""
        return float(np.max(np.where(constrained >= self.value, dependent, 0.0), initial=0.0))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_id": self.class_id,
            "num_thresholds": self.num_thresholds,
            self._target: getattr(self, self._target),
        }


@register("metric")
class PrecisionAtRecall(_RateAtRate):
    """The best precision at a threshold where recall is at least ``recall``.

    Args:
        recall: the recall to reach, in [0, 1].
        num_thresholds: number of evenly spaced thresholds over [0, 1] (> 0; 1 means the
            single threshold 0.5).
        class_id: compute the metric for this class (column) only.
        name, dtype: as for ``Metric``.
    """

    _target = "recall"

    def __init__(
        self,
        recall: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        return self._best(self._recall(), self._precision())


@register("metric")
class RecallAtPrecision(_RateAtRate):
    """The best recall at a threshold where precision is at least ``precision``.

    Arguments as for ``PrecisionAtRecall``, with ``precision`` (in [0, 1]) to reach.
    """

    _target = "precision"

    def __init__(
        self,
        precision: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        return self._best(self._precision(), self._recall())


@register("metric")
class SensitivityAtSpecificity(_RateAtRate):
    """The best sensitivity (recall) at a threshold where specificity is at least
    ``specificity``.

    Arguments as for ``PrecisionAtRecall``, with ``specificity`` (in [0, 1]) to reach.
    """

    _target = "specificity"

    def __init__(
        self,
        specificity: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        return self._best(self._specificity(), self._recall())


@register("metric")
class SpecificityAtSensitivity(_RateAtRate):
    """The best specificity at a threshold where sensitivity (recall) is at least
    ``sensitivity``.

    Arguments as for ``PrecisionAtRecall``, with ``sensitivity`` (in [0, 1]) to reach.
    """

    _target = "sensitivity"

    def __init__(
        self,
        sensitivity: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self) -> float:
        return self._best(self._recall(), self._specificity())
