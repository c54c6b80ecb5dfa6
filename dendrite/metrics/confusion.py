"""Confusion-matrix metrics: Precision, Recall and AUC, as Keras computes them.

At a threshold ``t`` a prediction ``p`` counts as positive when ``p > t``; a label counts as
positive when it is non-zero. With weights ``w`` (1 by default) the metric accumulates

    TP(t) = sum w [y and p > t]      FP(t) = sum w [not y and p > t]
    FN(t) = sum w [y and p <= t]     TN(t) = sum w [not y and p <= t]

and reports ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)`` (0 when the
denominator is 0). AUC uses ``num_thresholds`` evenly spaced thresholds (the first just
below 0, the last just above 1); each prediction falls in one bucket between thresholds,
so one ``bincount`` and a reversed cumulative sum give every TP(t), FP(t) in O(N + T).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import Metric, squeeze_or_expand, to_array
from dendrite.registry import register

NEG_INF = -1e10


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _parse_thresholds(thresholds: Any, default: float) -> list[float]:
    if thresholds is None:
        return [default]
    values = [thresholds] if np.ndim(thresholds) == 0 else list(np.ravel(thresholds))
    bad = [t for t in values if t is None or not 0 <= t <= 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1]; received {bad}.")
    return [float(t) for t in values]


def _filter_top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` largest values of the last axis (ties: lower index first); the others
    become NEG_INF, so they never pass a threshold."""
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, x, NEG_INF)


def _prepared(
    y_true: Any, y_pred: Any, sample_weight: Any, top_k: int | None, class_id: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels (bool), predictions (float64) and weights (or None), all of one shape."""
    y_pred = np.asarray(to_array(y_pred), dtype=np.float64)
    y_true = to_array(y_true)
    y_pred, y_true = squeeze_or_expand(y_pred, y_true)
    weight = None
    if sample_weight is not None:
        weight = np.asarray(to_array(sample_weight), dtype=np.float64)[..., None]
        _, weight = squeeze_or_expand(y_true, weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim < 2:
            raise ValueError(
                f"class_id needs y_pred of shape (samples, classes); got shape {y_pred.shape}."
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    if weight is not None:
        try:
            weight = np.broadcast_to(weight, y_pred.shape)
        except ValueError:
            raise ValueError(
                f"sample_weight of shape {np.shape(sample_weight)} cannot be broadcast to "
                f"y_pred of shape {y_pred.shape}."
            ) from None
    return y_true != 0, y_pred, weight


def _counts_by_threshold(
    labels: np.ndarray, preds: np.ndarray, weights: np.ndarray | None, thresholds: np.ndarray
) -> tuple[np.ndarray, ...]:
    """TP, FP, TN, FN at each threshold, summed over every prediction."""
    w = np.ones(labels.shape) if weights is None else weights
    pos_w = np.where(labels, w, 0.0)
    neg_w = w - pos_w
    shape = (-1,) + (1,) * preds.ndim
    above = preds[None] > thresholds.reshape(shape)
    axes = tuple(range(1, above.ndim))
    tp = np.sum(above * pos_w, axis=axes)
    fp = np.sum(above * neg_w, axis=axes)
    return tp, fp, neg_w.sum() - fp, pos_w.sum() - tp


def _bucketed_counts(
    labels: np.ndarray,
    preds: np.ndarray,
    weights: np.ndarray | None,
    num_thresholds: int,
    with_epsilon: bool,
    multi_label: bool = False,
) -> tuple[np.ndarray, ...]:
    """TP, FP, TN, FN at ``num_thresholds`` evenly spaced thresholds, in one pass (see the
    module docstring); Keras's "optimized" path for evenly distributed thresholds.

    Predictions are clipped to [0, 1]. A prediction ``p`` in ``(j / (T-1), (j+1) / (T-1)]``
    exceeds thresholds 0..j, so it is put in bucket ``j = ceil(p (T-1)) - 1`` and
    TP(t_i) = sum of buckets j >= i. With ``with_epsilon`` (AUC: the first threshold is
    -eps, the last 1 + eps) p = 0 goes to bucket 0, as it exceeds -eps; without (thresholds
    exactly 0 and 1) it exceeds no threshold and lands in no bucket. With ``multi_label``
    the data are (samples, labels) and each count has shape (T, labels); else (T,).
    """
    count = num_thresholds
    preds = np.clip(preds, 0.0, 1.0)
    bucket = np.ceil(preds * (count - 1)) - 1
    w = np.ones(labels.shape) if weights is None else weights
    pos_w = np.where(labels, w, 0.0)
    neg_w = w - pos_w
    if with_epsilon:
        np.maximum(bucket, 0, out=bucket)
    pos_total = pos_w.sum(axis=0) if multi_label else pos_w.sum()
    neg_total = neg_w.sum(axis=0) if multi_label else neg_w.sum()
    bucket = bucket.astype(np.intp)
    if multi_label:
        width = labels.shape[1]
        bucket = bucket * width + np.arange(width)
        shape = (count, width)
    else:
        shape = (count,)
    keep = bucket >= 0  # all of them with_epsilon
    bucket, pos_w, neg_w = bucket[keep], pos_w[keep], neg_w[keep]
    size = int(np.prod(shape))
    tp = np.bincount(bucket.ravel(), pos_w.ravel(), minlength=size)
    fp = np.bincount(bucket.ravel(), neg_w.ravel(), minlength=size)
    tp = np.cumsum(tp.reshape(shape)[::-1], axis=0)[::-1]
    fp = np.cumsum(fp.reshape(shape)[::-1], axis=0)[::-1]
    return tp, fp, neg_total - fp, pos_total - tp


class _ThresholdMetric(Metric):
    """Precision and Recall: TP, FP, FN accumulated at a list of thresholds."""

    def __init__(
        self,
        thresholds: Any = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = _parse_thresholds(thresholds, default)
        self._thresholds = np.array(self.thresholds, dtype=np.float64)
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        labels, preds, weights = _prepared(y_true, y_pred, sample_weight, self.top_k, self.class_id)
        tp, fp, _, fn = _counts_by_threshold(
            labels.ravel(), preds.ravel(), None if weights is None else weights.ravel(),
            self._thresholds,
        )  # fmt: skip
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += fn

    def reset_state(self) -> None:
        size = len(self.thresholds)
        self.true_positives = np.zeros(size)
        self.false_positives = np.zeros(size)
        self.false_negatives = np.zeros(size)

    def _report(self, values: np.ndarray) -> Any:
        return float(values[0]) if len(self.thresholds) == 1 else values

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


@register("metric")
class Precision(_ThresholdMetric):
    """``TP / (TP + FP)``: the fraction of predicted positives that are positive.

    Args:
        thresholds: a float or list of floats in [0, 1] (default 0.5; with ``top_k``, every
            kept prediction counts); ``result`` is a float for one threshold, else an array.
        top_k: only the ``k`` highest predictions of each sample can be positive.
        class_id: compute the metric for this class (column) only.
        name, dtype: as for ``Metric``.
    """

    def result(self) -> Any:
        tp = self.true_positives
        return self._report(_divide_no_nan(tp, tp + self.false_positives))


@register("metric")
class Recall(_ThresholdMetric):
    """``TP / (TP + FN)``: the fraction of positives that were predicted positive.

    Arguments as for ``Precision``.
    """

    def result(self) -> Any:
        tp = self.true_positives
        return self._report(_divide_no_nan(tp, tp + self.false_negatives))


@register("metric")
class AUC(Metric):
    """Area under the ROC or precision-recall curve, from a confusion matrix at
    ``num_thresholds`` thresholds.

    ROC: ``x = FP / (FP + TN)``, ``y = TP / (TP + FN)``, area ``sum (x_i - x_{i+1}) h_i``
    with ``h_i = (y_i + y_{i+1}) / 2`` ("interpolation", the trapezoid rule), or the min
    ("minoring") or max ("majoring") of the two ends. PR with "interpolation" follows Davis
    & Goadrich (2006): TP and TP + FP vary linearly between thresholds, not their ratio.

    Args:
        num_thresholds: number of thresholds (> 1), evenly spaced over [0, 1].
        curve: "ROC" or "PR".
        summation_method: "interpolation", "minoring" or "majoring".
        name, dtype: as for ``Metric``.
        thresholds: explicit thresholds in [0, 1] instead of ``num_thresholds``.
        multi_label: with 2-D data, one curve per label (column), averaged (weighted by
            ``label_weights``); otherwise every entry counts as one prediction.
        num_labels: number of labels, when known up front (multi_label only).
        label_weights: non-negative weight per label.
        from_logits: apply the logistic sigmoid to ``y_pred`` first.
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        curve_key = str(curve).upper()
        if curve_key not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve {curve!r}: expected "ROC" or "PR".')
        method = str(summation_method).lower()
        if method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f"Invalid AUC summation_method {summation_method!r}: expected "
                '"interpolation", "minoring" or "majoring".'
            )
        self._init_from_thresholds = thresholds is not None
        eps = _settings.epsilon()  # as Keras: read when the metric is made
        if thresholds is not None:
            inner = sorted(_parse_thresholds(thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
            grid = np.arange(self.num_thresholds) / (self.num_thresholds - 1)
            self._evenly = bool(np.allclose([0.0, *inner, 1.0], grid, atol=eps))
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    f"AUC: num_thresholds must be an integer > 1, got {num_thresholds}."
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - eps, *inner, 1.0 + eps])
        self.curve = curve_key
        self.summation_method = method
        self.multi_label = multi_label
        self.num_labels = num_labels
        if label_weights is not None:
            label_weights = np.asarray(label_weights, dtype=np.float64)
            if np.any(label_weights < 0):
                raise ValueError("AUC: all values of label_weights must be non-negative.")
        self.label_weights = label_weights
        self._from_logits = from_logits
        if num_labels is not None and not multi_label:
            raise ValueError("AUC: num_labels is needed only when multi_label is True.")
        self._labels = num_labels
        self.reset_state()

    @property
    def thresholds(self) -> list[float]:
        return [float(t) for t in self._thresholds]

    def reset_state(self) -> None:
        shape = (self.num_thresholds,)
        if self.multi_label:
            shape = (self.num_thresholds, self._labels or 0)
        self.true_positives = np.zeros(shape)
        self.false_positives = np.zeros(shape)
        self.true_negatives = np.zeros(shape)
        self.false_negatives = np.zeros(shape)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = np.asarray(to_array(y_pred), dtype=np.float64)
        if self._from_logits:
            y_pred = 0.5 * (1.0 + np.tanh(0.5 * y_pred))  # sigmoid, overflow-free
        labels, preds, weights = _prepared(y_true, y_pred, sample_weight, None, None)
        if self.multi_label:
            if preds.ndim != 2:
                raise ValueError(
                    f"AUC(multi_label=True) needs y_pred of rank 2 (samples, labels); got "
                    f"shape {preds.shape}."
                )
            if not self._labels:
                self._labels = preds.shape[1]
                self.reset_state()
            elif preds.shape[1] != self._labels:
                raise ValueError(
                    f"AUC: expected {self._labels} labels, got y_pred of shape {preds.shape}."
                )
        else:
            if self.label_weights is not None:
                lw = np.broadcast_to(self.label_weights, preds.shape)
                weights = lw if weights is None else weights * lw
            labels, preds = labels.ravel(), preds.ravel()
            weights = None if weights is None else weights.ravel()
        if self._evenly:
            tp, fp, tn, fn = self._bucketed(labels, preds, weights)
        elif self.multi_label:
            tp, fp, tn, fn = self._per_label(labels, preds, weights)
        else:
            tp, fp, tn, fn = _counts_by_threshold(labels, preds, weights, self._thresholds)
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += tn
        self.false_negatives += fn

    def _per_label(self, labels, preds, weights) -> tuple[np.ndarray, ...]:
        w = np.ones(labels.shape) if weights is None else weights
        pos_w = np.where(labels, w, 0.0)
        neg_w = w - pos_w
        above = preds[None] > self._thresholds[:, None, None]
        tp = np.sum(above * pos_w, axis=1)
        fp = np.sum(above * neg_w, axis=1)
        return tp, fp, neg_w.sum(0) - fp, pos_w.sum(0) - tp

    def _bucketed(self, labels, preds, weights) -> tuple[np.ndarray, ...]:
        return _bucketed_counts(
            labels, preds, weights, self.num_thresholds, with_epsilon=True,
            multi_label=self.multi_label,
        )  # fmt: skip

    def _interpolate_pr_auc(self) -> np.ndarray:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide_no_nan(
            slope * (dtp + intercept * np.log(ratio)),
            np.maximum(tp[1:] + fn[1:], 0),
        )

    def result(self) -> float:
        tp, fp = self.true_positives, self.false_positives
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr_auc()
        else:
            recall = _divide_no_nan(tp, tp + self.false_negatives)
            if self.curve == "ROC":
                x = _divide_no_nan(fp, fp + self.true_negatives)
                y = recall
            else:
                x = recall
                y = _divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        if not self.multi_label:
            return float(np.sum(terms))
        by_label = np.sum(terms, axis=0)
        if self.label_weights is None:
            return float(np.mean(by_label)) if by_label.size else 0.0
        weighted = np.sum(by_label * self.label_weights)
        return float(_divide_no_nan(weighted, self.label_weights.sum()))

    def get_config(self) -> dict[str, Any]:
        label_weights = self.label_weights
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if label_weights is None else label_weights.tolist(),
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
