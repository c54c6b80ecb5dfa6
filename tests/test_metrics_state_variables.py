"""Keras 3 user metrics keep their state in ``add_variable`` variables (issue #11)."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops


class SumOfSquares(keras.metrics.Metric):
    def __init__(self, name="sum_of_squares", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.per_unit = self.add_weight(name="per_unit", shape=(2,), initializer="ones")

    def update_state(self, y_true, y_pred, sample_weight=None):
        squares = ops.square(ops.subtract(y_true, y_pred))
        self.total.assign_add(ops.sum(squares))
        self.per_unit.assign_add(ops.sum(squares, axis=0))

    def result(self):
        return self.total


def test_variables_accumulate_and_reset_to_their_initializers():
    metric = SumOfSquares()
    assert [v.name for v in metric.variables] == ["total", "per_unit"]
    assert all(not v.trainable for v in metric.variables)
    assert metric.variables[1].path == "sum_of_squares/per_unit"
    y = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    metric.update_state(y, np.zeros_like(y))
    assert float(metric.result()) == 30.0
    np.testing.assert_array_equal(metric.per_unit.data, [11.0, 21.0])
    metric.reset_state()
    assert float(metric.result()) == 0.0
    np.testing.assert_array_equal(metric.per_unit.data, [1.0, 1.0])
    assert metric.total.dtype == "float32"


def test_a_state_metric_in_fit_is_reset_every_epoch():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.0), "mse", metrics=[SumOfSquares()])
    x = np.ones((8, 2), "float32")
    history = model.fit(x, np.zeros((8, 2), "float32"), epochs=3, batch_size=4, verbose=0)
    values = history.history["sum_of_squares"]
    assert values[0] > 0 and values[0] == pytest.approx(values[1]) == pytest.approx(values[2])


def test_errors():
    class NoState(keras.metrics.Metric):
        def update_state(self, *args):
            pass

        def result(self):
            return 0.0

    with pytest.raises(NotImplementedError, match="override reset_state"):
        NoState().reset_state()
    with pytest.raises(ValueError, match="aggregation"):
        NoState().add_variable((), aggregation="max")
