"""Keras' graph access on models: ``model.inputs``/``outputs`` (Sequential too),
``layer.input``/``layer.output`` for feature-extraction models, and ``clone_model``."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import keras

layers = keras.layers
RNG = np.random.default_rng(3)
X = RNG.standard_normal((5, 6)).astype("float32")


def _sequential():
    tf.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((6,)), layers.Dense(4, activation="relu", name="hidden"), layers.Dense(2)]
    )


def test_feature_extraction_from_a_sequential_model():
    model = _sequential()
    features = keras.Model(inputs=model.inputs, outputs=model.get_layer("hidden").output)
    expected = model.get_layer("hidden")(X).data
    np.testing.assert_allclose(features.predict(X, verbose=0), expected, rtol=1e-6)
    assert model.output.shape == (None, 2) and model.input.shape == (None, 6)
    # The extractor shares the weights: training the model changes its features.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(X, np.ones((5, 2), "float32"), verbose=0)
    np.testing.assert_allclose(
        features.predict(X, verbose=0), model.get_layer("hidden")(X).data, rtol=1e-6
    )


def test_every_layer_output_of_a_functional_model():
    inputs = keras.Input((6,))
    hidden = layers.Dense(3, name="h")(inputs)
    outputs = layers.Dense(1)(hidden)
    model = keras.Model(inputs, outputs)
    taps = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    first, second = taps.predict(X, verbose=0)
    assert first.shape == (5, 3) and second.shape == (5, 1)
    assert model.get_layer("h").input is inputs


def test_a_layer_never_called_symbolically_has_no_output():
    with pytest.raises(AttributeError, match="has never been called"):
        _ = layers.Dense(2).output
    unbuilt = keras.Sequential([layers.Dense(2)])
    with pytest.raises(AttributeError, match="has no defined input yet"):
        _ = unbuilt.inputs


def test_clone_model_copies_the_architecture_not_the_weights():
    model = _sequential()
    clone = keras.models.clone_model(model)
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(X, verbose=0), model.predict(X, verbose=0))

    inputs = keras.Input((6,))
    functional = keras.Model(inputs, layers.Dense(2)(layers.Dense(3)(inputs)))
    copy = keras.models.clone_model(functional)
    assert copy(X).shape == (5, 2) and copy.count_params() == functional.count_params()

    relu = keras.models.clone_model(
        model, clone_function=lambda layer: layers.Dense(layer.units, activation="relu")
    )
    assert relu.layers[-1].activation is tf.activations.relu or relu.layers[-1]._fuse_relu


def test_a_subclass_may_name_its_own_attributes_input_and_output():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.input = layers.Dense(4, activation="relu")
            self.output = layers.Dense(1)

        def call(self, x):
            return self.output(self.input(x))

    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, np.ones((5, 1), "float32"), verbose=0)
    assert len(model.trainable_weights) == 4 and isinstance(model.output, layers.Dense)
