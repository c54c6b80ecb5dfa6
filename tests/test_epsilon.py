"""``backend.set_epsilon`` reaches every loss, metric and constraint that uses Keras's fuzz
factor: they read ``epsilon()`` when they compute, not a copy taken at import."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import dendrite as dd
from dendrite import backend


@pytest.fixture
def large_epsilon() -> Iterator[float]:
    """Set epsilon to 0.1 for one test and restore it after, whatever happens."""
    before = backend.epsilon()
    backend.set_epsilon(0.1)
    try:
        yield 0.1
    finally:
        backend.set_epsilon(before)
    assert backend.epsilon() == before


Y_TRUE = np.array([[0.0, 0.05, 1.0]], dtype=np.float32)
Y_PRED = np.array([[0.02, 0.5, 0.99]], dtype=np.float32)


def _mape(y_true: np.ndarray, y_pred: np.ndarray, eps: float) -> float:
    return float(100 * np.mean(np.abs(y_true - y_pred) / np.maximum(np.abs(y_true), eps)))


def test_default_is_keras_value() -> None:
    assert backend.epsilon() == 1e-7


def test_set_epsilon_changes_a_loss(large_epsilon: float) -> None:
    value = float(dd.losses.MeanAbsolutePercentageError()(Y_TRUE, Y_PRED).data)
    np.testing.assert_allclose(value, _mape(Y_TRUE, Y_PRED, large_epsilon), rtol=1e-5)
    assert value != pytest.approx(_mape(Y_TRUE, Y_PRED, 1e-7), rel=1e-3)


def test_set_epsilon_changes_a_metric(large_epsilon: float) -> None:
    metric = dd.metrics.MeanAbsolutePercentageError()
    metric.update_state(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(metric.result(), _mape(Y_TRUE, Y_PRED, large_epsilon), rtol=1e-6)


def test_set_epsilon_changes_probability_clipping(large_epsilon: float) -> None:
    y_true = np.array([[1.0, 0.0]])
    y_pred = np.array([[1e-3, 0.999]])
    metric = dd.metrics.BinaryCrossentropy()
    metric.update_state(y_true, y_pred)
    p = np.clip(y_pred, large_epsilon, 1 - large_epsilon)
    expected = np.mean(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
    np.testing.assert_allclose(metric.result(), expected, rtol=1e-6)


def test_set_epsilon_changes_a_constraint(large_epsilon: float) -> None:
    w = dd.Tensor(np.array([[3.0, 0.0], [4.0, 0.0]], dtype=np.float32))
    out = dd.constraints.UnitNorm(axis=0)(w).data
    np.testing.assert_allclose(out[:, 0], np.array([3.0, 4.0]) / (5.0 + large_epsilon), rtol=1e-6)


def test_results_return_to_default_after_restore() -> None:
    value = float(dd.losses.MeanAbsolutePercentageError()(Y_TRUE, Y_PRED).data)
    np.testing.assert_allclose(value, _mape(Y_TRUE, Y_PRED, 1e-7), rtol=1e-5)
