"""Metrics: reducing, accuracy and regression metrics, ``get`` and ``resolve_accuracy``."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import metrics, ops
from dendrite.core import Tensor

RNG = np.random.default_rng(3)


# --- Mean, Sum, MeanMetricWrapper ------------------------------------------------------------
def test_mean_accumulates_and_resets():
    m = metrics.Mean()
    assert m.result() == 0.0
    m.update_state([1, 3, 5, 7])
    m.update_state(np.array([2.0]))
    m.update_state(4.0)
    assert m.result() == pytest.approx(22 / 6)
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == pytest.approx(2.0)
    m.update_state(10.0, sample_weight=2.0)
    assert m.result() == pytest.approx((4 + 20) / 4)


def test_mean_multidimensional_values():
    values = RNG.random((4, 3))
    m = metrics.Mean()
    m.update_state(values)
    assert m.result() == pytest.approx(values.mean())
    w = np.array([1.0, 0.0, 2.0, 1.0])
    m.reset_state()
    m.update_state(values, sample_weight=w)
    assert m.result() == pytest.approx(np.sum(values.mean(1) * w) / w.sum())
    w2 = RNG.random((4, 3))
    m.reset_state()
    m.update_state(values, sample_weight=w2)
    assert m.result() == pytest.approx(np.sum((values * w2).mean(1)) / np.sum(w2.mean(1)))
    m.reset_state()
    m.update_state(values, sample_weight=2.0)  # a scalar weight weighs each sample
    assert m.result() == pytest.approx(values.mean())


def test_sum():
    m = metrics.Sum()
    m.update_state([1, 3, 5, 7])
    m.update_state([[1, 1], [2, 2]], sample_weight=[1, 0])
    assert m.result() == pytest.approx(18.0)
    m.reset_state()
    assert m.result() == 0.0


def test_tensor_inputs_and_call():
    m = metrics.Mean(name="loss")
    assert m(Tensor(np.array([2.0, 4.0]))) == pytest.approx(3.0)
    assert m.name == "loss" and m.get_config() == {"name": "loss", "dtype": "float32"}


def test_mean_metric_wrapper_with_ops_function():
    def abs_error(y_true, y_pred):
        return ops.mean(ops.abs(y_true - y_pred), axis=-1)

    m = metrics.MeanMetricWrapper(abs_error)
    assert m.name == "abs_error"
    y, p = RNG.random((5, 2)), Tensor(RNG.random((5, 2)), requires_grad=True)
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean(np.abs(y - p.data)))


def test_weight_shape_error():
    with pytest.raises(ValueError, match="sample_weight"):
        metrics.Mean().update_state(np.ones((4, 3)), sample_weight=np.ones(5))


# --- accuracy ------------------------------------------------------------------------------
def test_accuracy_keras_examples():
    m = metrics.Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
    assert m.result() == pytest.approx(0.5)

    m = metrics.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5)

    m = metrics.CategoricalAccuracy()
    y, p = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]
    m.update_state(y, p)
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state(y, p, sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)

    m = metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)

    m = metrics.TopKCategoricalAccuracy(k=1)
    m.update_state(y, p, sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)

    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)


def test_sparse_categorical_accuracy_accumulates():
    m = metrics.SparseCategoricalAccuracy()
    hits = total = 0
    for size in (32, 32, 7):
        logits = RNG.standard_normal((size, 10))
        labels = RNG.integers(0, 10, size)
        m.update_state(labels, Tensor(logits))
        hits += np.sum(logits.argmax(1) == labels)
        total += size
        assert m.result() == pytest.approx(hits / total)
    m.reset_state()
    assert m.result() == 0.0
    # float labels, (n, 1) labels and weights agree with the plain path
    logits = RNG.standard_normal((6, 4))
    labels = RNG.integers(0, 4, 6)
    w = RNG.random(6)
    expected = np.sum((logits.argmax(1) == labels) * w) / w.sum()
    for y in (labels, labels.astype(np.float32), labels[:, None]):
        m.reset_state()
        m.update_state(y, logits, sample_weight=w)
        assert m.result() == pytest.approx(expected)


def test_sparse_categorical_accuracy_sequences():
    logits = RNG.standard_normal((3, 5, 4))
    labels = RNG.integers(0, 4, (3, 5))
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(labels, logits)
    assert m.result() == pytest.approx(np.mean(logits.argmax(-1) == labels))


def test_binary_accuracy_shapes_and_threshold():
    y = np.array([1, 0, 1, 1, 0])
    p = np.array([0.7, 0.2, 0.4, 0.9, 0.55])
    for y_true, y_pred in ((y, p), (y, p[:, None]), (y[:, None], p[:, None])):
        m = metrics.BinaryAccuracy()
        m.update_state(y_true, y_pred)
        assert m.result() == pytest.approx(3 / 5)
    m = metrics.BinaryAccuracy(threshold=0.3)
    m.update_state(y, p)
    m.update_state([[1.0, 0.0]], [[0.5, 0.5]])
    assert m.result() == pytest.approx((4 + 0.5) / 6)
    with pytest.raises(ValueError, match="threshold"):
        metrics.BinaryAccuracy(threshold=1.0)


def test_top_k_ties_and_large_k():
    p = np.array([[0.3, 0.3, 0.3, 0.1], [0.1, 0.2, 0.3, 0.4]])
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([2, 0], p)  # a tie at the boundary counts as a hit (TensorFlow's in_top_k)
    assert m.result() == pytest.approx(0.5)
    m = metrics.SparseTopKCategoricalAccuracy(k=10)
    m.update_state([3, 0], p)
    assert m.result() == 1.0
    logits = RNG.standard_normal((20, 6))
    labels = RNG.integers(0, 6, 20)
    rank = np.sum(logits > logits[np.arange(20), labels][:, None], axis=1)
    m = metrics.TopKCategoricalAccuracy(k=3)
    m.update_state(np.eye(6)[labels], logits)
    assert m.result() == pytest.approx(np.mean(rank < 3))


def test_keras_mask_on_prediction():
    y = np.array([[0, 1, 2], [1, 1, 0]])
    logits = np.eye(3)[np.array([[0, 1, 1], [1, 0, 0]])]
    pred = Tensor(logits)
    pred._keras_mask = np.array([[1, 1, 0], [1, 0, 1]], dtype=bool)
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(y, pred)
    assert m.result() == pytest.approx(4 / 4)


# --- regression and probabilistic --------------------------------------------------------------
def test_regression_metrics():
    y, p = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 3))
    w = RNG.random(6)
    cases = [
        (metrics.MeanSquaredError(), np.mean((y - p) ** 2, 1)),
        (metrics.MeanAbsoluteError(), np.mean(np.abs(y - p), 1)),
        (metrics.MeanAbsolutePercentageError(), 100 * np.mean(np.abs((y - p) / y), 1)),
    ]
    for metric, per_sample in cases:
        metric.update_state(y[:4], p[:4], sample_weight=w[:4])
        metric.update_state(y[4:], p[4:], sample_weight=w[4:])
        assert metric.result() == pytest.approx(np.sum(per_sample * w) / w.sum())
        metric.reset_state()
        metric.update_state(y, p)
        assert metric.result() == pytest.approx(per_sample.mean())
    yp, pp = np.abs(y), np.abs(p)
    m = metrics.MeanSquaredLogarithmicError()
    m.update_state(yp, pp)
    assert m.result() == pytest.approx(np.mean((np.log1p(pp) - np.log1p(yp)) ** 2))
    m = metrics.RootMeanSquaredError()
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))


def test_crossentropy_metrics_match_losses():
    from dendrite import losses

    z = RNG.standard_normal((5, 4))
    k = RNG.integers(0, 4, 5)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    onehot = np.eye(4)[k]
    signs = (z > 0) * 1.0
    pairs = [
        ("SparseCategoricalCrossentropy", {"from_logits": True}, k, z),
        ("SparseCategoricalCrossentropy", {}, k, probs),
        ("CategoricalCrossentropy", {"label_smoothing": 0.1}, onehot, probs),
        ("BinaryCrossentropy", {"from_logits": True}, signs, z * 2),
        ("BinaryCrossentropy", {}, signs, probs),
    ]
    for name, kwargs, y, p in pairs:
        metric = getattr(metrics, name)(**kwargs)
        loss = getattr(losses, name)(**kwargs, dtype="float64")  # arrays would be floatx
        metric.update_state(y, p)
        assert metric.result() == pytest.approx(float(loss(y, p).data), rel=1e-9)


# --- get / resolve_accuracy ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,cls",
    [
        ("accuracy", metrics.Accuracy),
        ("acc", metrics.Accuracy),
        ("binary_accuracy", metrics.BinaryAccuracy),
        ("categorical_accuracy", metrics.CategoricalAccuracy),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
        ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
        ("mse", metrics.MeanSquaredError),
        ("mean_squared_error", metrics.MeanSquaredError),
        ("mae", metrics.MeanAbsoluteError),
        ("auc", metrics.AUC),
        ("AUC", metrics.AUC),
        ("precision", metrics.Precision),
        ("recall", metrics.Recall),
        ("SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy),
    ],
)
def test_get_names(name, cls):
    assert type(metrics.get(name)) is cls


def test_get_other_identifiers():
    assert metrics.get(None) is None
    m = metrics.AUC(num_thresholds=50)
    assert metrics.get(m) is m
    assert isinstance(metrics.get(metrics.Recall), metrics.Recall)
    built = metrics.get({"class_name": "TopKCategoricalAccuracy", "config": {"k": 2}})
    assert built.k == 2

    def my_metric(y_true, y_pred):
        return np.abs(y_true - y_pred)

    wrapped = metrics.get(my_metric)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "my_metric"
    with pytest.raises(ValueError, match=r"Unknown metric 'accuracyy'.*sparse_categorical"):
        metrics.get("accuracyy")
    with pytest.raises(ValueError, match="Unknown metric 'Nope'"):
        metrics.get({"class_name": "Nope"})
    with pytest.raises(ValueError, match="Could not interpret"):
        metrics.get(3)


@pytest.mark.parametrize(
    "cls",
    [
        metrics.Accuracy,
        metrics.BinaryAccuracy,
        metrics.CategoricalAccuracy,
        metrics.SparseCategoricalAccuracy,
        metrics.TopKCategoricalAccuracy,
        metrics.SparseTopKCategoricalAccuracy,
        metrics.MeanSquaredError,
        metrics.MeanAbsoluteError,
        metrics.AUC,
        metrics.Precision,
        metrics.Recall,
        metrics.Mean,
        metrics.Sum,
        metrics.BinaryCrossentropy,
    ],
)
def test_config_round_trip(cls):
    metric = cls(name="custom")
    clone = cls.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config() and clone.name == "custom"


def test_resolve_accuracy_from_loss():
    from dendrite import losses

    cases = [
        ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
        (losses.SparseCategoricalCrossentropy(from_logits=True), metrics.SparseCategoricalAccuracy),
        (losses.sparse_categorical_crossentropy, metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", metrics.CategoricalAccuracy),
        (losses.CategoricalCrossentropy, metrics.CategoricalAccuracy),
        ("binary_crossentropy", metrics.BinaryAccuracy),
        (losses.BinaryCrossentropy(), metrics.BinaryAccuracy),
        ("BinaryCrossentropy", metrics.BinaryAccuracy),
    ]
    for loss, cls in cases:
        metric = metrics.resolve_accuracy("acc", loss)
        assert type(metric) is cls and metric.name == "acc", loss


def test_resolve_accuracy_from_shapes():
    cases = [
        ((32,), (32, 1), metrics.BinaryAccuracy),
        ((32, 1), (32, 1), metrics.BinaryAccuracy),
        ((32,), (32, 10), metrics.SparseCategoricalAccuracy),
        ((32, 1), (32, 10), metrics.SparseCategoricalAccuracy),
        ((32, 10), (32, 10), metrics.CategoricalAccuracy),
        ((4, 7), (4, 7, 5), metrics.SparseCategoricalAccuracy),
    ]
    for true_shape, pred_shape, cls in cases:
        metric = metrics.resolve_accuracy("accuracy", "mse", true_shape, pred_shape)
        assert type(metric) is cls, (true_shape, pred_shape)
        arrays = metrics.resolve_accuracy(
            "accuracy", None, np.zeros(true_shape), np.zeros(pred_shape)
        )
        assert type(arrays) is cls
    assert metrics.resolve_accuracy("accuracy", "mse") is None
    assert type(metrics.resolve_accuracy("mae", "mse")) is metrics.MeanAbsoluteError
