"""The writing a training loop from scratch guide
(keras.io/guides/writing_a_custom_training_loop_in_tensorflow/ and its JAX/PyTorch
twins), as our own programs with dendrite's GradientTape: an epoch/batch loop with
tape.gradient and optimizer.apply_gradients, metrics updated in the loop and reset per
epoch, a validation loop, model.losses from add_loss, and an end-to-end GAN."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)
N_FEATURES, N_CLASSES, BATCH = 10, 3, 16


def build_model(k):
    inputs = k.Input(shape=(N_FEATURES,), name="digits")
    x1 = k.layers.Dense(16, activation="relu")(inputs)
    x2 = k.layers.Dense(16, activation="relu")(x1)
    outputs = k.layers.Dense(N_CLASSES, name="predictions")(x2)
    return k.Model(inputs=inputs, outputs=outputs)


def _data(n):
    x = RNG.normal(size=(n, N_FEATURES)).astype("float32")
    y = x[:, :N_CLASSES].argmax(axis=1).astype("int64")
    return x, y


def _batches(x, y, batch_size=BATCH, shuffle=False):
    order = RNG.permutation(len(x)) if shuffle else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


def test_training_loop_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = build_model(keras)
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x_train, y_train = _data(128)
    epoch_losses = []
    for _epoch in range(4):
        losses = []
        for x_batch, y_batch in _batches(x_train, y_train, shuffle=True):
            with keras.GradientTape() as tape:
                logits = model(x_batch, training=True)
                loss_value = loss_fn(y_batch, logits)
            grads = tape.gradient(loss_value, model.trainable_weights)
            assert len(grads) == len(model.trainable_weights) == 6
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            losses.append(float(loss_value))
        epoch_losses.append(np.mean(losses))
    assert epoch_losses[-1] < epoch_losses[0]
    assert int(optimizer.iterations.numpy()) == 4 * 8


def test_metrics_in_the_loop_and_validation():
    keras.utils.set_random_seed(0)
    model = build_model(keras)
    optimizer = keras.optimizers.Adam(learning_rate=1e-2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    val_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    x_train, y_train = _data(128)
    x_val, y_val = _data(32)
    train_accs, val_accs = [], []
    for _epoch in range(4):
        for x_batch, y_batch in _batches(x_train, y_train, shuffle=True):
            with keras.GradientTape() as tape:
                logits = model(x_batch, training=True)
                loss_value = loss_fn(y_batch, logits)
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            train_acc_metric.update_state(y_batch, logits)
        train_accs.append(float(train_acc_metric.result()))
        train_acc_metric.reset_state()
        for x_batch, y_batch in _batches(x_val, y_val):
            val_acc_metric.update_state(y_batch, model(x_batch, training=False))
        val_accs.append(float(val_acc_metric.result()))
        val_acc_metric.reset_state()
    assert train_accs[-1] > train_accs[0]
    assert val_accs[-1] > 1.0 / N_CLASSES
    expected = np.mean(np.argmax(np.asarray(model(x_val)), axis=1) == y_val)
    np.testing.assert_allclose(val_accs[-1], expected, rtol=1e-6)


def test_metric_result_matches_manual_accuracy():
    metric = keras.metrics.SparseCategoricalAccuracy()
    metric.update_state(np.array([0, 1]), np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1]]))
    metric.update_state(np.array([2]), np.array([[0.0, 0.1, 0.9]]))
    np.testing.assert_allclose(float(metric.result()), 2 / 3, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


class ActivityRegularizationLayer(layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * ops.sum(inputs))
        return inputs


def test_loop_adds_model_losses():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(N_FEATURES,))
    x = layers.Dense(16, activation="relu")(inputs)
    x = ActivityRegularizationLayer()(x)
    outputs = layers.Dense(N_CLASSES)(x)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.SGD(learning_rate=0.02)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x_train, y_train = _data(64)
    totals, regs = [], []
    for x_batch, y_batch in list(_batches(x_train, y_train)) * 3:
        with keras.GradientTape() as tape:
            logits = model(x_batch, training=True)
            loss_value = loss_fn(y_batch, logits)
            reg = sum(model.losses)
            loss_value = loss_value + reg
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        totals.append(float(loss_value))
        regs.append(float(reg))
    assert len(model.losses) == 1
    assert all(r > 0 for r in regs)
    assert np.mean(totals[-4:]) < np.mean(totals[:4])


def test_persistent_tape_for_two_gradients():
    model = build_model(keras)
    x, y = _data(8)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with keras.GradientTape(persistent=True) as tape:
        logits = model(x, training=True)
        loss_a = loss_fn(y, logits)
        loss_b = ops.mean(ops.square(logits))
    grads_a = tape.gradient(loss_a, model.trainable_weights)
    grads_b = tape.gradient(loss_b, model.trainable_weights)
    assert len(grads_a) == len(grads_b) == 6
    assert not np.allclose(np.asarray(grads_a[-1]), np.asarray(grads_b[-1]))


LATENT_DIM = 4


def build_gan(k):
    discriminator = k.Sequential(
        [
            k.Input(shape=(8, 8, 1)),
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
            k.layers.Dense(4 * 4 * 4),
            k.layers.LeakyReLU(negative_slope=0.2),
            k.layers.Reshape((4, 4, 4)),
            k.layers.Conv2DTranspose(4, 4, strides=2, padding="same"),
            k.layers.LeakyReLU(negative_slope=0.2),
            k.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return discriminator, generator


def test_gan_training_loop():
    keras.utils.set_random_seed(0)
    discriminator, generator = build_gan(keras)
    d_optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    g_optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    seed = keras.random.SeedGenerator(42)
    real = RNG.random((32, 8, 8, 1)).astype("float32")

    def train_step(real_images):
        n = real_images.shape[0]
        noise = keras.random.normal((n, LATENT_DIM), seed=seed)
        generated = generator(noise)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
        labels = labels + 0.05 * keras.random.uniform(ops.shape(labels), seed=seed)
        with keras.GradientTape() as tape:
            d_loss = loss_fn(labels, discriminator(combined))
        grads = tape.gradient(d_loss, discriminator.trainable_weights)
        d_optimizer.apply_gradients(zip(grads, discriminator.trainable_weights))
        noise = keras.random.normal((n, LATENT_DIM), seed=seed)
        with keras.GradientTape() as tape:
            g_loss = loss_fn(ops.zeros((n, 1)), discriminator(generator(noise)))
        grads = tape.gradient(g_loss, generator.trainable_weights)
        g_optimizer.apply_gradients(zip(grads, generator.trainable_weights))
        return float(d_loss), float(g_loss), generated

    for start in range(0, 32, 8):
        d_loss, g_loss, generated = train_step(real[start : start + 8])
        assert np.isfinite(d_loss) and np.isfinite(g_loss)
    assert tuple(generated.shape) == (8, 8, 8, 1)
    assert int(d_optimizer.iterations.numpy()) == int(g_optimizer.iterations.numpy()) == 4


@pytest.mark.parametrize(
    "build",
    [build_model, lambda k: build_gan(k)[0], lambda k: build_gan(k)[1]],
    ids=["classifier", "discriminator", "generator"],
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
