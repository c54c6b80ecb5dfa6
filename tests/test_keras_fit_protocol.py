"""Keras 3's fit protocol, from programs written as the Keras guides write them
("Writing your own callbacks", "Customizing what happens in fit()", the Trainer
docstrings): the arguments every callback hook receives, models that compute their own
loss (add_loss, compute_loss, their own train_step), metric trackers kept on the model
and reset at each epoch, test_step overrides, and a GAN with two optimizers."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import keras

layers = keras.layers
ops = keras.ops

RNG = np.random.default_rng(7)
X = RNG.standard_normal((40, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-1.0], [0.5]], "float32")).astype("float32")


def _dense_model(cls=keras.Model, units=1):
    tf.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,))
    return cls(inputs, layers.Dense(units)(inputs))


# --- 1. what the callbacks receive ------------------------------------------------------
_ALL_HOOKS = [
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
]


class Recorder(keras.callbacks.Callback):
    """Records (hook, index, logs, params) for every hook; each hook checks that logs is
    a dict and that model and params were set before it ran."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(self, hook, index, logs):
        assert isinstance(logs, dict), f"{hook} got logs={logs!r}"
        assert self.model is not None, f"{hook}: self.model is not set"
        self.calls.append((hook, index, dict(logs), dict(self.params)))


def _with_hook(name):
    takes_index = "batch" in name or "epoch" in name
    if "batch" in name:
        # Keras passes logs by keyword at the batch hooks: a keyword-only logs works.
        def hook(self, batch, *, logs=None):
            self._record(name, batch, logs)
    elif takes_index:

        def hook(self, epoch, logs=None):
            self._record(name, epoch, logs)
    else:

        def hook(self, logs=None):
            self._record(name, None, logs)

    hook.__name__ = name
    return hook


for _name in _ALL_HOOKS:
    setattr(Recorder, _name, _with_hook(_name))


def _hooks(calls, prefix=""):
    return [c for c in calls if c[0].startswith(prefix)]


def test_every_hook_gets_a_logs_dict_and_model_and_params_are_set_first():
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    recorder = Recorder()
    model.fit(
        X[:30],
        Y[:30],
        batch_size=10,
        epochs=2,
        verbose=0,
        validation_data=(X[30:], Y[30:]),
        callbacks=[recorder],
    )
    calls = recorder.calls
    assert recorder.model is model
    hook, _, logs, params = calls[0]
    assert hook == "on_train_begin" and logs == {}
    # Keras 3's params: verbose, epochs and steps (per epoch), and nothing else.
    assert params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert all(c[3] == params for c in calls)  # validation keeps fit's params

    names = [c[0] for c in calls]
    one_epoch = (
        ["on_epoch_begin"]
        + ["on_train_batch_begin", "on_train_batch_end"] * 3
        + ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end"]
        + ["on_epoch_end"]
    )
    assert names == ["on_train_begin", *one_epoch, *one_epoch, "on_train_end"]

    by_hook = {}
    for hook, index, logs, _ in calls:
        by_hook.setdefault(hook, []).append((index, logs))
    # {} where Keras passes nothing.
    for hook in ("on_epoch_begin", "on_train_batch_begin", "on_test_begin"):
        assert all(logs == {} for _, logs in by_hook[hook]), hook
    assert [i for i, _ in by_hook["on_epoch_begin"]] == [0, 1]
    assert [i for i, _ in by_hook["on_train_batch_end"]] == [0, 1, 2, 0, 1, 2]
    assert all(set(logs) == {"loss", "mae"} for _, logs in by_hook["on_train_batch_end"])
    assert all(set(logs) == {"loss", "mae"} for _, logs in by_hook["on_test_end"])
    epoch_logs = [logs for _, logs in by_hook["on_epoch_end"]]
    assert all(set(logs) == {"loss", "mae", "val_loss", "val_mae"} for logs in epoch_logs)
    # on_train_end gets the last epoch's logs, as Keras' training_logs.
    assert by_hook["on_train_end"] == [(None, epoch_logs[-1])]


def test_evaluate_and_predict_hooks_as_keras():
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse")
    recorder = Recorder()
    model.evaluate(X, Y, batch_size=16, verbose=0, callbacks=[recorder])
    calls = recorder.calls
    assert [c[0] for c in calls] == (
        ["on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 3 + ["on_test_end"]
    )
    assert calls[0][2] == {} and calls[0][3] == {"verbose": 0, "epochs": 1, "steps": 3}
    assert set(calls[-1][2]) == {"loss"}

    recorder = Recorder()
    out = model.predict(X, batch_size=16, verbose=0, callbacks=[recorder])
    calls = recorder.calls
    assert [c[0] for c in calls] == (
        ["on_predict_begin"]
        + ["on_predict_batch_begin", "on_predict_batch_end"] * 3
        + ["on_predict_end"]
    )
    assert calls[0][3] == {"verbose": 0, "epochs": 1, "steps": 3}
    assert calls[0][2] == {} and calls[-1][2] == {}
    # on_predict_batch_end: the batch's outputs, under "outputs".
    ends = [c[2] for c in calls if c[0] == "on_predict_batch_end"]
    assert all(set(logs) == {"outputs"} for logs in ends)
    np.testing.assert_array_equal(np.concatenate([e["outputs"] for e in ends]), out)


def test_the_older_on_batch_hooks_hear_the_training_batches():
    seen = []

    class Old(keras.callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch, logs))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, sorted(logs)))

    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, Y, batch_size=20, epochs=1, verbose=0, callbacks=[Old()])
    assert seen == [
        ("begin", 0, {}),
        ("end", 0, ["loss"]),
        ("begin", 1, {}),
        ("end", 1, ["loss"]),
    ]


# --- 2. models that compute their own loss -----------------------------------------------
class ShrinkOutput(keras.Model):
    """A loss from add_loss alone: the mean square of the outputs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)

    def call(self, inputs):
        out = self.dense(inputs)
        self.add_loss(ops.mean(ops.square(out)))
        return out


def test_a_model_with_only_add_loss_trains_with_and_without_targets():
    tf.utils.set_random_seed(1)
    model = ShrinkOutput()
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["mae"])
    # Targets are accepted: the compiled metrics use them, the loss is add_loss's.
    history = model.fit(X, Y, batch_size=10, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    expected = float(np.mean(np.square(model.predict(X, verbose=0))))
    assert model.evaluate(X, Y, batch_size=40, verbose=0)[0] == pytest.approx(expected, rel=1e-5)
    # And without targets, as in Keras' add_loss guide.
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(X, batch_size=10, epochs=2, verbose=0)
    assert set(history.history) == {"loss"}


def test_with_no_loss_anywhere_the_error_is_keras():
    model = _dense_model()
    model.compile(optimizer="sgd")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^No loss to compute\. Provide a `loss` argument"):
        model.fit(X, Y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


class OwnComputeLoss(keras.Model):
    """Keras 3's Trainer.compute_loss example: an own loss and its own tracker."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.training_flags = []

    def compute_loss(self, x, y, y_pred, sample_weight, training=True):
        self.training_flags.append(training)
        loss = ops.mean((y_pred - y) ** 2)
        self.loss_tracker.update_state(loss)
        return loss

    @property
    def metrics(self):
        return [self.loss_tracker]


def test_an_overridden_compute_loss_gets_y_and_training():
    model = _dense_model(OwnComputeLoss)
    model.compile(optimizer=keras.optimizers.SGD(0.05))  # no loss: compute_loss gives it
    history = model.fit(
        X[:30], Y[:30], batch_size=10, epochs=2, verbose=0, validation_data=(X[30:], Y[30:])
    )
    assert set(history.history) == {"loss", "val_loss"}
    assert history.history["loss"][1] < history.history["loss"][0]
    # Per epoch: 3 training steps (training=True), then 1 validation step (False).
    assert model.training_flags == [True, True, True, False] * 2
    # The metrics property is the own tracker: reset at evaluate's start.
    result = model.evaluate(X, Y, batch_size=40, verbose=0)
    assert model.loss_tracker.count == pytest.approx(1)
    mse = float(np.mean((model.predict(X, verbose=0) - Y) ** 2))
    assert result == pytest.approx(mse, rel=1e-5)


def test_the_older_compute_loss_signature_without_training():
    class Older(keras.Model):
        def compute_loss(self, x, y, y_pred, sample_weight):
            return ops.mean(ops.abs(y_pred - y))

    model = _dense_model(Older)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    history = model.fit(X, Y, batch_size=10, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    mae = float(np.mean(np.abs(model.predict(X, verbose=0) - Y)))
    assert model.evaluate(X, Y, batch_size=40, verbose=0) == pytest.approx(mae, rel=1e-5)


def test_a_compute_metrics_override_adds_its_own_metric():
    """Keras' compute_metrics docstring: super() updates the compiled metrics, then an
    own metric is updated and added to the results."""

    class WithCustom(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.custom_metric = keras.metrics.Mean(name="custom_metric")

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            results = super().compute_metrics(x, y, y_pred, sample_weight)
            self.custom_metric.update_state(ops.max(ops.abs(y_pred - y)))
            results["custom_metric"] = self.custom_metric.result()
            return results

    model = _dense_model(WithCustom)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(X, Y, batch_size=40, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "mae", "custom_metric"}
    # A metric kept as an attribute is one of the model's metrics (as Keras tracks it),
    # so it is reset at each epoch: one update per epoch, one count.
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics", "custom_metric"]
    assert model.custom_metric.count == pytest.approx(1)


# --- 3. the Mean tracker pattern, reset_metrics, test_step --------------------------------
class TrackerModel(keras.Model):
    """The guide's "going lower-level" model: own trackers, compile without a loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = keras.losses.MeanSquaredError()
        self.batch_losses = []
        self.test_steps = 0

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.batch_losses.append(float(loss.data))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        self.test_steps += 1
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(self.loss_fn(y, y_pred))
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_mean_trackers_are_reset_at_each_epoch():
    model = _dense_model(TrackerModel)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    history = model.fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    first, second = model.batch_losses[:4], model.batch_losses[4:]
    assert len(second) == 4
    # Each epoch's loss is the mean of that epoch's batches alone: the tracker was reset.
    assert history.history["loss"][0] == pytest.approx(np.mean(first), rel=1e-5)
    assert history.history["loss"][1] == pytest.approx(np.mean(second), rel=1e-5)
    assert model.loss_tracker.count == pytest.approx(4)

    model.reset_metrics()
    assert model.loss_tracker.count == 0 and model.mae_metric.count == 0
    assert float(model.loss_tracker.result()) == 0.0


def test_test_step_override_serves_evaluate_and_validation():
    model = _dense_model(TrackerModel)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    history = model.fit(
        X[:30], Y[:30], batch_size=10, epochs=2, verbose=0, validation_data=(X[30:], Y[30:])
    )
    assert model.test_steps == 2  # one validation batch per epoch
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    result = model.evaluate(X[30:], Y[30:], verbose=0, return_dict=True)
    assert model.test_steps == 3
    # The last validation ran on the final weights, like this evaluate: same numbers.
    assert result["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    mse = float(np.mean((model.predict(X[30:], verbose=0) - Y[30:]) ** 2))
    assert result["loss"] == pytest.approx(mse, rel=1e-5)


def test_trackers_kept_as_attributes_are_the_models_metrics_without_the_property():
    """Keras 3 tracks metric attributes: without a metrics property, the trackers still
    appear in model.metrics and are reset at each epoch."""

    class Untold(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = keras.metrics.Sum(name="seen")

        def train_step(self, data):
            x, _ = data
            self.seen.update_state(float(len(x)))
            return {"seen": self.seen.result()}

    model = _dense_model(Untold)
    model.compile(optimizer="sgd")
    assert [m.name for m in model.metrics] == ["loss", "seen"]
    history = model.fit(X, Y, batch_size=10, epochs=2, verbose=0)
    assert history.history["seen"] == [40.0, 40.0]  # not 80 in the second epoch
    model.reset_metrics()
    assert float(model.seen.result()) == 0.0


def test_reset_metrics_resets_the_compiled_metrics():
    model = _dense_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0)
    assert model.get_metrics_result()["loss"] > 0
    model.reset_metrics()
    assert model.get_metrics_result() == {"loss": 0.0, "mae": 0.0}


# --- a GAN: two models, two optimizers, its own compile ----------------------------------
class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.steps_seen = 0

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        self.steps_seen += 1
        batch = real.shape[0]
        noise = np.random.default_rng(self.steps_seen).standard_normal((batch, self.latent_dim))
        fake = self.generator(noise.astype("float32"))
        combined = ops.concatenate([fake, real], axis=0)
        labels = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))]).astype("float32")
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        misleading = np.zeros((batch, 1), "float32")
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(misleading, self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_a_gan_with_two_optimizers_and_its_own_compile():
    tf.utils.set_random_seed(3)
    discriminator = keras.Sequential(
        [keras.Input(shape=(3,)), layers.Dense(4, activation="relu"), layers.Dense(1)]
    )
    generator = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(3)])
    gan = GAN(discriminator, generator, latent_dim=2)
    d_opt, g_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    gan.compile(d_opt, g_opt, keras.losses.BinaryCrossentropy(from_logits=True))
    d_before, g_before = discriminator.get_weights(), generator.get_weights()
    history = gan.fit(X, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert gan.steps_seen == 10
    # Each optimizer moved its own model's weights only.
    assert all(not np.array_equal(a, b) for a, b in zip(d_before, discriminator.get_weights()))
    assert all(not np.array_equal(a, b) for a, b in zip(g_before, generator.get_weights()))
    assert d_opt.iterations.numpy() == 10 and g_opt.iterations.numpy() == 10
    # The trackers were reset at the second epoch's start: 5 updates, not 10.
    assert gan.d_loss_tracker.count == pytest.approx(5)
    assert history.history["g_loss"][1] == pytest.approx(float(gan.g_loss_tracker.result()))
