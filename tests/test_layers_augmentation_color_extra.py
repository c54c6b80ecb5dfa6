"""RandomHue, RandomSaturation, RandomColorJitter, Solarization, RandomPosterization,
RandomSharpness and Equalization: exact results for known draws (zero-width factors, or a
stand-in generator handing out chosen values) against independent NumPy / ``colorsys``
references and against Keras 3 itself (in a subprocess: the layers called with fixed
factors, and Keras' ``transform_images`` given the same draws); training vs inference,
seeds, configs, channels_first, float64, one image, errors and gradients."""

from __future__ import annotations

import colorsys
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite.core import Tensor
from dendrite.layers import (
    Equalization,
    RandomBrightness,
    RandomColorJitter,
    RandomContrast,
    RandomHue,
    RandomPosterization,
    RandomSaturation,
    RandomSharpness,
    Solarization,
)
from dendrite.layers.input_layer import Input
from dendrite.models.model import Model
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

EPS = 1e-7  # Keras' backend.epsilon()


def _images(shape=(3, 5, 6, 3), seed=0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(dtype)


def _run(layer, x, **kwargs) -> np.ndarray:
    return np.asarray(layer(x, **kwargs))


class _Draws:
    """Stands in for a layer's generator: hands out the given arrays in order and records
    what each draw asked for."""

    def __init__(self, *values) -> None:
        self.values = [np.asarray(v, dtype=np.float64) for v in values]
        self.asked: list[tuple] = []

    def uniform(self, low=0.0, high=1.0, size=None):
        self.asked.append(("uniform", low, high, size))
        return self.values.pop(0).reshape(size)

    def integers(self, low, high=None, size=None):
        self.asked.append(("integers", low, high, size))
        return self.values.pop(0).astype(np.int64).reshape(size)


def _fix(layer, *values) -> _Draws:
    draws = _Draws(*values)
    layer._generator = lambda: draws
    return draws


# --- independent references -------------------------------------------------------------------
def _per_pixel(x: np.ndarray, fn) -> np.ndarray:
    """``fn(n, r, g, b) -> (r, g, b)`` applied to every pixel of channels-last ``x``."""
    out = np.empty(x.shape, np.float64)
    for index in np.ndindex(*x.shape[:-1]):
        out[index] = fn(index[0], *(float(c) for c in x[index]))
    return out


def _hue_reference(x: np.ndarray, delta: np.ndarray, low=0.0, high=255.0) -> np.ndarray:
    def shift(n, r, g, b):
        h, s, v = colorsys.rgb_to_hsv(*((c - low) / (high - low) for c in (r, g, b)))
        h = h + delta[n]
        h = h - 1 if h > 1 else h + 1 if h < 0 else h
        rgb = np.clip(colorsys.hsv_to_rgb(h, s, v), 0, 1)
        return low + (high - low) * rgb

    return _per_pixel(x, shift)


def _saturation_reference(x: np.ndarray, k: np.ndarray, low=0.0, high=255.0) -> np.ndarray:
    def scale(n, r, g, b):
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        return colorsys.hsv_to_rgb(h, min(max(k[n] * s, low), high), v)

    return _per_pixel(x, scale)


def _blur(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    total = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    return (total + 4 * x) / 13  # eight neighbours 1/13, the centre 5/13


def _equalize_reference(x: np.ndarray, bins=256, low=0.0, high=255.0) -> np.ndarray:
    """Keras' rule per channel over the whole batch, written as loops over the bins."""
    out = np.empty(x.shape, np.float64)
    for c in range(x.shape[-1]):
        u = x[..., c] * (255.0 / (high - low)) - low * (255.0 / (high - low))
        index = np.clip(
            (u.astype(np.float32) * (bins - 1) / np.float32(255)).astype(int), 0, bins - 1
        )
        counts = np.array([np.sum(index == k) for k in range(bins)])
        if np.sum(counts > 0) <= 1:
            out[..., c] = x[..., c]
            continue
        cdf = np.cumsum(counts)
        first = cdf[cdf > 0][0]
        spread = max(cdf[-1] - first, 1)
        table = np.clip(np.round(np.float32((cdf - first) * 255) / np.float32(spread)), 0, 255)
        where = np.clip((u / 255.0) * (bins - 1), 0, bins - 1).astype(int)
        out[..., c] = table[where] * ((high - low) / 255.0) + low
    return out


# --- exact results for known draws ------------------------------------------------------------
def test_hue_rotations_match_colorsys():
    x = _images()
    half = _run(RandomHue((1.0, 1.0)), x)  # +-1/2: either way the opposite hue
    np.testing.assert_allclose(half, _hue_reference(x, np.full(3, 0.5)), atol=2e-3)
    np.testing.assert_allclose(_run(RandomHue(0.0), x), x, atol=2e-3)  # no shift
    layer = RandomHue(0.4, value_range=(0, 1))
    draws = _fix(layer, [0.9, 0.2, 0.7], [0.3, 0.8, 0.1])  # signs (> 0.5: minus), amounts
    y = _run(layer, x / 255)
    expected = _hue_reference(x / 255, np.array([-0.15, 0.4, -0.05]), 0.0, 1.0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert draws.asked == [("uniform", 0.0, 1.0, 3), ("uniform", 0.0, 0.4, 3)]


def test_saturation_scales_s_with_keras_rule():
    x = _images()
    grey = _run(RandomSaturation((0.0, 0.0)), x)  # k = 0: every channel is v = max(r, g, b)
    np.testing.assert_allclose(grey, np.repeat(x.max(-1, keepdims=True), 3, -1), rtol=1e-6)
    np.testing.assert_allclose(_run(RandomSaturation((0.5, 0.5)), x), x, rtol=1e-5, atol=1e-3)
    f = np.array([0.2, 0.75, 0.9])
    layer = RandomSaturation(0.9)
    draws = _fix(layer, f)
    k = f / (1 - f + EPS)  # 0.25, 3, 9: s' above 1 takes channels below 0 (Keras: no clip)
    np.testing.assert_allclose(_run(layer, x), _saturation_reference(x, k), rtol=1e-4, atol=1e-2)
    assert draws.asked == [("uniform", -0.9, 0.9, 3)]  # a number f: [-f, f], as Keras' code
    assert RandomSaturation(0.2).factor == (-0.2, 0.2)


def test_color_jitter_steps_in_order_and_single_steps_match_the_layers():
    x = _images()
    layer = RandomColorJitter(
        brightness_factor=(0.1, 0.1),
        contrast_factor=(-0.2, 0.2),  # drawn from [1.2, 1.2]
        saturation_factor=(0.7, 0.7),
        hue_factor=(1.0, 1.0),
    )
    y = np.clip(x.astype(np.float64) + 25.5, 0, 255)
    mean = y.mean(axis=(1, 2), keepdims=True)
    y = np.clip((y - mean) * 1.2 + mean, 0, 255)
    y = _saturation_reference(y, np.full(3, 0.7 / (0.3 + EPS)))
    y = _hue_reference(y, np.full(3, 0.5))
    np.testing.assert_allclose(_run(layer, x), y, rtol=1e-4, atol=2e-2)
    # one step alone draws what the layer of that step draws from the same seed
    pairs = [
        ({"brightness_factor": 0.3}, RandomBrightness(0.3, seed=4)),
        ({"contrast_factor": 0.4}, RandomContrast(0.4, seed=4)),
        ({"saturation_factor": 0.6}, RandomSaturation(0.6, seed=4)),
        ({"hue_factor": 0.5}, RandomHue(0.5, seed=4)),
    ]
    for kwargs, alone in pairs:
        jitter = RandomColorJitter(seed=4, **kwargs)
        np.testing.assert_allclose(_run(jitter, x), _run(alone, x), rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(_run(RandomColorJitter(seed=1), x), x)  # no step given


def test_solarization_inverts_above_the_threshold():
    x = _images()
    np.testing.assert_allclose(_run(Solarization(), x), 255 - x, atol=1e-4)
    unit = _run(Solarization(value_range=(0, 1)), x / 255)
    np.testing.assert_allclose(unit, 1 - x / 255, atol=1e-6)
    layer = Solarization(addition_factor=0.2, threshold_factor=(0.3, 0.6))
    additions, thresholds = np.array([0.0, 40.0, 10.0]), np.array([255.0, 100.0, 128.0])
    draws = _fix(layer, additions.reshape(3, 1, 1, 1), thresholds.reshape(3, 1, 1, 1))
    v = np.clip(x + additions[:, None, None, None], 0, 255)
    expected = np.where(v < thresholds[:, None, None, None], v, 255 - v)
    np.testing.assert_allclose(_run(layer, x), expected, atol=1e-4)
    # Keras scales only the upper bound by 255
    assert draws.asked == [
        ("uniform", 0.0, 0.2 * 255, (3, 1, 1, 1)),
        ("uniform", 0.3, 0.6 * 255, (3, 1, 1, 1)),
    ]


def test_solarization_offset_range_is_keras_lower_bound_unscaled():
    x = _images((200, 2, 2, 3), seed=3) * 0.4  # room for the offset: nothing clips
    y = _run(Solarization(addition_factor=(0.5, 0.5), seed=2), x)  # threshold 0: all inverted
    offsets = (255 - y - x).reshape(200, -1)
    np.testing.assert_allclose(offsets, offsets[:, :1].repeat(12, 1), atol=1e-3)  # per image
    assert 0.5 - 1e-3 <= offsets.min() and offsets.max() <= 127.5 + 1e-3
    assert offsets.max() > 100  # the range [0.5, 127.5], not a fixed 127.5


def test_posterization_clears_low_bits():
    x = _images()
    expected = (np.floor(x).astype(np.uint8) >> 5 << 5).astype(np.float32)
    np.testing.assert_array_equal(_run(RandomPosterization((3, 3)), x), expected)
    unit = _run(RandomPosterization((3, 3), value_range=(0, 1)), x / 255)
    np.testing.assert_allclose(unit, (np.floor(x / 255 * 255) // 32 * 32) / 255, atol=1e-6)
    np.testing.assert_array_equal(_run(RandomPosterization((8, 8)), x), np.floor(x))
    many = _images((60, 3, 3, 3), seed=4)
    y = _run(RandomPosterization(4, seed=1), many)  # (1, 4): 1 to 3 bits, never 4
    kept = set()
    for n in range(len(many)):
        for bits in range(1, 9):
            shift = 8 - bits
            if np.array_equal(y[n], (np.floor(many[n]).astype(np.uint8) >> shift << shift)):
                kept.add(bits)
                break
        else:
            pytest.fail(f"image {n} is no posterization")
    assert kept == {1, 2, 3}


def test_sharpness_blends_with_the_blur():
    x = _images()
    np.testing.assert_allclose(_run(RandomSharpness((0.0, 0.0)), x), _blur(x), rtol=1e-5)
    np.testing.assert_array_equal(_run(RandomSharpness((0.5, 0.5)), x), x)
    sharp = np.clip(2 * x - _blur(x), 0, 255)
    np.testing.assert_allclose(_run(RandomSharpness((1.0, 1.0)), x), sharp, atol=1e-3)
    layer = RandomSharpness(0.8)
    draws = _fix(layer, [0.1, 0.5, 0.8])
    f = np.array([0.1, 0.5, 0.8])[:, None, None, None]
    expected = np.clip(x + (1 - 2 * f) * (_blur(x) - x), 0, 255)
    np.testing.assert_allclose(_run(layer, x), expected, atol=1e-3)
    assert draws.asked == [("uniform", 0.0, 0.8, 3)]


def test_equalization_is_keras_rule_over_the_batch():
    x = np.floor(_images((3, 6, 5, 3), seed=5) * 0.5 + 40)  # integer values: edge indices
    x[..., 2] = 77.0  # one value: kept
    y = _run(Equalization(), x)
    np.testing.assert_array_equal(y, _equalize_reference(x))
    np.testing.assert_array_equal(y[..., 2], x[..., 2])
    assert y[..., 0].min() == 0 and y[..., 0].max() == 255  # stretched over [0, 255]
    coarse = _run(Equalization(bins=16, value_range=(0, 1)), x / 255)
    np.testing.assert_allclose(coarse, _equalize_reference(x / 255, 16, 0.0, 1.0), atol=1e-6)
    # one histogram for the whole batch (Keras'), not one per image
    alone = _run(Equalization(), x[1])
    assert not np.array_equal(alone, y[1])
    np.testing.assert_array_equal(alone, _equalize_reference(x[1:2])[0])


# --- training, seeds, formats, dtypes ---------------------------------------------------------
def _all_layers(seed=None) -> list:
    return [
        RandomHue(0.5, seed=seed),
        RandomSaturation((0.2, 0.9), seed=seed),
        RandomColorJitter(
            brightness_factor=0.2,
            contrast_factor=0.3,
            saturation_factor=(0.3, 0.7),
            hue_factor=0.3,
            seed=seed,
        ),
        Solarization(0.3, (0.2, 0.8), seed=seed),
        RandomPosterization((2, 7), seed=seed),
        RandomSharpness((0.0, 1.0), seed=seed),
    ]


def test_inference_returns_the_input_and_a_direct_call_augments():
    x = _images()
    for layer in [*_all_layers(seed=3), Equalization()]:
        name = type(layer).__name__
        np.testing.assert_array_equal(_run(layer, x, training=False), x, err_msg=name)
        assert not np.allclose(_run(layer, x), x, atol=1e-2), name  # training=True default
        inputs = Input((5, 6, 3))
        model = Model(inputs, type(layer).from_config(layer.get_config())(inputs))
        np.testing.assert_array_equal(model.predict(x, verbose=0), x, err_msg=name)


def test_seeds_reproduce_and_calls_differ():
    x = _images()
    layers = zip(_all_layers(seed=7), _all_layers(seed=7), _all_layers(seed=8))
    for first, second, third in layers:
        name = type(first).__name__
        a, b = _run(first, x), _run(second, x)
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert not np.array_equal(_run(third, x), a), name  # another seed, other draws
        again = _run(first, x)
        assert not np.array_equal(again, a), name  # the next call draws anew
        np.testing.assert_array_equal(_run(second, x), again, err_msg=name)


def test_config_round_trip_through_json():
    x = _images()
    for layer in [*_all_layers(seed=5), Equalization(value_range=(0, 1), bins=32)]:
        config = json.loads(json.dumps(layer.get_config()))
        clone = type(layer).from_config(config)
        assert json.loads(json.dumps(clone.get_config())) == config
        data = x / 255 if isinstance(layer, Equalization) else x
        np.testing.assert_array_equal(_run(clone, data), _run(layer, data))  # same seed
    jitter = RandomColorJitter(
        value_range=(0, 1), hue_factor=(0.1, 0.2), data_format="channels_first"
    )
    config = jitter.get_config()
    assert config["hue_factor"] == [0.1, 0.2] and config["brightness_factor"] is None
    assert config["value_range"] == [0.0, 1.0] and config["data_format"] == "channels_first"
    assert RandomHue(0.3).get_config()["factor"] == [0.0, 0.3]
    assert RandomPosterization(5).get_config()["factor"] == [1.0, 5.0]
    assert Solarization(0.4).get_config()["addition_factor"] == [0.0, 0.4]


def test_channels_first_single_image_and_float64():
    x = _images()
    first = np.moveaxis(x, -1, 1)
    cases = [
        lambda **k: RandomHue(0.5, seed=2, **k),
        lambda **k: RandomSaturation((0.1, 0.9), seed=2, **k),
        lambda **k: RandomColorJitter(
            brightness_factor=0.1,
            contrast_factor=0.2,
            saturation_factor=0.5,
            hue_factor=0.2,
            seed=2,
            **k,
        ),
        lambda **k: Solarization(0.3, 0.5, seed=2, **k),
        lambda **k: RandomPosterization((3, 6), seed=2, **k),
        lambda **k: RandomSharpness(0.9, seed=2, **k),
        lambda **k: Equalization(**k),
    ]
    for make in cases:
        last = _run(make(), x)
        name = type(make()).__name__
        cf = _run(make(data_format="channels_first"), first)
        np.testing.assert_allclose(np.moveaxis(cf, 1, -1), last, atol=1e-3, err_msg=name)
        as64 = _run(make(dtype="float64"), x.astype(np.float64))
        assert as64.dtype == np.float64, name
        np.testing.assert_allclose(as64, last, atol=5e-3, err_msg=name)
        one = _run(make(), x[0])
        assert one.shape == x.shape[1:], name
        np.testing.assert_allclose(one, _run(make(), x[:1])[0], atol=1e-4, err_msg=name)
        one_first = _run(make(data_format="channels_first"), first[0])
        np.testing.assert_allclose(np.moveaxis(one_first, 0, -1), one, atol=1e-3, err_msg=name)
    ints = _run(RandomPosterization((4, 4)), x.astype(np.uint8))  # integer images: float
    assert ints.dtype == np.float32
    np.testing.assert_array_equal(ints, (x.astype(np.uint8) >> 4 << 4).astype(np.float32))


def test_integer_images_at_inference_keep_or_lose_their_dtype_as_keras():
    """Keras 3.15 casts to float32 before looking at ``training`` in Solarization and
    RandomSharpness, so uint8 in is float32 out at inference too (values unchanged); the
    other color layers return integer images as they are."""
    x = _images((2, 5, 6, 3), seed=9).astype(np.uint8)
    for layer in [Solarization(0.3, 0.5, seed=1), RandomSharpness(0.4, seed=1)]:
        name = type(layer).__name__
        for images in (x, x[0], np.moveaxis(x, -1, 1)):
            kwargs = {"data_format": "channels_first"} if images.shape[1] == 3 else {}
            out = _run(type(layer)(**{**layer.get_config(), **kwargs}), images, training=False)
            assert out.dtype == np.float32, name
            np.testing.assert_array_equal(out, images.astype(np.float32), err_msg=name)
        assert _run(layer, x.astype(np.int32), training=False).dtype == np.float32, name
        assert _run(layer, x).dtype == np.float32, name
    kept = [RandomHue(0.5), RandomColorJitter(hue_factor=0.2), RandomPosterization(4)]
    for layer in [*kept, RandomSaturation(0.5), Equalization()]:
        out = _run(layer, x, training=False)
        assert out.dtype == np.uint8, type(layer).__name__
        np.testing.assert_array_equal(out, x)


def test_output_shapes():
    for layer in [*_all_layers(), Equalization()]:
        assert layer.compute_output_shape((None, 5, 6, 3)) == (None, 5, 6, 3)


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: RandomHue(1.5), r"RandomHue: `factor`.*\[0.0, 1.0\].*factor=1.5"),
        (lambda: RandomHue("a"), r"RandomHue: `factor`.*factor='a'"),
        (lambda: RandomSaturation((2, 3)), r"RandomSaturation: `factor`.*\[-1.0, 1.0\]"),
        (lambda: RandomSharpness(-0.2), r"RandomSharpness: `factor`.*factor=-0.2"),
        (lambda: RandomPosterization(9), r"RandomPosterization: `factor`.*\[1.0, 8.0\]"),
        (lambda: RandomPosterization(0), r"RandomPosterization: `factor`.*factor=0"),
        (lambda: Solarization(1.5), r"Solarization: `addition_factor`.*\[0, 1\].*=1.5"),
        (lambda: Solarization(0.1, [0.2]), r"Solarization: `threshold_factor`.*=\[0.2\]"),
        (lambda: Solarization(0.1, (0.2, 1.2)), r"Solarization: `threshold_factor`"),
        (lambda: RandomColorJitter(brightness_factor=2), r"RandomColorJitter: `brightness"),
        (lambda: RandomColorJitter(contrast_factor=(2, 3)), r"`contrast_factor`.*\[0.0, 1.0\]"),
        (lambda: RandomColorJitter(hue_factor="x"), r"`hue_factor`.*received hue_factor='x'"),
        (lambda: RandomHue(0.1, value_range=3), r"RandomHue: `value_range`.*value_range=3"),
        (lambda: Equalization(value_range=(1,)), r"Equalization: `value_range`"),
        (lambda: Equalization(bins=0), r"Equalization: `bins`.*bins=0"),
        (lambda: RandomSharpness(0.1, data_format="nchw"), r"data_format.*'nchw'"),
    ],
)
def test_bad_arguments_raise(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_bad_inputs_name_the_layer_and_shape():
    four = np.ones((2, 4, 4, 4), "float32")
    for layer in (RandomHue(0.2), RandomSaturation(0.2), RandomColorJitter(hue_factor=0.1)):
        with pytest.raises(ValueError, match=rf"'{layer.name}'.*3\s+channels.*\(2, 4, 4, 4\)"):
            layer(four)
    first = RandomSaturation(0.2, data_format="channels_first")
    with pytest.raises(ValueError, match=r"3\s+channels \(axis -3\).*\(4, 5, 6\)"):
        first(np.ones((4, 5, 6), "float32"))
    for layer in [*_all_layers(), Equalization()]:
        with pytest.raises(ValueError, match=rf"'{layer.name}'.*received \(2, 3\)"):
            layer(np.ones((2, 3), "float32"))
        with pytest.raises(ValueError, match=rf"'{layer.name}'.*received \(1, 2, 3, 4, 3\)"):
            layer(np.ones((1, 2, 3, 4, 3), "float32"))


# --- gradients --------------------------------------------------------------------------------
def test_gradients_match_finite_differences_float64():
    x = np.random.default_rng(8).uniform(20, 235, (2, 4, 5, 3))
    fixed = {
        "RandomHue": lambda t: RandomHue(0.6, seed=3, dtype="float64")(t),
        "RandomSaturation": lambda t: RandomSaturation((0.3, 0.7), seed=3, dtype="float64")(t),
        "RandomColorJitter": lambda t: RandomColorJitter(
            brightness_factor=0.05,
            contrast_factor=0.1,
            saturation_factor=(0.4, 0.6),
            hue_factor=0.3,
            seed=3,
            dtype="float64",
        )(t),
        "Solarization": lambda t: Solarization(0.1, (0.3, 0.6), seed=3, dtype="float64")(t),
        "RandomSharpness": lambda t: RandomSharpness((0.3, 0.7), seed=3, dtype="float64")(t),
    }
    for name, fn in fixed.items():
        assert gradcheck(fn, x, name=name, atol=1e-5, rtol=1e-4)
        assert gradcheck(fn, x, mode="elementwise", name=name, atol=1e-5, rtol=1e-4)


def test_piecewise_constant_layers_pass_no_gradient():
    x = Tensor(_images((2, 4, 4, 3)).astype(np.float64), requires_grad=True)
    out = RandomPosterization((3, 3))(x)
    assert not out.requires_grad
    flat = _images((2, 4, 4, 3)).astype(np.float64)
    flat[..., 1] = 9.0
    t = Tensor(flat, requires_grad=True)
    y = Equalization()(t)
    (y * Tensor(np.ones(y.shape))).sum().backward()
    np.testing.assert_allclose(t.grad[..., 1], 1.0)  # the unchanged channel
    np.testing.assert_array_equal(t.grad[..., 0], 0.0)


# --- against Keras 3 --------------------------------------------------------------------------
KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    keys = {}
    for name, case in cases.items():
        data = np.load(root + "/" + case["input"] + ".npy", allow_pickle=False)
        if case["first"]:
            data = np.moveaxis(data, -1, 1)
        layer = getattr(keras.layers, case["cls"])(**case["kwargs"])
        keys[case["cls"]] = sorted(layer.get_config())
        if case.get("transform"):
            given = {
                key: keras.ops.convert_to_tensor(np.asarray(value, dtype=dtype))
                for key, (value, dtype) in case["transform"].items()
            }
            y = layer.transform_images(keras.ops.convert_to_tensor(data), given, training=True)
        else:
            y = layer(data, training=case.get("training", True))
        np.save(root + f"/{name}.npy", keras.ops.convert_to_numpy(y), allow_pickle=False)
    json.dump(keys, open(root + "/keys.json", "w"))
    configs = json.loads(open(root + "/configs.json").read())
    read = {}
    for name, config in configs.items():
        layer = getattr(keras.layers, config.pop("class"))
        read[name] = {
            k: v for k, v in layer.from_config(config).get_config().items()
            if k not in ("dtype", "name", "trainable")
        }
    json.dump(read, open(root + "/read.json", "w"), default=list)
    """
)

JITTER = {
    "brightness_factor": [0.1, 0.1],
    "contrast_factor": [-0.2, 0.2],
    "saturation_factor": [0.7, 0.7],
    "hue_factor": [1.0, 1.0],
}
HUE_DELTA = [-0.15, 0.4, 0.05]
SATURATION_F = [0.2, 0.75, 0.5]
ADDITIONS = [0.0, 40.0, 10.0]
THRESHOLDS = [255.0, 100.0, 128.0]
SHARPNESS_F = [0.1, 0.5, 0.8]
SHIFTS = [5, 2, 7]


def _keras_cases() -> dict:
    def case(cls, kwargs, data="x", first=False, transform=None, training=True):
        return {
            "cls": cls,
            "kwargs": kwargs,
            "input": data,
            "first": first,
            "transform": transform,
            "training": training,
        }

    k = [f / (1 - f + EPS) for f in SATURATION_F]
    four = lambda v: [[[[a]]] for a in v]  # noqa: E731
    return {
        "hue_half": case("RandomHue", {"factor": [1.0, 1.0]}),
        "hue_zero": case("RandomHue", {"factor": 0.0}),
        "hue_unit_first": case(
            "RandomHue",
            {"factor": [1.0, 1.0], "value_range": [0, 1], "data_format": "channels_first"},
            "unit",
            True,
        ),
        "hue_draws": case(
            "RandomHue", {"factor": 0.5}, transform={"factor": (HUE_DELTA, "float32")}
        ),
        "saturation_grey": case("RandomSaturation", {"factor": [0.0, 0.0]}),
        "saturation_fixed": case("RandomSaturation", {"factor": [0.8, 0.8]}),
        "saturation_first": case(
            "RandomSaturation",
            {"factor": [0.3, 0.3], "data_format": "channels_first"},
            first=True,
        ),
        "saturation_draws": case(
            "RandomSaturation", {"factor": 0.9}, transform={"factor": (k, "float32")}
        ),
        "jitter": case("RandomColorJitter", JITTER),
        "jitter_unit": case("RandomColorJitter", {**JITTER, "value_range": [0, 1]}, "unit"),
        "solarize": case("Solarization", {}),
        "solarize_unit": case("Solarization", {"value_range": [0, 1]}, "unit"),
        "solarize_draws": case(
            "Solarization",
            {"addition_factor": 0.2, "threshold_factor": 0.6},
            transform={
                "additions": (four(ADDITIONS), "float32"),
                "thresholds": (four(THRESHOLDS), "float32"),
            },
        ),
        "posterize": case("RandomPosterization", {"factor": [3, 3]}),
        "posterize_unit": case(
            "RandomPosterization", {"factor": [5, 5], "value_range": [0, 1]}, "unit"
        ),
        "posterize_draws": case(
            "RandomPosterization", {"factor": 7}, transform={"shift_factor": (SHIFTS, "uint8")}
        ),
        "sharp_blur": case("RandomSharpness", {"factor": [0.0, 0.0]}),
        "sharp_more": case("RandomSharpness", {"factor": [0.9, 0.9]}),
        "sharp_first": case(
            "RandomSharpness",
            {"factor": [1.0, 1.0], "data_format": "channels_first"},
            first=True,
        ),
        "sharp_draws": case(
            "RandomSharpness", {"factor": 0.8}, transform={"factor": (SHARPNESS_F, "float32")}
        ),
        "equalize": case("Equalization", {}, "ints"),
        "equalize_float": case("Equalization", {}),
        "equalize_bins": case("Equalization", {"bins": 32, "value_range": [0, 1]}, "unit"),
        "equalize_first": case("Equalization", {"data_format": "channels_first"}, "ints", True),
        "equalize_inference": case("Equalization", {}, "ints", training=False),
        "hue_inference": case("RandomHue", {"factor": 0.5}, training=False),
        "solarize_inference": case("Solarization", {}, training=False),
        "sharp_inference": case("RandomSharpness", {"factor": 0.2}, training=False),
    }


def _mine(name: str, case: dict, data: np.ndarray) -> np.ndarray:
    cls = {
        "RandomHue": RandomHue,
        "RandomSaturation": RandomSaturation,
        "RandomColorJitter": RandomColorJitter,
        "Solarization": Solarization,
        "RandomPosterization": RandomPosterization,
        "RandomSharpness": RandomSharpness,
        "Equalization": Equalization,
    }[case["cls"]]
    layer = cls(**case["kwargs"])
    if name == "hue_draws":
        _fix(layer, [0.9 if d < 0 else 0.1 for d in HUE_DELTA], [2 * abs(d) for d in HUE_DELTA])
    elif name == "saturation_draws":
        _fix(layer, SATURATION_F)
    elif name == "solarize_draws":
        _fix(layer, ADDITIONS, THRESHOLDS)
    elif name == "posterize_draws":
        _fix(layer, [8 - s for s in SHIFTS])
    elif name == "sharp_draws":
        _fix(layer, SHARPNESS_F)
    return _run(layer, data, training=case["training"])


def test_outputs_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    x = _images(seed=11)
    inputs = {"x": x, "unit": x / 255, "ints": np.floor(x * 0.6 + 30).astype(np.float32)}
    inputs["ints"][2, ..., 1] = 50.0  # a channel with one value in one image only
    for key, value in inputs.items():
        np.save(tmp_path / f"{key}.npy", value.astype(np.float32), allow_pickle=False)
    cases = _keras_cases()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    configs = {
        "hue": {"class": "RandomHue", **RandomHue((0.1, 0.3), value_range=(0, 1)).get_config()},
        "saturation": {"class": "RandomSaturation", **RandomSaturation(0.4).get_config()},
        "jitter": {
            "class": "RandomColorJitter",
            **RandomColorJitter(brightness_factor=0.2, hue_factor=0.1, seed=3).get_config(),
        },
        "solarize": {"class": "Solarization", **Solarization(0.1, (0.2, 0.4)).get_config()},
        "posterize": {"class": "RandomPosterization", **RandomPosterization(4).get_config()},
        "sharp": {"class": "RandomSharpness", **RandomSharpness(0.3).get_config()},
        "equalize": {"class": "Equalization", **Equalization(bins=64).get_config()},
    }
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    run_keras_side(KERAS_SIDE, tmp_path)
    for name, case in cases.items():
        data = inputs[case["input"]].astype(np.float32)
        if case["first"]:
            data = np.moveaxis(data, -1, 1)
        mine = _mine(name, case, data)
        expected = np.load(tmp_path / f"{name}.npy")
        assert mine.shape == expected.shape, name
        scale = 1.0 if case["input"] == "unit" else 255.0
        if case["cls"] in ("RandomPosterization", "Equalization"):
            np.testing.assert_array_equal(mine, expected, err_msg=name)
        else:
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=name)
    keys = json.loads((tmp_path / "keys.json").read_text())
    for cls, names in keys.items():
        mine = sorted(_mine_config(cls))
        assert mine == names, cls
    read = json.loads((tmp_path / "read.json").read_text())
    assert read["hue"]["factor"] == [0.1, 0.3] and read["hue"]["value_range"] == [0, 1]
    assert read["saturation"]["factor"] == [-0.4, 0.4]
    assert read["jitter"]["brightness_factor"] == 0.2 and read["jitter"]["seed"] == 3
    assert read["solarize"]["threshold_factor"] == [0.2, 0.4]
    assert read["posterize"]["factor"] == [1, 4]
    assert read["sharp"]["factor"] == [0, 0.3]
    assert read["equalize"]["bins"] == 64


def _mine_config(cls: str) -> list:
    layer = {
        "RandomHue": lambda: RandomHue(0.1),
        "RandomSaturation": lambda: RandomSaturation(0.1),
        "RandomColorJitter": lambda: RandomColorJitter(),
        "Solarization": lambda: Solarization(),
        "RandomPosterization": lambda: RandomPosterization(3),
        "RandomSharpness": lambda: RandomSharpness(0.1),
        "Equalization": lambda: Equalization(),
    }[cls]()
    return list(layer.get_config())


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.RandomInvert(),
        lambda: keras.layers.RandomGrayscale(),
        lambda: keras.layers.RandomColorDegeneration(0.2),
        lambda: keras.layers.CenterCrop(2, 2),
        lambda: keras.layers.RandomCrop(2, 2),
        lambda: keras.layers.RandomHue(0.2),
        lambda: keras.layers.RandomErasing(),
    ],
)
def test_data_format_none_is_the_configured_one(make):
    """As Keras: an image layer's data_format=None follows keras.config, in every family."""
    keras.config.set_image_data_format("channels_first")
    try:
        assert make().data_format == "channels_first"
    finally:
        keras.config.set_image_data_format("channels_last")
    assert make().data_format == "channels_last"
