"""The added Keras metrics on small hand-computed cases, their edge cases and their errors
(no Keras needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dendrite as tf
from dendrite import metrics

EPS = 1e-7


def test_condition_counts():
    y = [0, 1, 1, 1, 0]
    p = [0.6, 0.2, 0.5, 0.9, 0.1]
    w = [1.0, 2.0, 3.0, 4.0, 5.0]
    expected = {  # at 0.5 (p > t): positives predicted at indices 0 and 3
        metrics.TruePositives: 4.0,
        metrics.FalsePositives: 1.0,
        metrics.TrueNegatives: 5.0,
        metrics.FalseNegatives: 5.0,
    }
    for cls, value in expected.items():
        m = cls()
        m.update_state(y, p, sample_weight=w)
        assert m.result() == value and isinstance(m.result(), float)
        m.reset_state()
        assert m.result() == 0.0
    m = metrics.TruePositives(thresholds=[0.0, 0.5, 1.0])  # evenly spaced: bucketed pass
    m.update_state([1, 1, 1, 0], [0.0, 0.5, 1.0, 0.7])
    np.testing.assert_array_equal(m.result(), [2.0, 1.0, 0.0])  # p > t, 0 exceeds nothing


def test_rates_at_rates():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.7, 0.9])
    # thresholds 0, .25, .5, .75, 1 -> (TP, FP, TN, FN):
    # 0:(3,2,0,0) .25:(3,1,1,0) .5:(2,1,1,1) .75:(1,0,2,2) 1:(0,0,2,3)
    recall = np.array([1, 1, 2 / 3, 1 / 3, 0])
    precision = np.array([3 / 5, 3 / 4, 2 / 3, 1, 0])
    specificity = np.array([0, 0.5, 0.5, 1, 1])
    cases = [
        (metrics.PrecisionAtRecall(0.6, num_thresholds=5), precision[recall >= 0.6].max()),
        (metrics.RecallAtPrecision(0.7, num_thresholds=5), recall[precision >= 0.7].max()),
        (metrics.SensitivityAtSpecificity(0.5, num_thresholds=5),
         recall[specificity >= 0.5].max()),
        (metrics.SpecificityAtSensitivity(0.9, num_thresholds=5),
         specificity[recall >= 0.9].max()),
    ]  # fmt: skip
    for m, want in cases:
        m.update_state(y, p)
        assert m.result() == pytest.approx(want), type(m).__name__
    m = metrics.RecallAtPrecision(1.0, num_thresholds=5)
    m.update_state([1, 0], [0.1, 0.9])  # precision 1 is reached nowhere
    assert m.result() == 0.0
    m = metrics.PrecisionAtRecall(0.5, num_thresholds=1)  # the single threshold 0.5
    m.update_state([1, 1, 0], [0.6, 0.4, 0.7])
    assert m.thresholds == [0.5] and m.result() == pytest.approx(0.5)
    m = metrics.SensitivityAtSpecificity(0.5, num_thresholds=5, class_id=1)
    m.update_state(np.stack([1 - y, y], 1), np.stack([1 - p, p], 1))
    assert m.result() == pytest.approx(recall[specificity >= 0.5].max())


def test_f_scores():
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]], "float32")
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], "float32")
    # argmax predictions: 0, 1, 0, 2 -> per class TP (1,1,1), FP (1,0,0), FN (0,1,0)
    precision = np.array([1 / 2, 1, 1])
    recall = np.array([1, 1 / 2, 1])
    f1 = 2 * precision * recall / (precision + recall)
    m = metrics.F1Score()
    m.update_state(y, p)
    np.testing.assert_allclose(m.result(), f1, rtol=1e-6)
    m = metrics.F1Score(average="macro")
    m.update_state(y, p)
    assert m.result() == pytest.approx(f1.mean(), rel=1e-6)
    m = metrics.F1Score(average="weighted")
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.sum(f1 * [1, 2, 1]) / 4, rel=1e-6)
    m = metrics.F1Score(average="micro")  # TP 3, FP 1, FN 1
    m.update_state(y, p)
    assert m.result() == pytest.approx(0.75, rel=1e-6)
    m = metrics.FBetaScore(beta=2.0)
    m.update_state(y, p)
    f2 = 5 * precision * recall / (4 * precision + recall)
    np.testing.assert_allclose(m.result(), f2, rtol=1e-6)
    # a class never predicted nor present scores 0, not NaN
    m = metrics.F1Score(threshold=0.9)
    m.update_state(y, p)
    np.testing.assert_array_equal(m.result(), [0.0, 0.0, 0.0])
    assert metrics.F1Score().result().shape == (0,)  # no class known yet
    assert metrics.F1Score(average="macro").result() == 0.0


def test_r2_score():
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    p = np.array([[1.5], [2.0], [2.5], [4.0]])
    m = metrics.R2Score()
    assert m.result() == 0.0
    m.update_state(y[:2], p[:2])
    m.update_state(y[2:], p[2:])
    ss_res, ss_tot = 0.5, 5.0
    assert m.result() == pytest.approx(1 - ss_res / ss_tot)
    m = metrics.R2Score(num_regressors=1)
    m.update_state(y, p)
    assert m.result() == pytest.approx(1 - (ss_res / ss_tot) * 3 / 2)
    m = metrics.R2Score(num_regressors=3)
    m.update_state(y, p)
    with pytest.warns(UserWarning, match="Division by zero"):
        assert m.result() == pytest.approx(1 - ss_res / ss_tot)
    m = metrics.R2Score(class_aggregation=None)
    m.update_state(np.hstack([y, 2 * y]), np.hstack([p, 2 * y]))
    np.testing.assert_allclose(m.result(), [0.9, 1.0])
    m.reset_state()
    np.testing.assert_array_equal(m.result(), [0.0, 0.0])
    m = metrics.R2Score()
    m.update_state([[1.0], [1.0]], [[0.0], [2.0]])  # constant y_true: -inf becomes 0
    assert m.result() == 0.0


def test_iou():
    y = [0, 0, 1, 1, 2]
    p = [0, 1, 1, 1, 0]
    # cm rows true / cols pred: [[1,1,0],[0,2,0],[1,0,0]]
    # IoU_0 = 1/(2+2-1) = 1/3, IoU_1 = 2/(3+2-2) = 2/3, IoU_2 = 0/(0+1-0) = 0
    m = metrics.MeanIoU(3)
    m.update_state(y, p)
    assert m.result() == pytest.approx((1 / 3 + 2 / 3 + 0) / 3, rel=1e-6)
    m = metrics.IoU(3, target_class_ids=[1])
    m.update_state(y, p)
    assert m.result() == pytest.approx(2 / 3, rel=1e-6)
    m = metrics.MeanIoU(4)  # class 3 never seen: left out of the mean
    m.update_state(y, p)
    assert m.result() == pytest.approx(1 / 3, rel=1e-6)
    m = metrics.MeanIoU(3, ignore_class=2)
    m.update_state(y, p)
    assert m.result() == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-6)
    m = metrics.BinaryIoU(threshold=0.5)
    m.update_state([0, 1, 1, 0], [0.2, 0.5, 0.9, 0.7])  # >= 0.5 is class 1
    assert m.result() == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-6)
    m = metrics.OneHotMeanIoU(3)
    m.update_state(np.eye(3)[y], np.eye(3)[p] * 0.8 + 0.05)
    assert m.result() == pytest.approx(1 / 3, rel=1e-6)
    m = metrics.MeanIoU(3)
    assert m.dtype == "int32" and m.result() == 0.0
    with pytest.warns(UserWarning, match="weight as `float`"):
        m.update_state(y, p, sample_weight=[1.5, 1.0, 1.0, 1.0, 1.0])  # 1.5 truncated to 1
    assert m.result() == pytest.approx(1 / 3, rel=1e-6)


def test_function_metrics():
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = np.array([[0.3, 0.8], [-0.5, 0.2]])
    m = metrics.Hinge()
    m.update_state(y, p)  # labels -> -1/1: [[1.3, 0.2], [1.5, 1.2]]
    assert m.result() == pytest.approx(np.mean([[1.3, 0.2], [1.5, 1.2]]))
    m = metrics.SquaredHinge()
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean(np.square([[1.3, 0.2], [1.5, 1.2]])))
    m = metrics.CategoricalHinge()
    m.update_state(y, p)  # max(neg - pos + 1, 0): (0.3 - 0.8 + 1, 0.2 + 0.5 + 1)
    assert m.result() == pytest.approx((0.5 + 1.7) / 2)
    q = np.array([[0.25, 0.75], [0.5, 0.5]])
    t = np.array([[0.5, 0.5], [0.5, 0.5]])
    m = metrics.KLDivergence()
    m.update_state(t, q)
    assert m.result() == pytest.approx(
        (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) / 2, rel=1e-6
    )
    m = metrics.Poisson()
    m.update_state([[2.0]], [[1.5]])
    assert m.result() == pytest.approx(1.5 - 2 * math.log(1.5 + EPS))
    m = metrics.CosineSimilarity()
    m.update_state([[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]])  # zero vector: 0
    assert m.result() == pytest.approx(math.sqrt(0.5) / 2)
    m = metrics.LogCoshError()
    m.update_state([[0.0, 0.0]], [[1.0, -800.0]])  # no overflow for large errors
    assert m.result() == pytest.approx((math.log(math.cosh(1.0)) + 800 - math.log(2)) / 2)
    assert m.name == "logcosh"
    for fn, cls in [
        (metrics.hinge, metrics.Hinge),
        (metrics.squared_hinge, metrics.SquaredHinge),
        (metrics.categorical_hinge, metrics.CategoricalHinge),
        (metrics.kl_divergence, metrics.KLDivergence),
        (metrics.poisson, metrics.Poisson),
        (metrics.log_cosh, metrics.LogCoshError),
    ]:
        m = cls()
        m.update_state(t, q)
        assert m.result() == pytest.approx(float(np.mean(fn(t, q))))


def test_keras_namespace_and_names():
    for name in [
        "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
        "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
        "SpecificityAtSensitivity", "F1Score", "FBetaScore", "R2Score", "IoU", "MeanIoU",
        "BinaryIoU", "OneHotIoU", "OneHotMeanIoU", "Hinge", "SquaredHinge",
        "CategoricalHinge", "KLDivergence", "Poisson", "CosineSimilarity", "LogCoshError",
    ]:  # fmt: skip
        assert getattr(tf.keras.metrics, name) is getattr(metrics, name)
    for name, cls in [
        ("true_positives", metrics.TruePositives),
        ("f1_score", metrics.F1Score),
        ("r2_score", metrics.R2Score),
        ("hinge", metrics.Hinge),
        ("log_cosh_error", metrics.LogCoshError),
        ("kl_divergence", metrics.KLDivergence),
    ]:
        assert type(metrics.get(name)) is cls
    assert metrics.FBetaScore().name == "fbeta_score"
    assert metrics.MeanIoU(2).name == "mean_io_u"


def test_errors_name_the_metric_and_the_value():
    with pytest.raises(ValueError, match=r"Threshold values must be in \[0, 1\].*1.5"):
        metrics.TruePositives(thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="PrecisionAtRecall.*recall=1.2"):
        metrics.PrecisionAtRecall(1.2)
    with pytest.raises(ValueError, match="SpecificityAtSensitivity.*sensitivity=-0.1"):
        metrics.SpecificityAtSensitivity(-0.1)
    with pytest.raises(ValueError, match="RecallAtPrecision.*num_thresholds=0"):
        metrics.RecallAtPrecision(0.5, num_thresholds=0)
    with pytest.raises(ValueError, match="F1Score.*average='mean'"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match="FBetaScore.*beta=0"):
        metrics.FBetaScore(beta=0.0)
    with pytest.raises(ValueError, match="F1Score.*threshold=1.5"):
        metrics.F1Score(threshold=1.5)
    with pytest.raises(ValueError, match="F1Score expects 2D inputs"):
        metrics.F1Score().update_state([1, 0], [0.3, 0.7])
    m = metrics.F1Score()
    m.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="F1Score: expected 3 classes"):
        m.update_state(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="R2Score.*class_aggregation='mean'"):
        metrics.R2Score(class_aggregation="mean")
    with pytest.raises(ValueError, match="R2Score.*num_regressors=-1"):
        metrics.R2Score(num_regressors=-1)
    with pytest.raises(ValueError, match="R2Score expects 2D inputs"):
        metrics.R2Score().update_state(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"IoU: target class id 3 is out of range.*\[0, 3\)"):
        metrics.IoU(3, target_class_ids=[0, 3])
    with pytest.raises(ValueError, match="MeanIoU: `num_classes` must be a positive integer.*0"):
        metrics.MeanIoU(0)
    with pytest.raises(ValueError, match="MeanIoU: sample_weight of shape"):
        metrics.MeanIoU(2).update_state([0, 1], [0, 1], sample_weight=[1, 1, 1])
