"""An output compiled without a loss takes None as its target (Keras 3); an output with a
loss but no target is refused before any weight changes."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras


def _model():
    keras.utils.set_random_seed(0)
    a = keras.Input((3,))
    return keras.Model(
        a, [keras.layers.Dense(2, name="o1")(a), keras.layers.Dense(2, name="o2")(a)]
    )


def test_none_target_for_an_output_without_a_loss_trains_the_other():
    model = _model()
    model.compile("sgd", [None, "mse"])
    x = np.ones((8, 3), "float32")
    before = model.get_layer("o1").get_weights()
    history = model.fit(x, [None, np.zeros((8, 2), "float32")], epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for a, b in zip(before, model.get_layer("o1").get_weights()):
        np.testing.assert_array_equal(a, b)  # no loss reaches o1
    assert np.isfinite(model.evaluate(x, [None, np.zeros((8, 2))], verbose=0)).all()


def test_none_target_for_an_output_with_a_loss_is_refused():
    model = _model()
    model.compile("sgd", ["mse", "mse"])
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="'o1' has a loss .* but its target is None"):
        model.fit(np.ones((4, 3), "float32"), [None, np.ones((4, 2), "float32")], verbose=0)
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
