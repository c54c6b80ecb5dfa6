"""Weight constraints (keras.constraints): the maths against NumPy, lookup by name, class
and config, application after every update in fit, and the round trip through layer
configs and model files."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite.core import Tensor
from dendrite.layers import constraints

RNG = np.random.default_rng(5)
EPS = 1e-7


def _apply(constraint, w):
    return constraint(Tensor(w)).data


def _norms(w, axis):
    return np.sqrt(np.sum(w * w, axis=axis, keepdims=True))


@pytest.mark.parametrize("axis", [0, 1, [0, 1, 2]])
def test_max_norm_shrinks_only_long_slices(axis):
    w = RNG.standard_normal((3, 3, 4, 5)) * 2.0
    got = _apply(constraints.MaxNorm(1.5, axis=axis), w)
    n = _norms(w, tuple(axis) if isinstance(axis, list) else axis)
    np.testing.assert_allclose(got, w * np.clip(n, 0, 1.5) / (EPS + n), rtol=1e-12)
    assert np.all(_norms(got, tuple(axis) if isinstance(axis, list) else axis) <= 1.5 + 1e-6)


def test_min_max_norm_unit_norm_and_non_neg():
    w = RNG.standard_normal((6, 4))
    n = _norms(w, 0)
    got = _apply(constraints.MinMaxNorm(0.5, 1.0, rate=0.5), w)
    desired = 0.5 * np.clip(n, 0.5, 1.0) + 0.5 * n
    np.testing.assert_allclose(got, w * desired / (EPS + n), rtol=1e-12)
    np.testing.assert_allclose(_norms(_apply(constraints.UnitNorm(), w), 0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(_apply(constraints.NonNeg(), w), np.where(w >= 0, w, 0.0))


def test_get_by_name_class_name_config_and_callable():
    assert isinstance(constraints.get("max_norm"), constraints.MaxNorm)
    assert isinstance(constraints.get("NonNeg"), constraints.NonNeg)
    restored = constraints.get(constraints.serialize(constraints.MaxNorm(3.0, axis=[0, 1])))
    assert restored.get_config() == {"max_value": 3.0, "axis": [0, 1]}
    assert constraints.get(None) is None

    def clip(w):
        return w

    assert constraints.get(clip) is clip
    assert tf.keras.constraints.max_norm is constraints.MaxNorm
    with pytest.raises(ValueError, match=r"Unknown constraint 'maxnorm'.*'max_norm'"):
        constraints.get("maxnorm")


def test_fit_applies_constraints_after_every_update():
    tf.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((5,)),
            tf.keras.layers.Dense(8, kernel_constraint="non_neg", activation="relu"),
            tf.keras.layers.Dense(
                3, kernel_constraint=tf.keras.constraints.max_norm(0.5), bias_constraint="non_neg"
            ),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), loss="mse")
    x = RNG.standard_normal((64, 5)).astype("float32")
    y = (RNG.standard_normal((64, 3)) * 10 - 5).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    first, _, second, bias = model.get_weights()
    assert first.min() >= 0.0
    assert np.all(np.linalg.norm(second, axis=0) <= 0.5 + 1e-5)
    assert bias.min() >= 0.0


@pytest.mark.parametrize(
    "layer",
    [
        tf.keras.layers.Dense(3, kernel_constraint="unit_norm", bias_constraint="non_neg"),
        tf.keras.layers.Conv2D(2, 3, kernel_constraint=constraints.MaxNorm(2.0, [0, 1, 2])),
        tf.keras.layers.Embedding(10, 4, embeddings_constraint="max_norm"),
        tf.keras.layers.LSTM(3, recurrent_constraint="unit_norm"),
        tf.keras.layers.BatchNormalization(gamma_constraint="non_neg"),
        tf.keras.layers.MultiHeadAttention(2, 4, kernel_constraint="max_norm"),
    ],
    ids=["dense", "conv2d", "embedding", "lstm", "batchnorm", "mha"],
)
def test_layer_configs_carry_their_constraints(layer):
    config = layer.get_config()
    entries = {k: v for k, v in config.items() if k.endswith("_constraint") and v is not None}
    assert entries, config
    clone = type(layer).from_config(config)
    for key, value in entries.items():
        assert value["module"] == "keras.constraints"
        restored = getattr(clone, key)
        assert type(restored).__name__ == value["class_name"]
        assert restored.get_config() == value["config"]


def test_model_file_keeps_constraints_and_training_still_applies_them(tmp_path):
    tf.utils.set_random_seed(1)
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(2, kernel_constraint="non_neg")]
    )
    model.compile(optimizer=tf.keras.optimizers.SGD(1.0), loss="mse")
    path = tmp_path / "m.dendrite"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.layers[0].kernel_constraint, constraints.NonNeg)
    x = RNG.standard_normal((32, 4)).astype("float32")
    loaded.fit(x, -10 * np.abs(x[:, :2]), verbose=0)
    assert loaded.get_weights()[0].min() >= 0.0


def test_a_plain_function_constraint_trains_but_cannot_be_saved_in_a_config():
    def clip_to_one(w):
        return tf.ops.clip(w, -1.0, 1.0)

    layer = tf.keras.layers.Dense(2, kernel_constraint=clip_to_one)
    model = tf.keras.Sequential([tf.keras.Input((3,)), layer])
    model.compile(optimizer=tf.keras.optimizers.SGD(10.0), loss="mse")
    model.fit(np.ones((8, 3), "float32"), np.full((8, 2), 50.0, "float32"), verbose=0)
    assert np.abs(model.get_weights()[0]).max() <= 1.0
    with pytest.raises(ValueError, match="Cannot serialize the constraint"):
        layer.get_config()


def test_custom_training_loop_applies_constraints_through_the_optimizer():
    """Keras applies a variable's constraint in optimizer.apply_gradients, so a
    GradientTape loop respects it too (and fit does not apply it twice: MinMaxNorm with
    rate 0.5 is not idempotent)."""
    tf.utils.set_random_seed(2)
    layer = tf.keras.layers.Dense(3, kernel_constraint=constraints.MinMaxNorm(0.0, 0.1, 0.5))
    model = tf.keras.Sequential([tf.keras.Input((4,)), layer])
    optimizer = tf.keras.optimizers.SGD(0.0)  # no move: only the constraint acts
    before = model.get_weights()[0].copy()
    x = RNG.standard_normal((8, 4)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.ops.sum(model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    n = _norms(before, 0)
    expected = before * (0.5 * np.clip(n, 0.0, 0.1) + 0.5 * n) / (EPS + n)
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5)
    assert layer.kernel.constraint is layer.kernel_constraint

    model.compile(optimizer=tf.keras.optimizers.SGD(0.0), loss="mse")
    once = model.get_weights()[0].copy()
    model.train_on_batch(x, np.zeros((8, 3), "float32"))
    n = _norms(once, 0)
    expected = once * (0.5 * np.clip(n, 0.0, 0.1) + 0.5 * n) / (EPS + n)
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5)
