"""Activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) and preprocessing layers
(Rescaling, Normalization with adapt, UnitNormalization, Identity): values against NumPy
formulas, Keras' defaults, masks, saving of adapted statistics, and errors. The shared
layer contract (gradients, configs, training step) runs on them from the registry."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import layers

RNG = np.random.default_rng(12)
X = RNG.standard_normal((4, 6)).astype("float32") * 3


def test_relu_options_follow_keras_formula():
    np.testing.assert_array_equal(layers.ReLU()(X).data, np.maximum(X, 0))
    got = layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5)(X).data
    expected = np.where(X >= 2.0, 2.0, np.where(X >= 0.5, X, 0.1 * (X - 0.5)))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="max_value of a ReLU layer cannot be a negative"):
        layers.ReLU(max_value=-1)


def test_leaky_relu_default_slope_is_keras_3s_and_alpha_is_accepted():
    np.testing.assert_allclose(layers.LeakyReLU()(X).data, np.where(X >= 0, X, 0.3 * X))
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1
    np.testing.assert_allclose(layers.ELU(0.5)(X).data, np.where(X > 0, X, 0.5 * np.expm1(X)))


def test_prelu_starts_as_relu_learns_alpha_and_shares_axes():
    layer = layers.PReLU(shared_axes=[1, 2])
    x = RNG.standard_normal((2, 3, 4, 5)).astype("float32")
    np.testing.assert_array_equal(layer(x).data, np.maximum(x, 0))
    assert tuple(layer.alpha.shape) == (1, 1, 5)
    layer.alpha.assign(np.full((1, 1, 5), 0.25, "float32"))
    np.testing.assert_allclose(layer(x).data, np.where(x >= 0, x, 0.25 * x), rtol=1e-6)
    with tf.GradientTape() as tape:
        loss = tf.ops.sum(layer(x))
    (grad,) = tape.gradient(loss, [layer.alpha])
    np.testing.assert_allclose(grad.data.ravel(), np.minimum(x, 0).sum(axis=(0, 1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="p_re_lu.*incompatible"):
        layer(np.zeros((2, 3, 4, 6), "float32"))


def test_softmax_layer_with_a_mask_gives_masked_positions_zero():
    mask = np.array([[True, True, False, False, True, True]] * 4)
    got = layers.Softmax()(X, mask=mask).data
    logits = np.where(mask, X, -np.inf)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layers.Softmax(axis=0)(X).data.sum(axis=0), 1.0, rtol=1e-6)


def test_rescaling_turns_integer_images_into_floats():
    images = RNG.integers(0, 256, (2, 4, 4, 1)).astype("uint8")
    out = layers.Rescaling(1.0 / 255)(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, images / 255.0, rtol=1e-6)
    np.testing.assert_allclose(layers.Rescaling(2.0, offset=-1.0)(X).data, 2 * X - 1, rtol=1e-6)


def test_normalization_adapts_per_feature_and_inverts():
    data = RNG.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 2.0, 3.0], size=(500, 3))
    layer = layers.Normalization()
    layer.adapt(data)
    out = layer(data.astype("float32")).data
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-4)
    inverse = layers.Normalization(invert=True)
    inverse.adapt(data)
    np.testing.assert_allclose(inverse(out).data, data, rtol=1e-4, atol=1e-4)
    whole = layers.Normalization(axis=None)
    whole.adapt(data)
    np.testing.assert_allclose(whole.mean.data.ravel(), [data.mean()], rtol=1e-6)


def test_normalization_adapted_statistics_are_saved_with_the_model(tmp_path):
    images = RNG.random((50, 4, 4, 2)).astype("float32") * [1.0, 10.0]
    norm = layers.Normalization(axis=-1)
    norm.adapt(images)
    model = tf.keras.Sequential([tf.keras.Input((4, 4, 2)), norm, layers.Flatten()])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "norm.dendrite"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    # Keras' count: mean (2) + variance (2) + count (1), the samples adapt saw.
    assert model.count_params() == 5 and not model.trainable_weights
    assert int(loaded.layers[0].count.data) == 50


def test_a_normalization_file_written_before_count_still_loads(tmp_path):
    """Files from before Normalization kept its count hold only mean and variance: they
    load, the count stays 0."""
    from dendrite.saving.model_file import WEIGHTS
    from dendrite.saving.safetensors_io import tensors_to_bytes

    norm = layers.Normalization(axis=-1)
    norm.adapt(RNG.random((20, 3)).astype("float32"))
    model = tf.keras.Sequential([tf.keras.Input((3,)), norm])
    model.save(tmp_path / "new.dendrite")
    import zipfile

    with zipfile.ZipFile(tmp_path / "new.dendrite") as new:
        members = {n: new.read(n) for n in new.namelist()}
    older = {
        f"{i:04d}:{v.path}": v.data for i, v in enumerate(model.weights) if v is not norm.count
    }
    members[WEIGHTS] = tensors_to_bytes(older, {"format": "dendrite.weights"})
    with zipfile.ZipFile(tmp_path / "old.dendrite", "w") as old:
        for name, data in members.items():
            old.writestr(name, data)
    loaded = tf.keras.models.load_model(tmp_path / "old.dendrite")
    x = RNG.random((4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert int(loaded.layers[0].count.data) == 0


def test_a_normalization_file_with_broadcast_statistics_still_loads(tmp_path):
    """Files from before the statistics took Keras' shape hold them as (1, 1, features):
    they load into (features,)."""
    import zipfile

    from dendrite.saving.model_file import WEIGHTS
    from dendrite.saving.safetensors_io import tensors_to_bytes

    norm = layers.Normalization(axis=-1)
    norm.adapt(RNG.random((20, 5, 3)).astype("float32"))
    model = tf.keras.Sequential([tf.keras.Input((5, 3)), norm])
    model.save(tmp_path / "new.dendrite")
    with zipfile.ZipFile(tmp_path / "new.dendrite") as new:
        members = {n: new.read(n) for n in new.namelist()}
    older = {
        f"{i:04d}:{v.path}": (v.data.reshape(1, 1, 3) if v.data.ndim else v.data)
        for i, v in enumerate(model.weights)
    }
    members[WEIGHTS] = tensors_to_bytes(older, {"format": "dendrite.weights"})
    with zipfile.ZipFile(tmp_path / "old.dendrite", "w") as old:
        for name, data in members.items():
            old.writestr(name, data)
    loaded = tf.keras.models.load_model(tmp_path / "old.dendrite")
    x = RNG.random((4, 5, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[0].mean.shape == (3,)
    # another size is still refused
    older = {k: np.zeros((1, 1, 4), "float32") if v.ndim else v for k, v in older.items()}
    members[WEIGHTS] = tensors_to_bytes(older, {"format": "dendrite.weights"})
    with zipfile.ZipFile(tmp_path / "bad.dendrite", "w") as bad:
        for name, data in members.items():
            bad.writestr(name, data)
    with pytest.raises(Exception, match="expects shape"):
        tf.keras.models.load_model(tmp_path / "bad.dendrite")


@pytest.mark.parametrize(
    "axis, shape", [(-1, (40, 3)), (-1, (40, 5, 3)), ((1, 3), (40, 2, 5, 3)), (None, (40, 3))]
)
def test_normalization_weights_have_keras_shapes_and_values(tmp_path, axis, shape):
    """get_weights after adapt as Keras 3 gives them (mean, variance, count), and Keras'
    list set into a fresh dendrite layer gives Keras' outputs."""
    from dendrite.testing.keras_side import run_keras_side

    data = RNG.normal(2.0, 3.0, size=shape).astype("float32")
    np.save(tmp_path / "data.npy", data)
    run_keras_side(
        f"""
import sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
data = np.load(root / "data.npy")
layer = keras.layers.Normalization(axis={axis!r})
layer.adapt(data)
for i, w in enumerate(layer.get_weights()):
    np.save(root / f"w{{i}}.npy", np.asarray(w))
np.save(root / "out.npy", keras.ops.convert_to_numpy(layer(data[:7])))
""",
        tmp_path,
    )
    keras_weights = [np.load(tmp_path / f"w{i}.npy") for i in range(3)]
    layer = layers.Normalization(axis=axis)
    layer.adapt(data)
    ours = layer.get_weights()
    assert [w.shape for w in ours] == [w.shape for w in keras_weights]
    np.testing.assert_allclose(ours[0], keras_weights[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], keras_weights[1], rtol=1e-4)
    fresh = layers.Normalization(axis=axis)
    fresh.build((None, *shape[1:]))
    fresh.set_weights(keras_weights)
    np.testing.assert_allclose(
        fresh(data[:7]).data, np.load(tmp_path / "out.npy"), rtol=1e-5, atol=1e-5
    )


def test_normalization_with_given_statistics_and_its_errors():
    layer = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.0])
    np.testing.assert_allclose(
        layer(np.array([[3.0, 2.0]], "float32")).data, [[1.0, 0.0]], atol=1e-6
    )
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        layers.Normalization(mean=[1.0])
    with pytest.raises(ValueError, match="cannot adapt"):
        layer.adapt(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"normalization.*incompatible.*\(1, 3\)"):
        layer(np.zeros((1, 3), "float32"))


def test_unit_normalization_and_identity():
    np.testing.assert_allclose(
        np.linalg.norm(layers.UnitNormalization()(X).data, axis=-1), 1.0, rtol=1e-6
    )
    np.testing.assert_array_equal(layers.Identity()(X).data, X)


def test_a_keras_tutorial_stack_trains():
    tf.utils.set_random_seed(0)
    images = RNG.integers(0, 256, (64, 8, 8, 1)).astype("uint8")
    labels = (images.reshape(64, -1).mean(axis=1) > 127).astype("int64")
    model = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 1)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(4, 3),
            layers.LeakyReLU(),
            layers.Flatten(),
            layers.Dense(8),
            layers.PReLU(),
            layers.Dense(2),
            layers.Softmax(),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(images, labels, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
