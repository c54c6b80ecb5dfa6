"""The making new layers and models via subclassing guide
(keras.io/guides/making_new_layers_and_models_via_subclassing/), as our own programs:
Layer with state (add_weight), non-trainable weights, deferred build(), recursive
composition, keras.ops, add_loss and layer.losses (reset per call, regularizers),
serialization with get_config/from_config, the training argument with
keras.random.dropout and SeedGenerator, Model subclasses, and the variational
autoencoder put together both by subclassing and with the functional API."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)


def make_classes(k):
    """The guide's layers and models, defined against the module ``k``."""

    class Linear(k.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
            )
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return k.ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    class MLPBlock(k.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1 = Linear(8)
            self.linear_2 = Linear(8)
            self.linear_3 = Linear(1)

        def call(self, inputs):
            x = k.activations.relu(self.linear_1(inputs))
            x = k.activations.relu(self.linear_2(x))
            return self.linear_3(x)

    class Sampling(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = k.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = k.ops.shape(z_mean)[0]
            dim = k.ops.shape(z_mean)[1]
            epsilon = k.random.normal(shape=(batch, dim), seed=self.seed_generator)
            return z_mean + k.ops.exp(0.5 * z_log_var) * epsilon

    class Encoder(k.layers.Layer):
        def __init__(self, latent_dim=2, intermediate_dim=8, name="encoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = k.layers.Dense(intermediate_dim, activation="relu")
            self.dense_mean = k.layers.Dense(latent_dim)
            self.dense_log_var = k.layers.Dense(latent_dim)
            self.sampling = Sampling()

        def call(self, inputs):
            x = self.dense_proj(inputs)
            z_mean = self.dense_mean(x)
            z_log_var = self.dense_log_var(x)
            return z_mean, z_log_var, self.sampling((z_mean, z_log_var))

    class Decoder(k.layers.Layer):
        def __init__(self, original_dim, intermediate_dim=8, name="decoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = k.layers.Dense(intermediate_dim, activation="relu")
            self.dense_output = k.layers.Dense(original_dim, activation="sigmoid")

        def call(self, inputs):
            return self.dense_output(self.dense_proj(inputs))

    class VariationalAutoEncoder(k.Model):
        def __init__(self, original_dim, intermediate_dim=8, latent_dim=2, name="vae", **kwargs):
            super().__init__(name=name, **kwargs)
            self.original_dim = original_dim
            self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
            self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

        def call(self, inputs):
            z_mean, z_log_var, z = self.encoder(inputs)
            reconstructed = self.decoder(z)
            kl_loss = -0.5 * k.ops.mean(z_log_var - k.ops.square(z_mean) - k.ops.exp(z_log_var) + 1)
            self.add_loss(kl_loss)
            return reconstructed

    return {
        "Linear": Linear,
        "MLPBlock": MLPBlock,
        "Sampling": Sampling,
        "VariationalAutoEncoder": VariationalAutoEncoder,
    }


C = make_classes(keras)
Linear, MLPBlock, Sampling, VAE = (
    C["Linear"],
    C["MLPBlock"],
    C["Sampling"],
    C["VariationalAutoEncoder"],
)
ORIGINAL_DIM = 16


class SimpleDense(layers.Layer):
    """Weights created in __init__, input dimension given up front."""

    def __init__(self, units=4, input_dim=3):
        super().__init__()
        self.w = self.add_weight(
            shape=(input_dim, units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


class ComputeSum(layers.Layer):
    def __init__(self, input_dim):
        super().__init__()
        self.total = self.add_weight(
            initializer="zeros", shape=(input_dim,), trainable=False, name="total"
        )

    def call(self, inputs):
        self.total.assign_add(ops.sum(inputs, axis=0))
        return self.total


class ActivityRegularizationLayer(layers.Layer):
    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(inputs))
        return inputs


class OuterLayer(layers.Layer):
    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)

    def call(self, inputs):
        return self.activity_reg(inputs)


class OuterLayerWithKernelRegularizer(layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(4, kernel_regularizer=keras.regularizers.l2(1e-3))

    def call(self, inputs):
        return self.dense(inputs)


class CustomDropout(layers.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs, training=None):
        if training:
            return keras.random.dropout(inputs, rate=self.rate, seed=self.seed_generator)
        return inputs


def test_layer_with_weights_created_in_init():
    layer = SimpleDense(4, 3)
    y = layer(np.ones((2, 3), "float32"))
    assert tuple(y.shape) == (2, 4)
    assert layer.weights == [layer.w, layer.b]


def test_non_trainable_weight_accumulates():
    my_sum = ComputeSum(2)
    x = np.ones((2, 2), "float32")
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [4.0, 4.0])
    assert len(my_sum.weights) == 1
    assert len(my_sum.non_trainable_weights) == 1
    assert my_sum.trainable_weights == []


def test_deferred_build_on_first_call():
    linear = Linear(5)
    assert not linear.built
    y = linear(np.ones((2, 7), "float32"))
    assert linear.built
    assert tuple(y.shape) == (2, 5)
    assert tuple(linear.w.shape) == (7, 5)


def test_layers_are_recursively_composable():
    mlp = MLPBlock()
    y = mlp(np.ones((3, 5), "float32"))
    assert tuple(y.shape) == (3, 1)
    assert len(mlp.weights) == 6
    assert len(mlp.trainable_weights) == 6


def test_add_loss_is_reset_at_each_call():
    layer = OuterLayer()
    assert len(layer.losses) == 0
    _ = layer(np.zeros((1, 1), "float32"))
    assert len(layer.losses) == 1
    _ = layer(np.zeros((1, 1), "float32"))
    assert len(layer.losses) == 1


def test_regularizer_losses_of_inner_layers():
    layer = OuterLayerWithKernelRegularizer()
    _ = layer(np.zeros((1, 3), "float32"))
    assert len(layer.losses) == 1
    kernel = layer.dense.kernel.numpy()
    np.testing.assert_allclose(float(layer.losses[0]), 1e-3 * np.sum(kernel**2), rtol=1e-5)


def test_losses_in_a_custom_training_loop():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,))
    x = layers.Dense(4, kernel_regularizer=keras.regularizers.l2(1e-2))(inputs)
    outputs = ActivityRegularizationLayer()(x)
    model = keras.Model(inputs, layers.Dense(1)(outputs))
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    loss_fn = keras.losses.MeanSquaredError()
    x_train = RNG.normal(size=(16, 3)).astype("float32")
    y_train = x_train.sum(axis=1, keepdims=True)
    losses = []
    for _ in range(10):
        with keras.GradientTape() as tape:
            logits = model(x_train)
            loss_value = loss_fn(y_train, logits)
            loss_value = loss_value + sum(model.losses)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss_value))
    assert len(model.losses) == 2
    assert losses[-1] < losses[0]


def test_add_loss_works_with_fit():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,))
    outputs = ActivityRegularizationLayer()(layers.Dense(1)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.fit(RNG.random((8, 3)), RNG.random((8, 1)), verbose=0)
    model.compile(optimizer="adam")
    model.fit(RNG.random((8, 3)), RNG.random((8, 1)), verbose=0)


def test_get_config_and_from_config():
    layer = Linear(64, name="lin", dtype="float32")
    config = layer.get_config()
    assert config["units"] == 64 and config["name"] == "lin"
    new_layer = Linear.from_config(config)
    assert new_layer.units == 64 and new_layer.name == "lin"


def test_training_argument_switches_dropout():
    layer = CustomDropout(0.5)
    x = np.ones((4, 50), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    dropped = np.asarray(layer(x, training=True))
    assert set(np.unique(dropped)) <= {0.0, 2.0}
    assert 0 < np.count_nonzero(dropped) < x.size


def test_training_flag_propagates_from_model_call():
    inputs = keras.Input((50,))
    model = keras.Model(inputs, CustomDropout(0.5)(inputs))
    x = np.ones((4, 50), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), x)
    assert np.count_nonzero(np.asarray(model(x, training=True))) < x.size


def test_sampling_layer_with_seed_generator():
    layer = Sampling()
    z_mean = np.zeros((64, 3), "float32")
    z = np.asarray(layer((z_mean, np.zeros((64, 3), "float32"))))
    assert z.shape == (64, 3)
    assert 0.5 < z.std() < 1.5


def test_vae_subclassed_model_custom_loop():
    keras.utils.set_random_seed(0)
    vae = VAE(ORIGINAL_DIM, 8, 2)
    x_train = RNG.random((32, ORIGINAL_DIM)).astype("float32")
    optimizer = keras.optimizers.Adam(learning_rate=1e-2)
    mse_loss_fn = keras.losses.MeanSquaredError()
    loss_metric = keras.metrics.Mean()
    epoch_losses = []
    for _ in range(4):
        loss_metric.reset_state()
        for start in range(0, 32, 8):
            batch = x_train[start : start + 8]
            with keras.GradientTape() as tape:
                reconstructed = vae(batch)
                loss = mse_loss_fn(batch, reconstructed) + sum(vae.losses)
            grads = tape.gradient(loss, vae.trainable_weights)
            optimizer.apply_gradients(zip(grads, vae.trainable_weights))
            loss_metric.update_state(loss)
        epoch_losses.append(float(loss_metric.result()))
    assert epoch_losses[-1] < epoch_losses[0]
    assert len(vae.trainable_weights) == 10


def test_vae_subclassed_model_fit():
    keras.utils.set_random_seed(0)
    vae = VAE(ORIGINAL_DIM, 8, 2)
    x_train = RNG.random((32, ORIGINAL_DIM)).astype("float32")
    vae.compile(keras.optimizers.Adam(learning_rate=1e-2), loss=keras.losses.MeanSquaredError())
    history = vae.fit(x_train, x_train, epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def build_functional_vae(k):
    sampling = make_classes(k)["Sampling"]
    original_inputs = k.Input(shape=(ORIGINAL_DIM,), name="encoder_input")
    x = k.layers.Dense(8, activation="relu")(original_inputs)
    z_mean = k.layers.Dense(2, name="z_mean")(x)
    z_log_var = k.layers.Dense(2, name="z_log_var")(x)
    z = sampling()((z_mean, z_log_var))
    encoder = k.Model(inputs=original_inputs, outputs=z, name="encoder")

    latent_inputs = k.Input(shape=(2,), name="z_sampling")
    x = k.layers.Dense(8, activation="relu")(latent_inputs)
    outputs = k.layers.Dense(ORIGINAL_DIM, activation="sigmoid")(x)
    decoder = k.Model(inputs=latent_inputs, outputs=outputs, name="decoder")

    outputs = decoder(encoder(original_inputs))
    return k.Model(inputs=original_inputs, outputs=outputs, name="vae")


def test_functional_vae_trains():
    keras.utils.set_random_seed(0)
    vae = build_functional_vae(keras)
    assert [layer.name for layer in vae.layers][-1] == "decoder"
    x_train = RNG.random((32, ORIGINAL_DIM)).astype("float32")
    vae.compile(keras.optimizers.Adam(learning_rate=1e-2), loss=keras.losses.MeanSquaredError())
    history = vae.fit(x_train, x_train, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def _build_mlp_model(k):
    inputs = k.Input((5,))
    return k.Model(inputs, make_classes(k)["MLPBlock"]()(inputs))


@pytest.mark.parametrize(
    "build, sample",
    [
        (_build_mlp_model, None),
        (build_functional_vae, None),
        (
            lambda k: make_classes(k)["VariationalAutoEncoder"](ORIGINAL_DIM, 8, 2),
            lambda: np.zeros((2, ORIGINAL_DIM), "float32"),
        ),
    ],
    ids=["mlp_block", "functional_vae", "subclassed_vae"],
)
def test_same_structure_as_keras(build, sample):
    assert_same_structure(build, sample)
