"""A user's ``build`` leaves the layer built, as Keras' wrapper does: calling ``build``
directly and then setting weights must not be undone by the first call; a subclassed model
whose ``build`` skips ``super().build()`` is built too. Plus Keras' dtype attributes."""

from __future__ import annotations

import numpy as np

import dendrite as keras


class Linear(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones", name="w")

    def call(self, x):
        return keras.ops.matmul(x, self.w)


def test_build_then_set_weights_then_call():
    layer = Linear()
    layer.build((None, 3))
    assert layer.built and layer.count_params() == 6
    layer.set_weights([np.full((3, 2), 5.0, "float32")])
    out = np.asarray(layer(np.ones((1, 3), "float32")))
    np.testing.assert_array_equal(out, [[15.0, 15.0]])
    assert len(layer.weights) == 1


def test_subclassed_model_built_by_its_own_build():
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def build(self, input_shape):
            self.dense.build(input_shape)

        def call(self, x):
            return self.dense(x)

    model = Model()
    model.build((None, 3))
    assert model.built and len(model.weights) == 2
    model(np.ones((1, 3), "float32"))
    assert len(model.weights) == 2


def test_dtype_attributes_and_compile_settings():
    class Positions(keras.layers.Layer):
        def call(self, x):
            return x + keras.ops.cast(keras.ops.arange(3), self.compute_dtype)

    layer = Positions(dtype="float64")
    assert layer.compute_dtype == layer.variable_dtype == layer.input_dtype == "float64"
    np.testing.assert_array_equal(np.asarray(layer(np.zeros((1, 3)))), [[0.0, 1.0, 2.0]])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert model.run_eagerly is False and model.compiled is False
    model.compile("sgd", "mse", run_eagerly=True)
    assert model.run_eagerly is True and model.compiled is True
