"""Layer base behaviour and the core layers (Dense, Activation, Dropout, Flatten, Reshape)."""

import numpy as np
import pytest

import dendrite as tf
from dendrite import layers
from dendrite.testing import gradcheck


def test_dense_builds_lazily_with_keras_layout_and_defaults():
    dense = layers.Dense(4)
    assert not dense.built
    out = dense(np.ones((3, 5), dtype="float32"))
    assert dense.built and out.shape == (3, 4) and out.dtype == np.float32
    kernel, bias = dense.get_weights()
    assert kernel.shape == (5, 4) and bias.shape == (4,)
    assert np.all(bias == 0)
    limit = np.sqrt(6 / (5 + 4))
    assert np.abs(kernel).max() <= limit
    assert [w.path for w in dense.weights] == [f"{dense.name}/kernel", f"{dense.name}/bias"]


def test_dense_computes_activation_of_affine_map():
    dense = layers.Dense(3, activation="relu")
    x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    dense(x)
    kernel = np.arange(6, dtype="float32").reshape(2, 3) - 2.5
    bias = np.array([0.5, -1.0, 0.0], dtype="float32")
    dense.set_weights([kernel, bias])
    np.testing.assert_allclose(dense(x).numpy(), np.maximum(x @ kernel + bias, 0), rtol=1e-6)


def test_dense_on_rank3_input_applies_to_last_axis():
    dense = layers.Dense(2)
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    out = dense(x).numpy()
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(out, x @ kernel + bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", None, "sigmoid"])
def test_dense_gradients_match_finite_differences(activation):
    dense = layers.Dense(3, activation=activation, dtype="float64")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5))
    dense(x)

    def run(inputs, kernel, bias):
        dense.kernel.data[...] = kernel.data
        dense.bias.data[...] = bias.data
        out = dense(inputs)
        # Re-express the layer's output as a function of the given kernel and bias.
        from dendrite.ops.dense import dense as dense_op

        fused = dense_op(inputs, kernel, bias, relu=activation == "relu")
        out_ref = fused if activation in ("relu", None) else dense.activation(fused)
        np.testing.assert_allclose(out.numpy(), out_ref.numpy())
        return out_ref

    gradcheck(run, x, rng.normal(size=(5, 3)), rng.normal(size=(3,)))


def test_dense_wrong_feature_size_names_layer_and_shapes():
    dense = layers.Dense(2, name="dense_probe")
    dense(np.ones((1, 784), dtype="float32"))
    with pytest.raises(ValueError) as info:
        dense(np.ones((32, 783), dtype="float32"))
    message = str(info.value)
    assert "dense_probe" in message and "784" in message and "(32, 783)" in message


def test_dense_rejects_bad_units_and_unknown_kwargs():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        layers.Dense(3, not_an_argument=1)
    with pytest.raises(ValueError, match="Unknown activation 'nope'"):
        layers.Dense(3, activation="nope")


def test_dense_float64_input_is_cast_to_layer_dtype():
    out = layers.Dense(2)(np.ones((2, 3)))
    assert out.dtype == np.float32


def test_set_weights_checks_count_and_shapes():
    dense = layers.Dense(2)
    dense(np.ones((1, 3), dtype="float32"))
    with pytest.raises(ValueError, match="expected 2 weights"):
        dense.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4, 2\)"):
        dense.set_weights([np.zeros((4, 2)), np.zeros(2)])


def test_count_params_before_build_says_how_to_build():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(2).count_params()


def test_dense_config_round_trip():
    dense = layers.Dense(
        5, activation="tanh", use_bias=False, kernel_regularizer=tf.regularizers.L2(0.1)
    )
    clone = layers.Dense.from_config(dense.get_config())
    assert clone.units == 5 and not clone.use_bias
    assert clone.activation is dense.activation
    assert clone.kernel_regularizer.l2 == pytest.approx(0.1)


def test_kernel_regularizer_adds_penalty_to_losses():
    dense = layers.Dense(2, kernel_regularizer=tf.regularizers.L1L2(l1=0.1, l2=0.2))
    dense(np.ones((1, 3), dtype="float32"))
    kernel = dense.kernel.numpy()
    (penalty,) = dense.losses
    expected = 0.1 * np.abs(kernel).sum() + 0.2 * np.square(kernel).sum()
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)


def test_activity_regularizer_penalises_outputs_per_sample():
    dense = layers.Dense(2, activity_regularizer="l2", kernel_initializer="ones")
    out = dense(np.ones((4, 3), dtype="float32"))
    (penalty,) = dense.losses
    np.testing.assert_allclose(penalty.numpy(), 0.01 * np.square(out.numpy()).sum(), rtol=1e-6)


def test_dropout_only_in_training_and_keeps_expectation():
    tf.utils.set_random_seed(0)
    drop = layers.Dropout(0.25)
    x = np.ones((200, 50), dtype="float32")
    np.testing.assert_array_equal(drop(x).numpy(), x)
    np.testing.assert_array_equal(drop(x, training=False).numpy(), x)
    out = drop(x, training=True).numpy()
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.02
    assert abs(out.mean() - 1.0) < 0.03


def test_dropout_rejects_invalid_rate():
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)


def test_dropout_gradient_is_the_mask():
    drop = layers.Dropout(0.5, seed=3)
    x = tf.Tensor(np.ones((4, 6), dtype="float32"), requires_grad=True)
    out = drop(x, training=True)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.numpy())


def test_flatten_and_reshape():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    assert layers.Flatten()(x).shape == (2, 12)
    assert layers.Reshape((4, -1))(x).shape == (2, 4, 3)
    assert layers.Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((5, 5))(x)


def test_activation_layer_matches_op():
    x = np.linspace(-3, 3, 12, dtype="float32").reshape(3, 4)
    np.testing.assert_allclose(
        layers.Activation("sigmoid")(x).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-6
    )


def test_automatic_names_are_unique():
    tf.utils.clear_session()
    first, second = layers.Dense(1), layers.Dense(1)
    assert (first.name, second.name) == ("dense", "dense_1")


def test_training_flag_reaches_nested_layers():
    class Outer(layers.Layer):
        def __init__(self):
            super().__init__()
            self.drop = layers.Dropout(0.5, seed=1)

        def call(self, x):
            return self.drop(x)

    outer = Outer()
    x = np.ones((10, 10), dtype="float32")
    np.testing.assert_array_equal(outer(x).numpy(), x)
    assert (outer(x, training=True).numpy() == 0).any()


def test_custom_layer_with_add_weight_trains_through_tape():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return x * self.w

    layer = Scale()
    x = np.array([[1.0, 2.0]], dtype="float32")
    with tf.GradientTape() as tape:
        loss = tf.ops.sum(layer(x) ** 2)
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    np.testing.assert_allclose(grad.numpy(), 2 * x[0] ** 2)


def test_frozen_layer_has_no_trainable_weights():
    dense = layers.Dense(2)
    dense(np.ones((1, 2), dtype="float32"))
    dense.trainable = False
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
