"""RandomCrop, RandomGrayscale, RandomInvert, RandomColorDegeneration, AutoContrast and
Pipeline: against Keras 3 itself (in a subprocess) where the output is deterministic
(certain draws, fixed factors, crops of images with no room to move), recovered
transforms for the random ones, seeds, training vs inference, float64, uint8 values,
channels_first, one image and clear errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite.layers.augmentation import RandomFlip
from dendrite.layers.augmentation_color_more import (
    AutoContrast,
    RandomColorDegeneration,
    RandomGrayscale,
    RandomInvert,
)
from dendrite.layers.augmentation_crop import RandomCrop
from dendrite.layers.pipeline import Pipeline
from dendrite.testing.keras_side import run_keras_side

GREY = np.asarray([0.2989, 0.587, 0.114])


def _images(shape=(4, 6, 7, 3), seed=0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(dtype)


def test_random_crop_windows_are_slices_of_the_input_and_seeded():
    x = _images((3, 9, 10, 2))
    layer = RandomCrop(4, 5, seed=3)
    starts = set()
    for _ in range(6):
        y = np.asarray(layer(x, training=True))
        assert y.shape == (3, 4, 5, 2)
        found = [
            (t, left)
            for t in range(6)
            for left in range(6)
            if np.array_equal(x[:, t : t + 4, left : left + 5], y)
        ]
        assert len(found) == 1  # one window, the same for the whole batch (as Keras)
        starts.add(found[0])
    assert len(starts) > 1
    again = RandomCrop(4, 5, seed=3)
    first = np.asarray(RandomCrop(4, 5, seed=3)(x, training=True))
    np.testing.assert_array_equal(np.asarray(again(x, training=True)), first)


def test_random_crop_inference_is_the_centred_window_and_shapes():
    x = _images((2, 9, 10, 3), seed=1)
    y = np.asarray(RandomCrop(4, 6)(x, training=False))
    # Keras' start: the centred 6 x 10 window of the 4:6 ratio starts at (1, 0); the slice
    # from there has the target's size.
    np.testing.assert_array_equal(y, x[:, 1:5, 0:6])
    one = np.asarray(RandomCrop(4, 6, seed=1)(x[0], training=True))
    assert one.shape == (4, 6, 3)
    first = RandomCrop(4, 6, data_format="channels_first")(np.moveaxis(x, -1, 1), training=False)
    first = np.asarray(first)
    np.testing.assert_array_equal(first, np.moveaxis(y, -1, 1))
    assert RandomCrop(4, 6, data_format="channels_first").compute_output_shape(
        (None, 3, 9, 10)
    ) == (None, 3, 4, 6)
    as64 = RandomCrop(20, 3, dtype="float64")(x.astype("float64"), training=True)
    assert np.asarray(as64).dtype == np.float64 and np.asarray(as64).shape == (2, 20, 3, 3)
    with pytest.raises(ValueError, match="RandomCrop.*positive"):
        RandomCrop(0, 3)
    with pytest.raises(ValueError, match="expects images"):
        RandomCrop(2, 2)(np.ones((2, 3), "float32"))


def test_grayscale_invert_degeneration_recovered_per_image():
    x = _images(seed=2)
    grey = (x @ GREY)[..., None]
    y = np.asarray(RandomGrayscale(0.5, seed=1)(x, training=True))
    applied = [np.allclose(y[n], grey[n], atol=1e-3) for n in range(len(x))]
    for n, was in enumerate(applied):
        if not was:
            np.testing.assert_array_equal(y[n], x[n])
    y = np.asarray(RandomInvert(0.7, value_range=(0, 255), seed=2)(x, training=True))
    for n in range(len(x)):
        assert np.allclose(y[n], 255 - x[n]) or np.array_equal(y[n], x[n])
    y = np.asarray(RandomColorDegeneration((0.2, 0.6), seed=3)(x, training=True))
    for n in range(len(x)):
        f = ((y[n] - x[n]) / (grey[n] - x[n])).ravel()
        f = f[np.abs(grey[n] - x[n]).ravel() > 1]
        np.testing.assert_allclose(f, np.median(f), atol=1e-3)
        assert 0.2 - 1e-3 <= np.median(f) <= 0.6 + 1e-3
    for layer in (RandomGrayscale(1.0), RandomInvert(), RandomColorDegeneration(0.5)):
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)  # inference


def test_probabilities_are_respected_statistically():
    x = _images((400, 2, 2, 3), seed=4)
    y = np.asarray(RandomGrayscale(0.25, seed=5)(x, training=True))
    share = np.mean([not np.array_equal(y[n], x[n]) for n in range(len(x))])
    assert 0.18 < share < 0.32
    y = np.asarray(RandomInvert((0.5, 0.5), seed=6)(x, training=True))
    share = np.mean([not np.array_equal(y[n], x[n]) for n in range(len(x))])
    assert 0.42 < share < 0.58


def test_autocontrast_stretches_each_channel_and_keeps_flat_ones():
    x = _images((2, 5, 5, 3), seed=5) / 255.0 * 0.5 + 0.2
    x[1, ..., 2] = 0.4
    y = np.asarray(AutoContrast(value_range=(0, 1))(x))
    np.testing.assert_allclose(y[0].min(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(y[0].max(axis=(0, 1)), 1, atol=1e-6)
    np.testing.assert_array_equal(y[1, ..., 2], x[1, ..., 2])
    one = np.asarray(AutoContrast(value_range=(0, 1))(x[0]))
    np.testing.assert_allclose(one, y[0], atol=1e-6)
    with pytest.raises(ValueError, match="value_range"):
        AutoContrast(value_range=3)


def test_color_errors():
    with pytest.raises(ValueError, match="factor"):
        RandomGrayscale(1.5)
    with pytest.raises(ValueError, match="RandomInvert.*factor"):
        RandomInvert(2.0)
    with pytest.raises(ValueError, match="3\\s+channels"):
        RandomGrayscale(1.0)(np.ones((2, 4, 4, 1), "float32"), training=True)


def test_pipeline_applies_layers_in_order_and_round_trips():
    x = _images((2, 8, 9, 3), seed=6)
    pipe = Pipeline([RandomCrop(4, 5), RandomInvert((1.0, 1.0), seed=1)])
    np.testing.assert_array_equal(
        np.asarray(pipe(x, training=False)), np.asarray(RandomCrop(4, 5)(x, training=False))
    )
    trained = np.asarray(pipe(x, training=True))
    assert trained.shape == (2, 4, 5, 3)
    config = json.loads(json.dumps(pipe.get_config()))
    assert set(config) == {"layers", "name"}
    clone = Pipeline.from_config(config)
    assert [type(layer).__name__ for layer in clone.layers] == ["RandomCrop", "RandomInvert"]
    with pytest.raises(ValueError, match="list of layers"):
        Pipeline(RandomFlip())


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    x = np.load(root + "/x.npy", allow_pickle=False)
    cases = json.loads(open(root + "/cases.json").read())
    for name, (cls, kwargs, first) in cases.items():
        data = np.moveaxis(x, -1, 1) if first else x
        if cls == "Pipeline":
            layer = keras.layers.Pipeline.from_config(kwargs)
        else:
            layer = getattr(keras.layers, cls)(**kwargs)
        y = np.asarray(layer(data, training=True))
        np.save(root + f"/{name}.npy", y, allow_pickle=False)
    """
)

CASES = {
    "crop_tall": ("RandomCrop", {"height": 9, "width": 4, "seed": 1}, False),
    "crop_wide": ("RandomCrop", {"height": 3, "width": 10, "seed": 1}, False),
    "crop_same": ("RandomCrop", {"height": 6, "width": 7, "seed": 1}, False),
    "crop_first": ("RandomCrop", {"height": 8, "width": 5, "data_format": "channels_first"}, True),
    "grey": ("RandomGrayscale", {"factor": 1.0}, False),
    "grey_first": ("RandomGrayscale", {"factor": 1.0, "data_format": "channels_first"}, True),
    "invert": ("RandomInvert", {"factor": [1.0, 1.0], "value_range": [0, 255]}, False),
    "degenerate": ("RandomColorDegeneration", {"factor": [0.3, 0.3]}, False),
    "degenerate_clip": ("RandomColorDegeneration", {"factor": [-1.0, -1.0]}, False),
    "auto": ("AutoContrast", {"value_range": [0, 255]}, False),
    "auto_unit": ("AutoContrast", {"value_range": [0, 1]}, False),
}

MINE = {
    "RandomCrop": RandomCrop,
    "RandomGrayscale": RandomGrayscale,
    "RandomInvert": RandomInvert,
    "RandomColorDegeneration": RandomColorDegeneration,
    "AutoContrast": AutoContrast,
}


def test_deterministic_outputs_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    x = _images((2, 6, 7, 3), seed=7)
    x[1, :, :, 1] = 30.0  # a flat channel for AutoContrast
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    cases = dict(CASES)
    pipe = Pipeline([RandomInvert((1.0, 1.0)), RandomGrayscale(1.0)])
    cases["pipeline"] = ("Pipeline", pipe.get_config(), False)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    run_keras_side(KERAS_SIDE, tmp_path)
    for name, (cls, kwargs, first) in cases.items():
        data = np.moveaxis(x, -1, 1) if first else x
        layer = pipe if cls == "Pipeline" else MINE[cls](**kwargs)
        mine = np.asarray(layer(data, training=True))
        expected = np.load(tmp_path / f"{name}.npy")
        assert mine.shape == expected.shape, name
        np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=2e-3, err_msg=name)
