"""AlphaDropout: Keras 3's rule (SELU's saturation for dropped values, then the affine map
that restores zero mean and unit variance), training only, noise_shape, seeds, config."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf

ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def test_kept_and_dropped_values_follow_the_affine_map():
    x = np.random.default_rng(0).standard_normal((50, 6))
    rate = 0.25
    y = np.asarray(tf.keras.layers.AlphaDropout(rate, seed=3, dtype="float64")(x, training=True))
    saturation = -ALPHA * SCALE
    a = ((1 - rate) * (1 + rate * saturation**2)) ** -0.5
    b = -a * saturation * rate
    dropped = np.isclose(y, a * saturation + b)
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] + b, rtol=1e-12)
    assert 0.15 < dropped.mean() < 0.35


def test_standard_inputs_keep_their_moments_and_inference_is_the_input():
    layer = tf.keras.layers.AlphaDropout(0.2, seed=0)
    x = np.random.default_rng(1).standard_normal((40000, 4)).astype("float32")
    y = np.asarray(layer(x, training=True))
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    np.testing.assert_array_equal(np.asarray(layer(x)), x)


def test_noise_shape_shares_the_mask_and_gradients_flow():
    x = np.random.default_rng(2).standard_normal((30, 5))
    layer = tf.keras.layers.AlphaDropout(0.5, noise_shape=(None, 1), seed=4, dtype="float64")
    y = np.asarray(layer(x, training=True))
    rows_dropped = np.all(np.isclose(y, y[:, :1]), axis=1) & ~np.isclose(x[:, 0], x[:, 1])
    assert rows_dropped.any() and not rows_dropped.all()
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.ops.sum(tf.keras.layers.AlphaDropout(0.5, seed=4)(variable, training=True))
    grad = np.asarray(tape.gradient(loss, variable))
    assert set(np.round(np.unique(grad), 12)) <= {0.0, round(float(grad.max()), 12)}


def test_config_and_errors():
    layer = tf.keras.layers.AlphaDropout(0.1, noise_shape=(None, 1), seed=7)
    config = layer.get_config()
    assert config["rate"] == 0.1 and config["noise_shape"] == [None, 1] and config["seed"] == 7
    assert tf.keras.layers.AlphaDropout.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="AlphaDropout"):
        tf.keras.layers.AlphaDropout(1.5)
