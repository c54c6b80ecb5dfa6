"""The customizing what happens in fit() guide
(keras.io/guides/custom_train_step_in_torch/ and its JAX/TensorFlow twins: the
framework-agnostic parts), as our own programs: a Model subclass overriding
train_step(data) with compute_loss and the compiled metrics, a lower-level version with
its own Mean/MAE trackers listed in the metrics property, sample_weight support,
test_step for evaluate, and a GAN with two optimizers and keras.random noise. Gradients
come from dendrite's GradientTape."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)


class CustomModel(keras.Model):
    def train_step(self, data):
        if len(data) == 3:
            x, y, sample_weight = data
        else:
            sample_weight = None
            x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def build_custom_model(k, cls=None):
    inputs = k.Input(shape=(8,))
    outputs = k.layers.Dense(1)(inputs)
    return (cls or k.Model)(inputs, outputs)


def _data(n=64):
    x = RNG.random((n, 8)).astype("float32")
    y = (x @ np.linspace(-1, 1, 8).astype("float32")).reshape(-1, 1)
    return x, y


def test_train_step_override_uses_compiled_loss_and_metrics():
    keras.utils.set_random_seed(0)
    model = build_custom_model(keras, CustomModel)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = _data()
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_train_step_with_apply_gradients():
    class ApplyGradientsModel(keras.Model):
        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    keras.utils.set_random_seed(0)
    model = build_custom_model(keras, ApplyGradientsModel)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = _data()
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


class LowLevelModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = keras.losses.MeanSquaredError()

    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_lower_level_train_step_without_compiled_loss():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8,))
    model = LowLevelModel(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = _data()
    seen = []
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(float(logs["loss"]))
    )
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    # the trackers are reset at each epoch: the epoch's last batch log is that epoch's mean
    np.testing.assert_allclose(seen[7], history.history["loss"][1], rtol=1e-6)


def test_sample_weight_reaches_train_step():
    keras.utils.set_random_seed(0)
    model = build_custom_model(keras, CustomModel)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = _data(16)
    start = model.get_weights()
    model.fit(x, y, sample_weight=np.zeros(16, "float32"), batch_size=16, epochs=1, verbose=0)
    for a, b in zip(start, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, sample_weight=np.ones(16, "float32"), batch_size=16, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(start, model.get_weights()))


def test_class_weight_with_custom_train_step():
    model = build_custom_model(keras, CustomModel)
    model.compile(optimizer="sgd", loss="mse")
    x = RNG.random((16, 8)).astype("float32")
    y = RNG.integers(0, 2, size=(16, 1))
    history = model.fit(x, y, class_weight={0: 0.5, 1: 2.0}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_custom_test_step_in_evaluate():
    model = build_custom_model(keras, CustomModel)
    model.compile(loss="mse", metrics=["mae"])
    x, y = _data(32)
    logs = model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    assert set(logs) == {"loss", "mae"}
    y_pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(y - y_pred)), rtol=1e-5)


LATENT_DIM = 4


def build_gan_parts(k):
    discriminator = k.Sequential(
        [
            k.Input(shape=(6, 6, 1)),
            k.layers.Conv2D(4, 3, strides=2, padding="same"),
            k.layers.LeakyReLU(negative_slope=0.2),
            k.layers.GlobalMaxPooling2D(),
            k.layers.Dense(1),
        ],
        name="discriminator",
    )
    generator = k.Sequential(
        [
            k.Input(shape=(LATENT_DIM,)),
            k.layers.Dense(3 * 3 * 4),
            k.layers.LeakyReLU(negative_slope=0.2),
            k.layers.Reshape((3, 3, 4)),
            k.layers.Conv2DTranspose(4, 4, strides=2, padding="same"),
            k.layers.LeakyReLU(negative_slope=0.2),
            k.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return discriminator, generator


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(1337)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real_images):
        if isinstance(real_images, tuple):
            real_images = real_images[0]
        batch_size = ops.shape(real_images)[0]
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(noise)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        with keras.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        with keras.GradientTape() as tape:
            g_loss = self.loss_fn(misleading_labels, self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_gan_train_step_updates_both_networks():
    keras.utils.set_random_seed(0)
    discriminator, generator = build_gan_parts(keras)
    gan = GAN(discriminator, generator, LATENT_DIM)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        g_optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    d_before = [w.numpy().copy() for w in discriminator.weights]
    g_before = [w.numpy().copy() for w in generator.weights]
    images = RNG.random((16, 6, 6, 1)).astype("float32")
    history = gan.fit(images, epochs=2, batch_size=8, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert len(history.history["d_loss"]) == 2
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, discriminator.weights))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, generator.weights))


@pytest.mark.parametrize(
    "build",
    [build_custom_model, lambda k: build_gan_parts(k)[0], lambda k: build_gan_parts(k)[1]],
    ids=["regression", "discriminator", "generator"],
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
