"""Precision, Recall and AUC against brute-force confusion matrices and Keras's examples."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import metrics

RNG = np.random.default_rng(5)
EPS = 1e-7


def keras_thresholds(count):
    inner = [(i + 1) / (count - 1) for i in range(count - 2)]
    return np.array([-EPS, *inner, 1 + EPS])


def brute_confusion(y, p, w, thresholds):
    """TP, FP, TN, FN at each threshold, one comparison per (threshold, prediction)."""
    p = np.asarray(p, dtype=np.float64)
    w = np.ones(p.size) if w is None else np.broadcast_to(w, p.shape).ravel()
    y = np.asarray(y).ravel() != 0
    p = p.ravel()
    above = p[None, :] > thresholds[:, None]
    tp = (above & y) @ w
    fp = (above & ~y) @ w
    return tp, fp, (~above & ~y) @ w, (~above & y) @ w


def roc_reference(tp, fp, tn, fn):
    tpr = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    fpr = np.divide(fp, fp + tn, out=np.zeros_like(fp), where=fp + tn > 0)
    # thresholds ascend, so fpr descends: integrate tpr over fpr with the trapezoid rule
    return float(np.trapezoid(tpr[::-1], fpr[::-1]))


def pr_reference(tp, fp, fn):
    """Davis & Goadrich interpolation, one interval at a time."""
    total = 0.0
    for i in range(len(tp) - 1):
        d_tp = tp[i] - tp[i + 1]
        p_a, p_b = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
        d_p = p_a - p_b
        slope = d_tp / d_p if d_p > 0 else 0.0
        intercept = tp[i + 1] - slope * p_b
        ratio = p_a / p_b if p_a > 0 and p_b > 0 else 1.0
        positives = tp[i + 1] + fn[i + 1]
        if positives > 0:
            total += slope * (d_tp + intercept * np.log(ratio)) / positives
    return total


def mann_whitney(y, p):
    pos, neg = p[y == 1], p[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


# --- Precision / Recall -------------------------------------------------------------------------
def test_precision_recall_keras_examples():
    for cls in (metrics.Precision, metrics.Recall):
        m = cls()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        assert m.result() == pytest.approx(2 / 3)
        m.reset_state()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
        assert m.result() == pytest.approx(1.0)
    m = metrics.Precision(top_k=2)
    m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
    assert m.result() == pytest.approx(0.0)
    m = metrics.Precision(top_k=4)
    m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
    assert m.result() == pytest.approx(0.5)


def test_precision_recall_accumulate_against_brute_force():
    y = RNG.integers(0, 2, (40, 3))
    p = RNG.random((40, 3))
    w = RNG.random(40)
    thresholds = [0.2, 0.5, 0.8]
    precision = metrics.Precision(thresholds=thresholds)
    recall = metrics.Recall(thresholds=thresholds)
    for lo, hi in ((0, 15), (15, 40)):
        precision.update_state(y[lo:hi], p[lo:hi], sample_weight=w[lo:hi])
        recall.update_state(y[lo:hi], p[lo:hi], sample_weight=w[lo:hi])
    tp, fp, _, fn = brute_confusion(y, p, w[:, None], np.array(thresholds))
    np.testing.assert_allclose(precision.result(), tp / (tp + fp))
    np.testing.assert_allclose(recall.result(), tp / (tp + fn))


def test_precision_class_id_and_top_k():
    y = np.eye(4)[RNG.integers(0, 4, 30)]
    p = RNG.random((30, 4))
    m = metrics.Precision(class_id=2)
    m.update_state(y, p)
    tp, fp, _, _ = brute_confusion(y[:, 2], p[:, 2], None, np.array([0.5]))
    assert m.result() == pytest.approx(float(tp[0] / (tp[0] + fp[0])))
    r = metrics.Recall(top_k=1)
    r.update_state(y, p)
    assert r.result() == pytest.approx(np.mean(p.argmax(1) == y.argmax(1)))


def test_precision_no_positives_is_zero():
    m = metrics.Precision()
    m.update_state([1, 1], [0.1, 0.2])
    assert m.result() == 0.0
    with pytest.raises(ValueError, match=r"Threshold values must be in \[0, 1\]"):
        metrics.Recall(thresholds=[0.5, 1.5])


# --- AUC --------------------------------------------------------------------------------------
def test_auc_keras_example():
    m = metrics.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    np.testing.assert_allclose(m.true_positives, [2, 1, 0])
    np.testing.assert_allclose(m.false_positives, [2, 0, 0])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)


@pytest.mark.parametrize("num_thresholds", [3, 10, 200])
def test_auc_roc_against_brute_force(num_thresholds):
    y = RNG.integers(0, 2, 300)
    p = np.clip(RNG.random(300) * 0.6 + y * 0.3, 0, 1)
    p[:5] = [0.0, 1.0, 0.5, 1 / (num_thresholds - 1), 0.25]  # edges and thresholds
    w = RNG.random(300)
    m = metrics.AUC(num_thresholds=num_thresholds)
    m.update_state(y[:100], p[:100], sample_weight=w[:100])
    m.update_state(y[100:], p[100:], sample_weight=w[100:])
    counts = brute_confusion(y, p, w, keras_thresholds(num_thresholds))
    for ours, ref in zip(
        (m.true_positives, m.false_positives, m.true_negatives, m.false_negatives), counts
    ):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    assert m.result() == pytest.approx(roc_reference(*counts), rel=1e-10)


def test_auc_approaches_mann_whitney():
    y = RNG.integers(0, 2, 500)
    p = 1 / (1 + np.exp(-(RNG.standard_normal(500) + y)))
    m = metrics.AUC(num_thresholds=5000)
    m.update_state(y, p)
    assert m.result() == pytest.approx(mann_whitney(y, p), abs=1e-3)


def test_auc_pr_interpolation_against_reference():
    y = RNG.integers(0, 2, 200)
    p = np.clip(RNG.random(200) * 0.7 + y * 0.2, 0, 1)
    m = metrics.AUC(num_thresholds=50, curve="PR")
    m.update_state(y, p)
    tp, fp, _, fn = brute_confusion(y, p, None, keras_thresholds(50))
    assert m.result() == pytest.approx(pr_reference(tp, fp, fn), rel=1e-10)
    assert 0.0 < m.result() < 1.0


@pytest.mark.parametrize("method", ["minoring", "majoring"])
@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_riemann_sums(method, curve):
    y = RNG.integers(0, 2, 100)
    p = RNG.random(100)
    m = metrics.AUC(num_thresholds=20, curve=curve, summation_method=method)
    m.update_state(y, p)
    tp, fp, tn, fn = brute_confusion(y, p, None, keras_thresholds(20))
    recall = tp / (tp + fn)
    if curve == "ROC":
        x, h = fp / (fp + tn), recall
    else:
        x, h = recall, np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    pick = np.minimum if method == "minoring" else np.maximum
    expected = np.sum((x[:-1] - x[1:]) * pick(h[:-1], h[1:]))
    assert m.result() == pytest.approx(expected, rel=1e-10)


def test_auc_custom_thresholds_and_logits():
    y = RNG.integers(0, 2, 80)
    z = RNG.standard_normal(80) * 2 + y
    p = 1 / (1 + np.exp(-z))
    uneven = metrics.AUC(thresholds=[0.1, 0.3, 0.35, 0.9])
    uneven.update_state(y, p)
    thresholds = np.array([-EPS, 0.1, 0.3, 0.35, 0.9, 1 + EPS])
    assert uneven.result() == pytest.approx(roc_reference(*brute_confusion(y, p, None, thresholds)))
    assert uneven.get_config()["thresholds"] == [0.1, 0.3, 0.35, 0.9]
    from_logits = metrics.AUC(from_logits=True)
    from_logits.update_state(y, z)
    plain = metrics.AUC()
    plain.update_state(y, p)
    assert from_logits.result() == pytest.approx(plain.result())


def test_auc_multi_label():
    y = RNG.integers(0, 2, (60, 3))
    p = np.clip(RNG.random((60, 3)) * 0.7 + y * 0.25, 0, 1)
    weights = np.array([1.0, 2.0, 0.5])
    for label_weights in (None, weights):
        m = metrics.AUC(num_thresholds=30, multi_label=True, label_weights=label_weights)
        m.update_state(y[:20], p[:20])
        m.update_state(y[20:], p[20:])
        per_label = [
            roc_reference(*brute_confusion(y[:, j], p[:, j], None, keras_thresholds(30)))
            for j in range(3)
        ]
        expected = np.average(per_label, weights=label_weights)
        assert m.result() == pytest.approx(expected, rel=1e-10)
    flat = metrics.AUC(num_thresholds=30, label_weights=weights)
    flat.update_state(y, p)
    counts = brute_confusion(y, p, np.broadcast_to(weights, y.shape), keras_thresholds(30))
    assert flat.result() == pytest.approx(roc_reference(*counts), rel=1e-10)


def test_auc_errors_and_config():
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="summation_method"):
        metrics.AUC(summation_method="simpson")
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    m = metrics.AUC(num_thresholds=7, curve="pr", name="pr_auc")
    config = m.get_config()
    assert config["curve"] == "PR" and config["num_thresholds"] == 7
    assert metrics.AUC.from_config(config).get_config() == config
    assert len(m.thresholds) == 7 and m.result() == 0.0
