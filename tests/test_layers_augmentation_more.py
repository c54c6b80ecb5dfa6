"""CenterCrop (against Keras 3 itself, in a subprocess), RandomContrast and RandomBrightness
(each image's transform recovered from its output and checked against Keras' rule and
bounds): training only, seeds, configs that Keras reads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

L = tf.keras.layers


def _images(shape=(4, 6, 7, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def test_contrast_scales_each_image_about_its_channel_means():
    x = _images()
    layer = L.RandomContrast((0.3, 0.6), seed=3)
    assert np.array_equal(np.asarray(layer(x, training=False)), x)  # inference: the input
    y = np.asarray(layer(x, training=True))
    mean = x.mean(axis=(1, 2), keepdims=True)
    factors = []
    for n in range(len(x)):
        free = (y[n] > 0) & (y[n] < 255)  # not clipped
        ratio = (y[n] - mean[n])[free] / (x[n] - mean[n])[free]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)  # one factor per image
        factors.append(ratio[0])
        clipped = ~free
        expected = np.clip((x[n] - mean[n]) * ratio[0] + mean[n], 0, 255)
        np.testing.assert_allclose(y[n][clipped], expected[clipped], rtol=1e-4, atol=1e-3)
    assert all(0.7 - 1e-4 <= f <= 1.6 + 1e-4 for f in factors)  # [1 - 0.3, 1 + 0.6]
    assert len(set(np.round(factors, 4))) > 1  # drawn per image


def test_brightness_adds_one_shift_per_image_and_clips():
    x = _images(seed=1) / 255.0
    layer = L.RandomBrightness(0.4, value_range=(0, 1), seed=4)
    y = np.asarray(layer(x, training=True))
    for n in range(len(x)):
        free = (y[n] > 0) & (y[n] < 1)
        shift = (y[n] - x[n])[free]
        np.testing.assert_allclose(shift, shift[0], atol=1e-6)
        assert -0.4 - 1e-6 <= shift[0] <= 0.4 + 1e-6
        np.testing.assert_allclose(y[n], np.clip(x[n] + shift[0], 0, 1), atol=1e-6)


def test_seeded_layers_repeat_and_one_image_works():
    x = _images(seed=2)
    a = np.asarray(L.RandomContrast(0.5, seed=7)(x, training=True))
    b = np.asarray(L.RandomContrast(0.5, seed=7)(x, training=True))
    np.testing.assert_array_equal(a, b)
    one = np.asarray(L.RandomBrightness(0.1, seed=1)(x[0], training=True))
    assert one.shape == x[0].shape


def test_factor_and_value_range_errors():
    with pytest.raises(ValueError, match="RandomContrast.*factor"):
        L.RandomContrast(1.5)
    with pytest.raises(ValueError, match="RandomBrightness.*factor"):
        L.RandomBrightness([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="value_range"):
        L.RandomBrightness(0.1, value_range=5)
    with pytest.raises(ValueError, match="expects images"):
        L.RandomContrast(0.1)(np.ones((2, 3), "float32"), training=True)


def test_gradients_reach_the_input():
    x = tf.Variable(_images((2, 3, 3, 1), seed=5) / 255.0)
    with tf.GradientTape() as tape:
        y = L.RandomContrast(0.2, value_range=(0, 1), seed=1)(x, training=True)
        loss = tf.ops.sum(y * y)
    grad = np.asarray(tape.gradient(loss, x))
    assert grad.shape == x.shape and np.any(grad != 0)


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    x = np.load(root + "/x.npy", allow_pickle=False)
    out = {}
    for name, kwargs in json.loads(open(root + "/cases.json").read()).items():
        data = np.moveaxis(x, -1, 1) if kwargs.get("data_format") == "channels_first" else x
        y = np.asarray(keras.layers.CenterCrop(**kwargs)(data))
        np.save(root + f"/{name}.npy", y, allow_pickle=False)
    configs = json.loads(open(root + "/configs.json").read())
    for name, config in configs.items():
        layer = getattr(keras.layers, name).from_config(config)
        out[name] = [list(layer.factor), list(layer.value_range)]
    json.dump(out, open(root + "/keras.json", "w"))
    """
)

CROPS = {
    "crop": {"height": 3, "width": 4},
    "crop_odd": {"height": 4, "width": 2},
    "resize_up": {"height": 9, "width": 5},
    "wider": {"height": 2, "width": 12},
    "first": {"height": 3, "width": 3, "data_format": "channels_first"},
}


def test_center_crop_and_configs_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    x = _images((2, 6, 7, 3), seed=6)
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    (tmp_path / "cases.json").write_text(json.dumps(CROPS))
    configs = {
        "RandomContrast": L.RandomContrast([0.1, 0.4], seed=2).get_config(),
        "RandomBrightness": L.RandomBrightness(0.3, value_range=(0, 1)).get_config(),
    }
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    run_keras_side(KERAS_SIDE, tmp_path)
    for name, kwargs in CROPS.items():
        layer = L.CenterCrop(**kwargs)
        data = np.moveaxis(x, -1, 1) if kwargs.get("data_format") == "channels_first" else x
        mine = np.asarray(layer(data))
        assert tuple(layer.compute_output_shape(data.shape)) == mine.shape
        np.testing.assert_allclose(
            mine, np.load(tmp_path / f"{name}.npy"), rtol=1e-5, atol=1e-3, err_msg=name
        )
    keras_read = json.loads((tmp_path / "keras.json").read_text())
    assert keras_read["RandomContrast"] == [[0.1, 0.4], [0.0, 255.0]]
    assert keras_read["RandomBrightness"] == [[-0.3, 0.3], [0.0, 1.0]]
