"""How a layer call resolves ``training``, Keras 3's order: the caller's value, else an
outer layer call's, else the ``call`` signature's own default, which stays with the layer
(nested layers do not inherit it)."""

from __future__ import annotations

import numpy as np

import dendrite as keras

X = np.ones((2, 3), "float32")


class Seen(keras.layers.Layer):
    """Records the ``training`` its call receives; its default is ``default``."""

    def __init__(self, default=None, inner=None, **kwargs):
        super().__init__(**kwargs)
        self.default = default
        self.inner = inner
        self.seen = []

    def call(self, inputs, training="unset"):
        self.seen.append(self.default if training == "unset" else training)
        return self.inner(inputs) if self.inner is not None else inputs


class DefaultTrue(Seen):
    def call(self, inputs, training=True):
        self.seen.append(training)
        return self.inner(inputs) if self.inner is not None else inputs


class Required(keras.layers.Layer):
    def call(self, inputs, training):
        self.seen = training
        return inputs


def test_a_direct_call_uses_the_signature_default_and_nested_layers_do_not_inherit_it():
    inner = Seen()
    outer = DefaultTrue(inner=inner)
    outer(X)
    assert outer.seen == [True]
    assert inner.seen == [None]  # its own default (None), not the outer True


def test_the_caller_and_an_outer_call_win_over_the_default():
    inner = DefaultTrue()
    outer = Seen(inner=inner)
    outer(X, training=False)
    assert inner.seen == [False]
    inner.seen.clear()
    inner(X, training=False)
    assert inner.seen == [False]


def test_fit_and_predict_pass_their_flag_to_a_default_true_layer():
    layer = DefaultTrue()
    model = keras.Sequential([keras.Input((3,)), layer, keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    layer.seen.clear()
    model.fit(X, np.zeros((2, 1), "float32"), epochs=2, verbose=0)
    # one training step an epoch (fit first checks one sample in inference mode)
    assert [flag for flag in layer.seen if flag is not False] == [True, True]
    layer.seen.clear()
    model.predict(X, verbose=0)
    model.evaluate(X, np.zeros((2, 1), "float32"), verbose=0)
    assert layer.seen and all(flag is False for flag in layer.seen)


def test_a_call_that_requires_training_still_gets_none():
    layer = Required()
    layer(X)
    assert layer.seen is None
