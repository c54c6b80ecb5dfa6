"""TruePositives, FalsePositives, TrueNegatives, FalseNegatives: one cell of the confusion
matrix, summed over every prediction seen, at one or more thresholds.

With the notation of ``dendrite.metrics.confusion`` (a prediction ``p`` is positive at
threshold ``t`` when ``p > t``, a label when it is non-zero, ``w`` the sample weight):

    TP(t) = sum w [y and p > t]      FP(t) = sum w [not y and p > t]
    TN(t) = sum w [not y and p <= t] FN(t) = sum w [y and p <= t]

As in Keras, evenly spaced thresholds ``0, 1/(n-1), ..., 1`` (three or more) take the
bucketed path, which clips predictions to [0, 1] first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import Metric
from dendrite.metrics.confusion import (
    _bucketed_counts,
    _counts_by_threshold,
    _parse_thresholds,
    _prepared,
)
from dendrite.registry import register

_CELLS = {"tp": 0, "fp": 1, "tn": 2, "fn": 3}


def _evenly_spaced(thresholds: list[float]) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``: three or more, at ``i / (n - 1)``."""
    count = len(thresholds)
    if count < 3:
        return False
    grid = np.arange(count, dtype=np.float32) / (count - 1)
    return bool(np.allclose(thresholds, grid, atol=_settings.epsilon()))


def confusion_counts(
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    thresholds: list[float],
    class_id: int | None = None,
    evenly: bool | None = None,
) -> tuple[np.ndarray, ...]:
    """TP, FP, TN, FN (each of shape ``(len(thresholds),)``) of one batch, as Keras's
    ``update_confusion_matrix_variables``: the bucketed pass for evenly spaced thresholds
    (exactly 0 and 1 at the ends; ``evenly`` says so, or None to check), one comparison per
    threshold otherwise."""
    labels, preds, weights = _prepared(y_true, y_pred, sample_weight, None, class_id)
    labels, preds = labels.ravel(), preds.ravel()
    weights = None if weights is None else weights.ravel()
    if _evenly_spaced(thresholds) if evenly is None else evenly:
        return _bucketed_counts(labels, preds, weights, len(thresholds), with_epsilon=False)
    return _counts_by_threshold(labels, preds, weights, np.asarray(thresholds, np.float64))


class _ConditionCount(Metric):
    """One confusion-matrix cell at each threshold (``_cell`` names it)."""

    _cell = "tp"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, 0.5)
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = confusion_counts(y_true, y_pred, sample_weight, self.thresholds)
        self.accumulator += counts[_CELLS[self._cell]]

    def result(self) -> Any:
        """A float for one threshold, else an array with one count per threshold."""
        if len(self.thresholds) == 1:
            return float(self.accumulator[0])
        return self.accumulator.copy()

    def reset_state(self) -> None:
        self.accumulator = np.zeros(len(self.thresholds))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


@register("metric")
class TruePositives(_ConditionCount):
    """The (weighted) number of positives predicted positive: ``TP(t)``.

    Args:
        thresholds: a float or list of floats in [0, 1] (default 0.5); ``result`` is a float
            for one threshold, else an array with one count per threshold.
        name, dtype: as for ``Metric``.
    """

    _cell = "tp"


@register("metric")
class FalsePositives(_ConditionCount):
    """The (weighted) number of negatives predicted positive: ``FP(t)``.

    Arguments as for ``TruePositives``.
    """

    _cell = "fp"


@register("metric")
class TrueNegatives(_ConditionCount):
    """The (weighted) number of negatives predicted negative: ``TN(t)``.

    Arguments as for ``TruePositives``.
    """

    _cell = "tn"


@register("metric")
class FalseNegatives(_ConditionCount):
    """The (weighted) number of positives predicted negative: ``FN(t)``.

    Arguments as for ``TruePositives``.
    """

    _cell = "fn"
