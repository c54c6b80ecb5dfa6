"""Keras' "customise what happens in fit()": models overriding train_step(data),
test_step(data) or predict_step(data), in the Keras 3 style (self.metrics, compute_loss,
optimizer.apply), the TF-Keras 2 style (compiled_loss with regularization_losses,
compiled_metrics.update_state, apply_gradients) and the low-level style (own metric
trackers, compile without a loss)."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import keras

layers = keras.layers

RNG = np.random.default_rng(21)
X = RNG.standard_normal((64, 4)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")).astype("float32")


class Keras3Style(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def _functional(cls):
    tf.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,))
    return cls(inputs, layers.Dense(1)(inputs))


def test_keras_3_style_train_step_on_a_functional_subclass():
    model = _functional(Keras3Style)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    history = model.fit(X, Y, epochs=4, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    # Logs are the running means of the epoch (the metrics reset at each epoch start).
    assert model.metrics[0].count == pytest.approx(4)


def test_the_custom_step_matches_the_built_in_one():
    """The same SGD updates, so the same weights, through either path."""
    custom = _functional(Keras3Style)
    builtin = _functional(keras.Model)
    builtin.set_weights(custom.get_weights())
    for model in (custom, builtin):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(custom.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class TF2Style(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1, kernel_regularizer="l2")

    def call(self, inputs):
        return self.dense(inputs)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        self.compiled_metrics.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_tf2_style_train_step_on_a_subclassed_model():
    tf.utils.set_random_seed(1)
    model = TF2Style()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(X, Y, epochs=3, batch_size=16, verbose=0)
    # The loss tracker is not updated by this style of step (as in Keras): only mae moves.
    assert history.history["mae"][-1] < history.history["mae"][0]


class LowLevel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = keras.losses.mean_squared_error(y, y_pred)
            loss = tf.ops.mean(loss)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(tf.ops.mean(keras.losses.mean_squared_error(y, y_pred)))
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_low_level_steps_with_own_trackers_and_no_compiled_loss():
    model = _functional(LowLevel)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(X, Y, epochs=3, batch_size=16, verbose=0, validation_data=(X, Y))
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.loss_tracker.count == pytest.approx(4)  # reset at each run's start
    result = model.evaluate(X, Y, batch_size=32, verbose=0, return_dict=True)
    assert set(result) == {"loss", "mae"} and model.loss_tracker.count == pytest.approx(2)
    single = model.train_on_batch(X[:8], Y[:8], return_dict=True)
    assert set(single) == {"loss", "mae"}


def test_custom_predict_step_gets_packed_batches():
    seen = []

    class Doubler(keras.Model):
        def predict_step(self, data):
            (x,) = data
            seen.append(np.shape(x))
            return self(x) * 2.0

    model = _functional(Doubler)
    out = model.predict(X, batch_size=32, verbose=0)
    np.testing.assert_allclose(out, 2.0 * model(X).data, rtol=1e-6)
    assert seen == [(32, 4), (32, 4)]


def test_default_metrics_are_the_loss_tracker_and_the_compiled_container():
    model = _functional(keras.Model)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(X, Y, epochs=1, batch_size=64, verbose=0)
    names = [m.name for m in model.metrics]
    assert names == ["loss", "compile_metrics"]
    loss_value = model.evaluate(X, Y, verbose=0)[0]
    assert float(model.metrics[0].result()) == pytest.approx(loss_value, rel=1e-6)
    assert set(model.metrics[1].result()) == {"mae"}


def test_a_step_returning_something_else_than_a_dict_is_an_error():
    class Wrong(keras.Model):
        def train_step(self, data):
            return 1.0

    model = _functional(Wrong)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="must return a dict of logs"):
        model.fit(X, Y, verbose=0)


def test_pack_and_unpack_batches_like_keras():
    pack, unpack = keras.utils.pack_x_y_sample_weight, keras.utils.unpack_x_y_sample_weight
    assert pack(1) == (1,) and pack(1, 2) == (1, 2) and pack(1, 2, 3) == (1, 2, 3)
    assert unpack((1,)) == (1, None, None) and unpack([1, 2]) == (1, 2, None)
    assert unpack(5) == (5, None, None)
    with pytest.raises(ValueError, match="expected to be in format"):
        unpack((1, 2, 3, 4))
