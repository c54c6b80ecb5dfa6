"""R2Score: the coefficient of determination, per output column of ``(samples, outputs)``
data, accumulated over batches.

With weights ``w`` (1 by default), per column ``c``:

    SS_res = sum w (y - p)^2
    SS_tot = sum w y^2 - (sum w y)^2 / sum w          (the weighted total sum of squares)
    R2_c   = 1 - SS_res / SS_tot                      (0 where that is infinite)

``class_aggregation``: None keeps one score per column; "uniform_average" their mean;
"variance_weighted_average" their mean weighted by ``SS_tot``. With ``num_regressors = k > 0``
the adjusted score ``1 - (1 - R2) (n - 1) / (n - k - 1)`` is reported, where ``n`` is the
number of values seen (every entry of ``y_true``, as Keras counts it); when ``n - 1 <= k`` it
warns and falls back to the plain score, as Keras does.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite.metrics.base import Metric, squeeze_or_expand, to_array
from dendrite.registry import register

_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


@register("metric")
class R2Score(Metric):
    """The coefficient of determination (see the module docstring).

    Args:
        class_aggregation: None (an array with one score per output), "uniform_average" or
            "variance_weighted_average" (a float).
        num_regressors: number of independent regressors for the adjusted score (>= 0; 0
            gives the plain R2).
        name, dtype: as for ``Metric``.
    """

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ) -> None:
        if class_aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"R2Score: invalid value for argument `class_aggregation`. Expected one of "
                f"{_AGGREGATIONS}. Received: class_aggregation={class_aggregation!r}"
            )
        if not isinstance(num_regressors, (int, np.integer)) or num_regressors < 0:
            raise ValueError(
                f"R2Score: invalid value for argument `num_regressors`. Expected an integer "
                f">= 0. Received: num_regressors={num_regressors!r}"
            )
        super().__init__(name=name, dtype=dtype)
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.num_outputs: int | None = None
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = np.asarray(to_array(y_true), dtype=np.float64)
        y_pred = np.asarray(to_array(y_pred), dtype=np.float64)
        y_true, y_pred = squeeze_or_expand(y_true, y_pred)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                "R2Score expects 2D inputs with shape (batch_size, output_dim). Received "
                f"input shapes: y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}."
            )
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"R2Score: y_true and y_pred must have the same shape, got {y_true.shape} and "
                f"{y_pred.shape}."
            )
        if self.num_outputs is None:
            self.num_outputs = y_pred.shape[1]
            self.reset_state()
        elif y_pred.shape[1] != self.num_outputs:
            raise ValueError(
                f"R2Score: expected {self.num_outputs} outputs (set by the first batch), got "
                f"y_pred of shape {y_pred.shape}."
            )
        w = 1.0 if sample_weight is None else np.asarray(to_array(sample_weight), np.float64)
        if np.ndim(w) == 1:
            w = w[:, None]
        try:
            w = np.broadcast_to(w, y_true.shape)
        except ValueError:
            raise ValueError(
                f"R2Score: sample_weight of shape {np.shape(sample_weight)} cannot be "
                f"broadcast to y_true of shape {y_true.shape}."
            ) from None
        weighted = y_true * w
        self.sum += weighted.sum(axis=0)
        self.squared_sum += (y_true * weighted).sum(axis=0)
        self.total_mse += (np.square(y_true - y_pred) * w).sum(axis=0)
        self.count += w.sum(axis=0)
        self.num_samples += y_true.size

    def result(self) -> Any:
        """The score: a float, or an array with one per output (``class_aggregation=None``).
        With no data since the last reset: 0.0, or zeros (an empty array while the number
        of outputs is unknown)."""
        if not self.num_samples:
            return np.zeros(self.num_outputs or 0) if self.class_aggregation is None else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum / self.count
            total = self.squared_sum - self.sum * mean
            raw = 1.0 - self.total_mse / total
            raw = np.where(np.isinf(raw), 0.0, raw)
            if self.class_aggregation == "uniform_average":
                score: Any = float(np.mean(raw))
            elif self.class_aggregation == "variance_weighted_average":
                score = float(np.sum(total * raw) / np.sum(total))
            else:
                score = raw
        k, n = self.num_regressors, self.num_samples
        if k:
            if k > n - 1:
                warnings.warn(
                    "More independent predictors than datapoints in adjusted R2 score. "
                    "Falling back to standard R2 score.",
                    stacklevel=2,
                )
            elif k == n - 1:
                warnings.warn(
                    "Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                    stacklevel=2,
                )
            else:
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - k - 1.0)
                score = float(score) if np.ndim(score) == 0 else score
        return score

    def reset_state(self) -> None:
        shape = (self.num_outputs or 0,)
        self.sum = np.zeros(shape)
        self.squared_sum = np.zeros(shape)
        self.total_mse = np.zeros(shape)
        self.count = np.zeros(shape)
        self.num_samples = 0.0

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
