"""Resizing and the random augmentation layers: exact transforms for fixed draws
(quarter turns, whole-pixel shifts, flips, block averages), inference is the identity,
fill modes, gradients through the sampling, and a model that trains with them."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import layers
from dendrite.testing import gradcheck

RNG = np.random.default_rng(31)
IMAGES = RNG.standard_normal((3, 6, 6, 2)).astype("float32")


def test_random_layers_augment_on_a_direct_call_and_not_at_inference():
    """Keras 3's rule: their call defaults to training=True, so a direct call (or a model
    called directly) augments; training=False, predict and evaluate do not."""
    for make in (
        lambda: layers.RandomFlip(seed=3),
        lambda: layers.RandomRotation(0.2, seed=3),
        lambda: layers.RandomTranslation(0.2, 0.2, seed=3),
        lambda: layers.RandomZoom(0.2, seed=3),
    ):
        layer = make()
        assert not np.array_equal(layer(IMAGES).data, IMAGES), type(layer).__name__
        np.testing.assert_array_equal(layer(IMAGES, training=False).data, IMAGES)
        model = tf.keras.Sequential([tf.keras.Input(IMAGES.shape[1:]), make()])
        assert not np.array_equal(model(IMAGES).data, IMAGES)
        np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES)
        # the default stays with the layer: an outer training=False reaches it
        np.testing.assert_array_equal(model(IMAGES, training=False).data, IMAGES)


def test_random_flip_gives_each_image_or_its_mirror():
    images = RNG.standard_normal((64, 4, 5, 1)).astype("float32")
    out = layers.RandomFlip("horizontal", seed=0)(images, training=True).data
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    same = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 10 < sum(mirrored) < 54
    both = layers.RandomFlip(seed=1)(images, training=True).data
    assert any(np.array_equal(o, i[::-1]) for o, i in zip(both, images))


def test_a_quarter_turn_is_rot90_counter_clockwise():
    out = layers.RandomRotation((0.25, 0.25))(IMAGES, training=True).data
    np.testing.assert_allclose(out, np.rot90(IMAGES, k=1, axes=(1, 2)), atol=1e-5)


def test_translation_by_whole_pixels_with_constant_fill():
    layer = layers.RandomTranslation((0.5, 0.5), (0.0, 0.0), fill_mode="constant", fill_value=7.0)
    out = layer(IMAGES, training=True).data
    np.testing.assert_allclose(out[:, 3:], IMAGES[:, :3], atol=1e-6)
    np.testing.assert_allclose(out[:, :3], 7.0)
    wrap = layers.RandomTranslation((0.5, 0.5), 0.0, fill_mode="wrap")(IMAGES, training=True)
    np.testing.assert_allclose(wrap.data, np.roll(IMAGES, 3, axis=1), atol=1e-6)
    reflect = layers.RandomTranslation((0.5, 0.5), 0.0)(IMAGES, training=True).data
    np.testing.assert_allclose(reflect[:, :3], IMAGES[:, 2::-1], atol=1e-6)


def test_zoom_out_keeps_the_centre_and_samples_farther():
    images = RNG.standard_normal((2, 5, 5, 1)).astype("float32")
    out = layers.RandomZoom((1.0, 1.0), fill_mode="constant")(images, training=True).data
    np.testing.assert_allclose(out[:, 2, 2], images[:, 2, 2], atol=1e-6)
    np.testing.assert_allclose(out[:, 1, 1], images[:, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0], 0.0, atol=1e-6)


def test_resizing_averages_blocks_and_repeats_pixels():
    down = layers.Resizing(3, 3)(IMAGES).data
    blocks = IMAGES.reshape(3, 3, 2, 3, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(down, blocks, atol=1e-6)
    up = layers.Resizing(12, 12, interpolation="nearest")(IMAGES).data
    np.testing.assert_array_equal(up, IMAGES.repeat(2, axis=1).repeat(2, axis=2))
    single = layers.Resizing(3, 4)(IMAGES[0])
    assert single.shape == (3, 4, 2)
    assert layers.Resizing(3, 4).compute_output_shape((None, 6, 6, 2)) == (None, 3, 4, 2)


def test_gradients_flow_through_the_sampling():
    x = RNG.standard_normal((2, 5, 4, 2))
    gradcheck(lambda t: layers.Resizing(3, 7, dtype="float64")(t), x)
    gradcheck(
        lambda t: layers.RandomRotation((0.1, 0.1), fill_mode="constant", dtype="float64")(
            t, training=True
        ),
        x,
    )


def test_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="Unknown `fill_mode`"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="Unknown `mode`"):
        layers.RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"random_zoom.*expects images.*\(3, 4\)"):
        layers.RandomZoom(0.1)(np.zeros((3, 4), "float32"), training=True)


def test_an_augmented_model_trains_and_predicts_deterministically():
    tf.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 1)),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.05),
            layers.Conv2D(2, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = RNG.random((32, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int64")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
