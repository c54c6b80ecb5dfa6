"""RandomErasing, RandomGaussianBlur, RandomShear, RandomPerspective and
RandomElasticTransform: exact results for scripted draws (boxes, impulses, whole-pixel
shears, halvings, translations), against Keras 3 itself in a subprocess on the same images
and the same draws (Keras' random functions replaced by ones that replay them), training
vs inference, seeds, configs, channels_first, float64, one image, errors and gradients."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite.layers.augmentation_geometry_extra import (
    RandomElasticTransform,
    RandomErasing,
    RandomGaussianBlur,
    RandomPerspective,
    RandomShear,
)
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

MINE = {
    "RandomErasing": RandomErasing,
    "RandomGaussianBlur": RandomGaussianBlur,
    "RandomShear": RandomShear,
    "RandomPerspective": RandomPerspective,
    "RandomElasticTransform": RandomElasticTransform,
}


def _images(shape=(3, 7, 8, 3), seed=0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(dtype)


class Scripted:
    """A stand-in for a layer's generator that replays given unit draws: uniform ``u`` in
    [0, 1) (scaled to the asked range), standard normals, Beta values, permutations."""

    def __init__(self, draws: list) -> None:
        self.draws = list(draws)

    def _next(self, kind: str, shape) -> np.ndarray:
        got, value = self.draws.pop(0)
        shape = (
            tuple(shape)
            if isinstance(shape, (tuple, list))
            else (() if shape is None else (shape,))
        )
        assert got == kind and value.shape == shape, (got, kind, value.shape, shape)
        return value

    def uniform(self, low=0.0, high=1.0, size=None):
        return low + (high - low) * self._next("uniform", size)

    def standard_normal(self, size=None):
        return self._next("normal", size)

    def beta(self, a, b, size=None):
        return self._next("beta", size)

    def permutation(self, n):
        return self._next("perm", (n,))


def _scripted(layer, draws: list):
    """``layer`` drawing ``draws`` on its next call."""
    script = Scripted(draws)
    layer._generator = lambda: script
    return script


def _fixed(layer, seed: int = 7):
    """``layer`` drawing the same values on every call (for finite differences)."""
    layer._generator = lambda: np.random.default_rng(seed)
    return layer


# --- exact results for scripted draws -------------------------------------------------------
def test_erasing_box_from_the_draws():
    x = _images((2, 10, 10, 2))
    layer = RandomErasing(factor=(0.5, 0.5), scale=(0.16, 0.16), fill_value=7.0)
    # sides sqrt(0.16) * 10 = 4; starts 0.5 * (10 - 4) = 3 (x) and 0.25 * 6 = 1.5 (y);
    # image 1 is not erased (its threshold 0.9 is above the probability 0.5)
    _scripted(
        layer,
        [
            ("uniform", np.zeros((2, 2))),
            ("uniform", np.array([0.5, 0.5])),
            ("uniform", np.array([0.25, 0.25])),
            ("uniform", np.array([0.3, 0.3])),
            ("uniform", np.array([0.1, 0.9])),
        ],
    )
    y = np.asarray(layer(x))
    expected = x.copy()
    expected[0, 2:6, 3:7] = 7.0  # rows 1.5 <= y < 5.5, columns 3 <= x < 7
    np.testing.assert_array_equal(y, expected)


def test_erasing_everything_with_clipped_fills():
    x = _images((2, 5, 6, 3), seed=1)
    whole = dict(factor=(1.0, 1.0), scale=(1.0, 1.0))
    y = np.asarray(RandomErasing(**whole, fill_value=300.0, seed=1)(x))
    np.testing.assert_array_equal(y, np.full_like(x, 255.0))  # clipped to value_range
    y = np.asarray(RandomErasing(**whole, fill_value=[10, -5, 20], seed=1)(x))
    np.testing.assert_array_equal(y, np.broadcast_to([10.0, 0.0, 20.0], x.shape))
    noisy = np.asarray(RandomErasing(**whole, value_range=(0, 1), seed=2)(x / 255))
    assert noisy.min() >= 0 and noisy.max() <= 1 and len(np.unique(noisy)) > 10
    assert np.mean(noisy == 0) > 0.3  # half the N(0, 1) noise is negative: clipped to 0
    none = RandomErasing(factor=0.0, fill_value=0.0, seed=3)(x)
    np.testing.assert_array_equal(np.asarray(none), x)


def test_blur_of_an_impulse_is_the_kernel():
    x = np.zeros((2, 7, 7, 1), "float32")
    x[:, 3, 3] = 1.0
    layer = RandomGaussianBlur(factor=(1.0, 1.0), kernel_size=5, sigma=(0.5, 1.0))
    _scripted(
        layer,
        [
            ("uniform", np.zeros(2)),
            ("uniform", np.array([0.2, 0.6])),
            ("uniform", np.array([0.4, 0.9])),  # sigma_x = 0.7, sigma_y = 0.95
        ],
    )
    y = np.asarray(layer(x, training=True))[..., 0]

    def g(s):
        t = np.arange(5) - 2.0
        k = np.exp(-0.5 * (t / (s + 1e-6)) ** 2)
        return k / k.sum()

    kernel = np.outer(g(0.95), g(0.7))
    for n in range(2):
        np.testing.assert_allclose(y[n, 1:6, 1:6], kernel, atol=1e-7)
        assert y[n].sum() == pytest.approx(1.0, abs=1e-6)
    # kernel_size (width, height) = (5, 3): five taps along x, three along y
    layer = RandomGaussianBlur(factor=(1.0, 1.0), kernel_size=(5, 3), sigma=(1.0, 1.0))
    _scripted(layer, [("uniform", np.zeros(2))] * 3)
    y = np.asarray(layer(x))[0, ..., 0]
    t3, t5 = np.arange(3) - 1.0, np.arange(5) - 2.0
    g3, g5 = np.exp(-0.5 * t3**2 / (1 + 1e-6) ** 2), np.exp(-0.5 * t5**2 / (1 + 1e-6) ** 2)
    expected = np.zeros((7, 7))
    expected[2:5, 1:6] = np.outer(g3 / g3.sum(), g5 / g5.sum())
    np.testing.assert_allclose(y, expected, atol=1e-7)


def test_blur_pads_with_zeros_clips_and_skips_unchosen_images():
    x = np.full((2, 6, 6, 1), 200.0, "float32")
    layer = RandomGaussianBlur(factor=(0.5, 0.5), sigma=(1.0, 1.0), value_range=(0, 150))
    _scripted(
        layer,
        [("uniform", np.zeros(2)), ("uniform", np.array([0.1, 0.8])), ("uniform", np.zeros(2))],
    )
    y = np.asarray(layer(x))
    g = np.exp(-0.5 * (np.arange(3) - 1.0) ** 2 / (1 + 1e-6) ** 2)
    edge = 200.0 * (g[1:].sum() / g.sum())  # one tap falls on the zero padding
    np.testing.assert_allclose(y[0, 2:4, 0, 0], min(edge, 150.0), rtol=1e-6)
    np.testing.assert_allclose(y[0, 0, 0, 0], min(edge * edge / 200.0, 150.0), rtol=1e-6)
    np.testing.assert_array_equal(y[1], np.full((6, 6, 1), 150.0))  # only clipped
    # the interior of a flat image is unchanged by a normalised kernel
    y = np.asarray(RandomGaussianBlur(factor=(1, 1), kernel_size=3, value_range=(0, 255))(x))
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], 200.0, rtol=1e-6)


def test_a_whole_pixel_shear_shifts_each_row():
    x = _images((2, 5, 6, 2), seed=2)
    layer = RandomShear(x_factor=(1.0, 1.0), fill_mode="wrap")
    _scripted(
        layer,
        [
            ("uniform", np.array([[0.2], [0.8]])),  # image 1: the sign is flipped
            ("uniform", np.zeros((2, 1))),  # y_factor (0, 0): no vertical shear
            ("uniform", np.zeros((2, 1))),
        ],
    )
    y = np.asarray(layer(x))
    for row in range(5):  # output (y, x) reads x + y (image 0), x - y (image 1)
        np.testing.assert_allclose(y[0, row], np.roll(x[0, row], -row, axis=0), atol=1e-4)
        np.testing.assert_allclose(y[1, row], np.roll(x[1, row], row, axis=0), atol=1e-4)
    layer = RandomShear(y_factor=(1.0, 1.0), fill_mode="constant", fill_value=-1.0)
    _scripted(layer, [("uniform", np.full((2, 1), 0.1))] + [("uniform", np.zeros((2, 1)))] * 2)
    y = np.asarray(layer(x))
    for column in range(6):
        shifted = np.full((5, 2), -1.0)
        shifted[: max(5 - column, 0)] = x[0, column:, column]
        np.testing.assert_allclose(y[0, :, column], shifted, atol=1e-4)


def test_perspective_halving_and_identity():
    x = _images((2, 7, 9, 1), seed=3)
    layer = RandomPerspective(factor=(1.0, 1.0), scale=1.0, fill_value=-1.0)
    shifts = np.full((2, 4, 2), 0.0)  # unit draw 0 -> shift -scale / 2 = -0.5
    _scripted(
        layer,
        [("uniform", np.zeros(2)), ("uniform", np.zeros(2)), ("uniform", shifts)],
    )
    y = np.asarray(layer(x))
    # every corner d = c (1 - 0.5): output (y, x) reads the input at (2 y, 2 x)
    expected = np.full_like(x, -1.0)
    expected[:, :4, :5] = x[:, ::2, ::2]
    np.testing.assert_allclose(y, expected, atol=1e-4)
    for layer in (RandomPerspective(scale=0.0, seed=1), RandomPerspective(factor=0.0, seed=1)):
        np.testing.assert_allclose(np.asarray(layer(x)), x, atol=1e-4)


def test_elastic_constant_fields_translate_the_interior():
    x = _images((1, 20, 20, 1), seed=4)
    layer = RandomElasticTransform(factor=(1.0, 1.0), scale=(1.0, 1.0), fill_mode="nearest")
    # d = 1: alpha = 2, sigma = 1 (7 taps); fields of 0.5 sigma give, away from the zero
    # padding, a displacement of alpha * 0.5 * sigma = 1 pixel along both axes
    _scripted(
        layer,
        [
            ("uniform", np.zeros(1)),
            ("uniform", np.zeros(1)),
            ("uniform", np.zeros(())),
            ("normal", np.full((1, 20, 20), 0.5)),
            ("normal", np.full((1, 20, 20), 0.5)),
        ],
    )
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y[0, 3:16, 3:16], x[0, 4:17, 4:17], atol=1e-3)
    # no distortion: the input comes back unchanged, not even clipped
    for kwargs in ({"scale": 0.0}, {"factor": 0.0}):
        np.testing.assert_array_equal(
            np.asarray(RandomElasticTransform(value_range=(0, 1), **kwargs)(x)), x
        )
    # drawn but not chosen: the input, clipped
    layer = RandomElasticTransform(factor=(0.5, 0.5), value_range=(10, 100), seed=1)
    _scripted(
        layer,
        [
            ("uniform", np.zeros(1)),
            ("uniform", np.full(1, 0.9)),
            ("uniform", np.zeros(())),
            ("normal", np.ones((1, 20, 20))),
            ("normal", np.ones((1, 20, 20))),
        ],
    )
    np.testing.assert_array_equal(np.asarray(layer(x)), np.clip(x, 10, 100))


def test_elastic_mirror_fill_reflects_about_the_edge_pixels():
    x = _images((1, 12, 12, 1), seed=5)
    layer = RandomElasticTransform(
        factor=(1.0, 1.0), scale=(1.0, 1.0), fill_mode="mirror", interpolation="nearest"
    )
    # d = 1: alpha = 1.2, sigma = 0.6 (3 taps); fields pushing every pixel 2 rows up
    # (out of the image near the top) and not sideways
    field = np.full((1, 12, 12), -2.0 / (1.2 * 0.6))
    _scripted(
        layer,
        [
            ("uniform", np.zeros(1)),
            ("uniform", np.zeros(1)),
            ("uniform", np.zeros(())),
            ("normal", np.zeros((1, 12, 12))),
            ("normal", field),
        ],
    )
    y = np.asarray(layer(x))
    # rows 1..10 read 2 rows up, mirrored: row 1 reads row -1 -> 1, row 2 reads 0
    np.testing.assert_array_equal(y[0, 2:11, 3], x[0, 0:9, 3])
    np.testing.assert_array_equal(y[0, 1, 3], x[0, 1, 3])


# --- against Keras 3, with the same draws replayed on both sides ----------------------------
# Keras builds each layer from dendrite's config (so Keras reads those configs too), then both
# run on the same input with the same draws.
KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import keras
    from keras.src.backend.torch import random as krandom
    import keras.src.backend.torch.image as kimage

    root = sys.argv[1]
    QUEUE = []

    def pop(kind, shape):
        got, value = QUEUE.pop(0)
        shape = tuple(int(s) for s in shape)
        assert got == kind and value.shape == shape, (got, kind, value.shape, shape)
        return value

    def f32(value):
        return torch.as_tensor(np.asarray(value, dtype=np.float32))

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        low, high = float(minval), float(maxval)
        return f32(low + (high - low) * pop("uniform", shape))

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return f32(float(mean) + float(stddev) * pop("normal", shape))

    krandom.uniform = uniform
    krandom.normal = normal
    krandom.beta = lambda shape, alpha, beta, dtype=None, seed=None: f32(pop("beta", shape))
    krandom.shuffle = lambda x, axis=0, seed=None: x[
        torch.as_tensor(pop("perm", (x.shape[0],)))
    ]

    class Torch:  # torch, but for the fields RandomElasticTransform draws with torch.normal
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def normal(mean, std, size=None, generator=None, dtype=None, device=None):
            return torch.as_tensor(mean + std * pop("normal", size), dtype=dtype)

    kimage.torch = Torch()

    cases = json.loads(open(root + "/cases.json").read())
    for name, case in cases.items():
        x = np.load(root + f"/{name}_x.npy")
        draws = np.load(root + f"/{name}_draws.npz")
        QUEUE[:] = [(kind, draws[f"d{i}"]) for i, kind in enumerate(case["kinds"])]
        layer = getattr(keras.layers, case["cls"]).from_config(case["config"])
        y = layer(x, training=True)
        assert not QUEUE, (name, "draws left over", len(QUEUE))
        np.save(root + f"/{name}.npy", keras.ops.convert_to_numpy(y))
    """
)


def _case(cls, kwargs, kinds_shapes, x, seed, fixed=None):
    """A comparison case: the layer, its input and its unit draws (``fixed``: index ->
    array replacing a random draw)."""
    rng = np.random.default_rng(seed)
    draws = []
    for i, (kind, shape) in enumerate(kinds_shapes):
        if fixed and i in fixed:
            draws.append((kind, np.asarray(fixed[i], dtype=np.float64)))
        elif kind == "normal":
            draws.append((kind, rng.standard_normal(shape)))
        else:
            draws.append((kind, rng.uniform(0.0, 1.0, shape)))
    return {"cls": cls, "kwargs": kwargs, "x": x, "draws": draws}


def _keras_cases() -> dict:
    x = _images((3, 7, 8, 3), seed=10)
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    big = _images((2, 16, 20, 2), seed=11)
    big_first = np.ascontiguousarray(np.moveaxis(big, -1, 1))
    u3, u1 = ("uniform", (3,)), ("uniform", (3, 1))
    erase = [("uniform", (3, 2)), u3, u3, u3, u3]
    blur = [u3, u3, ("uniform", (2,))]
    shear = [u1, u1, u1]
    persp = [u3, u3, ("uniform", (3, 4, 2))]

    def elastic(n, h, w):
        per = ("uniform", (n,))
        return [per, per, ("uniform", ()), ("normal", (n, h, w)), ("normal", (n, h, w))]

    half = {"factor": [0.5, 0.5]}
    cases = {
        "erase_constant": _case(
            "RandomErasing",
            {**half, "scale": [0.1, 0.5], "fill_value": 40.0},
            erase,
            x,
            1,
            {3: [0.0] * 3, 4: [0.2, 0.9, 0.4]},
        ),
        "erase_noise": _case(
            "RandomErasing",
            {"scale": [0.2, 0.6]},
            [*erase, ("normal", x.shape)],
            x,
            2,
            {3: [0.9] * 3, 4: [0.1, 0.5, 0.3]},
        ),
        "erase_noise_first": _case(
            "RandomErasing",
            {"scale": [0.2, 0.6], "value_range": [20, 200], "data_format": "channels_first"},
            [*erase, ("normal", first.shape)],
            first,
            3,
        ),
        "erase_list_fill": _case(
            "RandomErasing",
            {"scale": [0.2, 0.6], "fill_value": [10, 20, 300]},
            erase,
            x,
            22,
            {3: [0.9] * 3, 4: [0.1, 0.5, 0.3]},
        ),
        "erase_single": _case(
            "RandomErasing",
            {"scale": [0.3, 0.3]},
            [("uniform", (1, 2)), *[("uniform", (1,))] * 4, ("normal", x[0].shape)],
            x[0],
            4,
        ),
        "blur": _case(
            "RandomGaussianBlur", {**half, "sigma": [0.3, 1.0]}, blur, x, 5, {1: [0.2, 0.9, 0.4]}
        ),
        "blur_wide_clip": _case(
            "RandomGaussianBlur",
            {"kernel_size": 5, "sigma": 1.0, "value_range": [30, 220]},
            blur,
            x,
            6,
        ),
        "blur_first": _case(
            "RandomGaussianBlur",
            {"kernel_size": 3, "sigma": [0.6, 1.0], "data_format": "channels_first"},
            blur,
            first,
            7,
        ),
        "shear_reflect": _case("RandomShear", {"x_factor": 0.6, "y_factor": 0.4}, shear, x, 8),
        "shear_constant_nearest": _case(
            "RandomShear",
            {
                "x_factor": [0.2, 0.8],
                "y_factor": 0.3,
                "fill_mode": "constant",
                "fill_value": 9.0,
                "interpolation": "nearest",
            },
            shear,
            x,
            9,
        ),
        "shear_wrap": _case(
            "RandomShear", {"x_factor": 0.5, "y_factor": 0.5, "fill_mode": "wrap"}, shear, x, 10
        ),
        "shear_nearest_fill_first": _case(
            "RandomShear",
            {"x_factor": 0.7, "fill_mode": "nearest", "data_format": "channels_first"},
            shear,
            first,
            11,
        ),
        "shear_single": _case(
            "RandomShear", {"x_factor": 0.5, "y_factor": 0.5}, [("uniform", (1, 1))] * 3, x[0], 12
        ),
        "perspective": _case(
            "RandomPerspective", {**half, "fill_value": 5.0}, persp, x, 13, {1: [0.2, 0.9, 0.4]}
        ),
        "perspective_nearest": _case(
            "RandomPerspective", {"scale": 0.6, "interpolation": "nearest"}, persp, x, 14
        ),
        "perspective_first": _case(
            "RandomPerspective", {"scale": 0.8, "data_format": "channels_first"}, persp, first, 15
        ),
        "elastic_reflect": _case(
            "RandomElasticTransform",
            {**half, "scale": [0.5, 1.0]},
            elastic(2, 16, 20),
            big,
            16,
            {1: [0.1, 0.7]},
        ),
        "elastic_mirror_nearest": _case(
            "RandomElasticTransform",
            {"scale": 1.0, "fill_mode": "mirror", "interpolation": "nearest"},
            elastic(2, 16, 20),
            big,
            17,
            {0: [1.0, 1.0], 1: [0.0, 0.0], 2: 0.9},
        ),
        "elastic_constant_clip": _case(
            "RandomElasticTransform",
            {"fill_mode": "constant", "fill_value": 300.0, "value_range": [0, 250]},
            elastic(2, 16, 20),
            big,
            18,
        ),
        "elastic_wrap_first": _case(
            "RandomElasticTransform",
            {"scale": [0.8, 1.0], "fill_mode": "wrap", "data_format": "channels_first"},
            elastic(2, 16, 20),
            big_first,
            19,
        ),
        "elastic_single_nearest_fill": _case(
            "RandomElasticTransform",
            {"fill_mode": "nearest"},
            elastic(1, 16, 20),
            big[0],
            20,
            {0: [1.0], 1: [0.0], 2: 1.0},
        ),
        "elastic_off": _case(
            "RandomElasticTransform", {"scale": 0.0, "value_range": [0, 100]}, [], x, 21
        ),
    }
    return cases


def test_scripted_draws_match_keras(tmp_path: Path):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    cases = _keras_cases()
    listing = {}
    for name, case in cases.items():
        np.save(tmp_path / f"{name}_x.npy", case["x"], allow_pickle=False)
        arrays = {f"d{i}": value for i, (_, value) in enumerate(case["draws"])}
        np.savez(tmp_path / f"{name}_draws.npz", **arrays)
        listing[name] = {
            "cls": case["cls"],
            "config": MINE[case["cls"]](**case["kwargs"]).get_config(),
            "kinds": [kind for kind, _ in case["draws"]],
        }
    (tmp_path / "cases.json").write_text(json.dumps(listing))
    run_keras_side(KERAS_SIDE, tmp_path, backend="torch")
    for name, case in cases.items():
        layer = MINE[case["cls"]](**case["kwargs"])
        script = _scripted(layer, case["draws"])
        mine = np.asarray(layer(case["x"], training=True))
        assert not script.draws, name
        expected = np.load(tmp_path / f"{name}.npy")
        assert mine.shape == expected.shape, name
        assert mine.dtype == expected.dtype == np.float32, name
        np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=2e-3, err_msg=name)
        if name in ("erase_constant", "blur", "perspective"):
            # image 1 drew a threshold above its probability: left as it was (blur: clipped)
            np.testing.assert_allclose(mine[1], case["x"][1], atol=1e-4, err_msg=name)
            assert not np.allclose(mine[0], case["x"][0]), name


# --- training, seeds, configs, layouts, dtypes --------------------------------------------
LAYERS = {
    "RandomErasing": {"scale": (0.1, 0.4), "fill_value": 100.0, "seed": 3},
    "RandomGaussianBlur": {"kernel_size": (3, 5), "sigma": (0.3, 1.0), "seed": 3},
    "RandomShear": {"x_factor": 0.4, "y_factor": (0.1, 0.3), "seed": 3},
    "RandomPerspective": {"scale": 0.5, "fill_value": 2.0, "seed": 3},
    "RandomElasticTransform": {"scale": (0.5, 1.0), "fill_mode": "mirror", "seed": 3},
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inference_returns_the_input_and_training_changes_it(name):
    x = _images((3, 12, 10, 3), seed=20)
    layer = MINE[name](**LAYERS[name])
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert not np.allclose(np.asarray(layer(x)), x)  # a direct call trains, as Keras
    assert layer.compute_output_shape((None, 12, 10, 3)) == (None, 12, 10, 3)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_seeds_repeat_and_calls_differ(name):
    x = _images((3, 12, 10, 3), seed=21)
    a, b = MINE[name](**LAYERS[name]), MINE[name](**LAYERS[name])
    first = np.asarray(a(x))
    np.testing.assert_array_equal(np.asarray(b(x)), first)
    assert not np.array_equal(np.asarray(a(x)), first)  # the next call draws anew
    other = MINE[name](**{**LAYERS[name], "seed": 4})
    assert not np.array_equal(np.asarray(other(x)), first)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip_through_json(name):
    x = _images((2, 9, 8, 3), seed=22)
    layer = MINE[name](**LAYERS[name])
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))
    assert config["data_format"] == "channels_last" and config["seed"] == 3


def test_configs_hold_keras_values():
    assert RandomErasing().get_config()["factor"] == [0.0, 1.0]
    assert RandomErasing(factor=(0.9, 0.2)).get_config()["factor"] == [0.2, 0.9]
    blur = RandomGaussianBlur(kernel_size=5, sigma=0.5).get_config()
    assert blur["kernel_size"] == [5, 5] and blur["sigma"] == [0.0, 0.5]
    shear = RandomShear(0.3).get_config()
    assert shear["x_factor"] == 0.3 and shear["fill_mode"] == "reflect"
    assert RandomShear(0.3)._given["y_factor"] == 0.0 and RandomShear(0.3).x_factor == (-0.3, 0.3)
    persp = RandomPerspective().get_config()
    assert persp["scale"] == 1.0 and persp["interpolation"] == "bilinear"
    elastic = RandomElasticTransform().get_config()
    assert elastic["scale"] == [0.0, 1.0] and elastic["fill_mode"] == "reflect"
    assert elastic["value_range"] == [0.0, 255.0]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_channels_first_single_image_and_float64(name):
    x = _images((3, 12, 10, 3), seed=23)
    last = np.asarray(MINE[name](**LAYERS[name])(x))
    first = MINE[name](**LAYERS[name], data_format="channels_first")(np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(np.moveaxis(np.asarray(first), 1, -1), last, atol=1e-4)
    one = np.asarray(MINE[name](**LAYERS[name])(x[:1]))
    single = np.asarray(MINE[name](**LAYERS[name])(x[0]))
    assert single.shape == x[0].shape
    np.testing.assert_allclose(single, one[0], atol=1e-4)
    as64 = MINE[name](**LAYERS[name], dtype="float64")(x.astype("float64"))
    assert np.asarray(as64).dtype == np.float64
    np.testing.assert_allclose(np.asarray(as64), last, rtol=1e-4, atol=1e-2)
    ints = np.asarray(MINE[name](**LAYERS[name])(x.astype("int32")))
    assert ints.dtype == np.float32


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_integer_images_come_back_as_float_at_inference_as_keras(name):
    # Keras 3.15 casts the images to the layer's float dtype in both modes: uint8 in,
    # float32 out, the values unchanged when training=False
    x = np.round(_images((2, 9, 8, 3), seed=24)).astype("uint8")
    for images, fmt in ((x, "channels_last"), (x[0], "channels_last"), (x[:1], "channels_last")):
        out = np.asarray(MINE[name](**LAYERS[name], data_format=fmt)(images, training=False))
        assert out.dtype == np.float32 and out.shape == images.shape, name
        np.testing.assert_array_equal(out, images.astype("float32"))
    first = np.moveaxis(x, -1, 1).astype("int32")
    out = np.asarray(MINE[name](**LAYERS[name], data_format="channels_first")(first, False))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, first.astype("float32"))
    assert np.asarray(MINE[name](**LAYERS[name])(x)).dtype == np.float32  # training


def test_bad_arguments_name_the_layer_and_the_value():
    cases = [
        (RandomErasing, {"factor": 1.5}, "RandomErasing.*factor.*1.5"),
        (RandomErasing, {"scale": (2.0, 3.0)}, "RandomErasing.*scale"),
        (RandomErasing, {"fill_value": (1, 2)}, "RandomErasing.*fill_value"),
        (RandomErasing, {"fill_value": "x"}, "RandomErasing.*fill_value"),
        (RandomErasing, {"value_range": 3}, "RandomErasing.*value_range"),
        (RandomErasing, {"data_format": "nhwc"}, "data_format.*nhwc"),
        (RandomGaussianBlur, {"kernel_size": 4}, "RandomGaussianBlur.*kernel_size.*4"),
        (RandomGaussianBlur, {"kernel_size": (3, 3, 3)}, "kernel_size"),
        (RandomGaussianBlur, {"sigma": 2.0}, "RandomGaussianBlur.*sigma.*2.0"),
        (RandomShear, {"x_factor": -0.2}, "RandomShear.*x_factor.*-0.2"),
        (RandomShear, {"y_factor": (0.1, 1.5)}, "RandomShear.*y_factor"),
        (RandomShear, {"fill_mode": "mirror"}, "fill_mode.*RandomShear.*mirror"),
        (RandomShear, {"interpolation": "bicubic"}, "interpolation.*bicubic"),
        (RandomPerspective, {"scale": 1.5}, "RandomPerspective.*scale.*1.5"),
        (RandomPerspective, {"interpolation": "area"}, "interpolation.*area"),
        (RandomElasticTransform, {"scale": -0.5}, "RandomElasticTransform.*scale"),
        (RandomElasticTransform, {"fill_mode": "edge"}, "fill_mode.*edge"),
    ]
    for cls, kwargs, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            cls(**kwargs)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_bad_inputs_name_the_layer_and_the_shape(name):
    layer = MINE[name](**LAYERS[name], name=f"my_{name.lower()}")
    for training in (True, False):
        with pytest.raises(ValueError, match=f"my_{name.lower()}.*\\(2, 3\\)"):
            layer(np.ones((2, 3), "float32"), training=training)
    with pytest.raises(ValueError, match=f"my_{name.lower()}.*one tensor.*received a dict"):
        layer({"images": np.ones((2, 4, 4, 3), "float32")})
    with pytest.raises(ValueError, match="three numbers.*3 channels.*\\(2, 4, 4, 2\\)"):
        RandomErasing(fill_value=[1, 2, 3])(np.ones((2, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="RandomPerspective.*2 x 2.*\\(2, 1, 5, 3\\)"):
        RandomPerspective()(np.ones((2, 1, 5, 3), "float32"))


# --- gradients --------------------------------------------------------------------------------
GRADIENT_CASES = {
    "erase": (RandomErasing, {"scale": (0.2, 0.5), "fill_value": 0.3, "value_range": (-9, 9)}),
    "blur": (
        RandomGaussianBlur,
        {"kernel_size": (5, 3), "sigma": (0.4, 1.0), "value_range": (-9, 9)},
    ),
    "shear_bilinear": (RandomShear, {"x_factor": 0.5, "y_factor": 0.4}),
    "shear_nearest_constant": (
        RandomShear,
        {"x_factor": 0.5, "fill_mode": "constant", "fill_value": 1.0, "interpolation": "nearest"},
    ),
    "perspective": (RandomPerspective, {"scale": 0.7, "fill_value": 0.5}),
    "elastic": (RandomElasticTransform, {"fill_mode": "mirror", "value_range": (-9, 9)}),
    "elastic_first": (
        RandomElasticTransform,
        {"fill_mode": "constant", "value_range": (-9, 9), "data_format": "channels_first"},
    ),
}


@pytest.mark.parametrize("case", sorted(GRADIENT_CASES))
def test_gradients_reach_the_images(case):
    cls, kwargs = GRADIENT_CASES[case]
    layer = _fixed(cls(**kwargs, dtype="float64"))
    x = np.random.default_rng(30).standard_normal((2, 9, 8, 3))
    gradcheck(lambda images: layer(images), x, name=case)
    gradcheck(lambda images: layer(images), x[0], name=f"{case} (one image)")
