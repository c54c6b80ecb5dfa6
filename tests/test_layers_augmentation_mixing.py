"""MixUp and CutMix: exact results for scripted draws (permutations, Beta weights, boxes),
against Keras 3 itself in a subprocess on the same images, labels and draws (Keras' random
functions replaced by ones that replay them), dicts of images, labels and segmentation
masks, training vs inference, seeds, configs, channels_first, float64, one image, errors
and gradients (to the images and the labels)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation_mixing import CutMix, MixUp
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

MINE = {"MixUp": MixUp, "CutMix": CutMix}


def _images(shape=(4, 6, 8, 3), seed=0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(dtype)


def _labels(n=4, classes=5, seed=0) -> np.ndarray:
    return np.eye(classes, dtype="float32")[np.random.default_rng(seed).integers(0, classes, n)]


class Scripted:
    """A stand-in for a layer's generator that replays given draws: uniform ``u`` in
    [0, 1) (scaled to the asked range), Beta values, permutations."""

    def __init__(self, draws: list) -> None:
        self.draws = list(draws)

    def _next(self, kind: str, shape) -> np.ndarray:
        got, value = self.draws.pop(0)
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        assert got == kind and value.shape == shape, (got, kind, value.shape, shape)
        return value

    def uniform(self, low=0.0, high=1.0, size=None):
        return low + (high - low) * self._next("uniform", size)

    def beta(self, a, b, size=None):
        return self._next("beta", size)

    def permutation(self, n):
        return self._next("perm", n)


def _scripted(layer, draws: list):
    script = Scripted(draws)
    layer._generator = lambda: script
    return script


def _fixed(layer, seed: int = 7):
    """``layer`` drawing the same values on every call (for finite differences)."""
    layer._generator = lambda: np.random.default_rng(seed)
    return layer


# --- exact results for scripted draws -------------------------------------------------------
def test_mixup_blends_with_the_permuted_batch():
    x, labels = _images(), _labels()
    perm, weights = np.array([2, 0, 3, 1]), np.array([0.9, 0.25, 0.5, 1.0])
    layer = MixUp(alpha=0.3)
    _scripted(layer, [("perm", perm), ("beta", weights)])
    out = layer({"images": x, "labels": labels, "ids": np.arange(4)})
    w = weights[:, None, None, None]
    np.testing.assert_allclose(np.asarray(out["images"]), w * x + (1 - w) * x[perm], rtol=1e-6)
    mixed = weights[:, None] * labels + (1 - weights[:, None]) * labels[perm]
    np.testing.assert_allclose(np.asarray(out["labels"]), mixed, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["ids"]), np.arange(4))  # passed through
    # plain images, and integer class labels of any rank
    _scripted(layer, [("perm", perm), ("beta", weights)])
    only = np.asarray(layer(x))
    np.testing.assert_allclose(only, w * x + (1 - w) * x[perm], rtol=1e-6)
    _scripted(layer, [("perm", perm), ("beta", weights)])
    classes = np.array([1, 2, 3, 4])
    out = layer({"images": x, "labels": classes})
    assert np.asarray(out["labels"]).dtype == np.float32
    np.testing.assert_allclose(
        np.asarray(out["labels"]), weights * classes + (1 - weights) * classes[perm], rtol=1e-6
    )


def test_mixup_mixes_segmentation_masks_like_images():
    x = _images((3, 4, 5, 2))
    masks = np.random.default_rng(1).integers(0, 3, (3, 4, 5, 1))
    perm, weights = np.array([1, 2, 0]), np.array([0.2, 0.6, 0.7])
    layer = MixUp()
    _scripted(layer, [("perm", perm), ("beta", weights)])
    out = layer({"images": x, "segmentation_masks": masks})
    w = weights[:, None, None, None]
    np.testing.assert_allclose(
        np.asarray(out["segmentation_masks"]), w * masks + (1 - w) * masks[perm], rtol=1e-6
    )


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    x, labels = _images((2, 6, 8, 3), seed=2), _labels(2, 3, seed=2)
    masks = np.arange(2 * 6 * 8).reshape(2, 6, 8, 1)
    layer = CutMix(factor=(0.5, 0.5))
    # Beta 0.75 -> ratio 0.5: a 4 x 3 box; image 0 starts at x 0.5 (8 - 4) = 2,
    # y 0.5 (6 - 3) = 1.5; image 1 at x 0, y 0.25 * 3 = 0.75
    _scripted(
        layer,
        [
            ("uniform", np.zeros(())),
            ("beta", np.array([0.75, 0.75])),
            ("uniform", np.array([0.5, 0.0])),
            ("uniform", np.array([0.5, 0.25])),
            ("perm", np.array([1, 0])),
        ],
    )
    out = layer({"images": x, "labels": labels, "segmentation_masks": masks})
    expected = x.copy()
    expected[0, 2:5, 2:6] = x[1, 2:5, 2:6]  # rows 1.5 <= y < 4.5, columns 2 <= x < 6
    expected[1, 1:4, 0:4] = x[0, 1:4, 0:4]  # rows 0.75 <= y < 3.75, columns 0 <= x < 4
    np.testing.assert_array_equal(np.asarray(out["images"]), expected)
    pasted = masks.copy()
    pasted[0, 2:5, 2:6] = masks[1, 2:5, 2:6]
    pasted[1, 1:4, 0:4] = masks[0, 1:4, 0:4]
    got = np.asarray(out["segmentation_masks"])
    assert got.dtype == masks.dtype  # class indices stay integers
    np.testing.assert_array_equal(got, pasted)
    # labels: 1 - 12 / 48 = 0.75 of their own
    np.testing.assert_allclose(
        np.asarray(out["labels"]), 0.75 * labels + 0.25 * labels[[1, 0]], rtol=1e-6
    )


def test_cutmix_masks_without_a_channel_axis_and_channels_first():
    x = _images((2, 4, 4, 2), seed=3)
    masks = np.arange(2 * 16).reshape(2, 4, 4)
    draws = [
        ("uniform", np.zeros(())),
        ("beta", np.array([0.75, 0.0])),  # image 1: a 4 x 4 box, the whole image
        ("uniform", np.array([0.0, 0.3])),
        ("uniform", np.array([0.0, 0.6])),
        ("perm", np.array([1, 0])),
    ]
    layer = CutMix()
    _scripted(layer, draws)
    out = layer({"images": x, "segmentation_masks": masks})
    expected = masks.copy()
    expected[0, :2, :2] = masks[1, :2, :2]
    expected[1] = masks[0]
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), expected)
    first = CutMix(data_format="channels_first")
    _scripted(first, draws)
    out_first = first({"images": np.moveaxis(x, -1, 1), "segmentation_masks": masks[:, None]})
    np.testing.assert_array_equal(
        np.moveaxis(np.asarray(out_first["images"]), 1, -1), np.asarray(out["images"])
    )
    np.testing.assert_array_equal(np.asarray(out_first["segmentation_masks"])[:, 0], expected)


def test_one_image():
    x, label = _images((5, 6, 3), seed=4), np.eye(4, dtype="float32")[2]
    layer = MixUp(seed=1)
    out = layer({"images": x, "labels": label})
    assert np.asarray(out["images"]).shape == x.shape and np.asarray(out["labels"]).shape == (4,)
    np.testing.assert_allclose(np.asarray(out["images"]), x, rtol=1e-5)  # mixed with itself
    np.testing.assert_allclose(np.asarray(out["labels"]), label, rtol=1e-6)
    out = CutMix(seed=1)({"images": x, "labels": label})  # Keras: left as it is
    np.testing.assert_array_equal(np.asarray(out["images"]), x)
    np.testing.assert_array_equal(np.asarray(out["labels"]), label)
    np.testing.assert_array_equal(np.asarray(CutMix(seed=1)(x)), x)


# --- against Keras 3, with the same draws replayed on both sides ----------------------------
# Keras builds each layer from dendrite's config (so Keras reads those configs too).
KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import keras
    from keras.src.backend.torch import random as krandom

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

    krandom.uniform = uniform
    krandom.beta = lambda shape, alpha, beta, dtype=None, seed=None: f32(pop("beta", shape))
    krandom.shuffle = lambda x, axis=0, seed=None: x[
        torch.as_tensor(pop("perm", (x.shape[0],)))
    ]

    cases = json.loads(open(root + "/cases.json").read())
    for name, case in cases.items():
        arrays = np.load(root + f"/{name}_data.npz")
        data = {key: arrays[key] for key in arrays.files}
        if case["plain"]:
            data = data["images"]
        draws = np.load(root + f"/{name}_draws.npz")
        QUEUE[:] = [(kind, draws[f"d{i}"]) for i, kind in enumerate(case["kinds"])]
        layer = getattr(keras.layers, case["cls"]).from_config(case["config"])
        out = layer(data, training=True)
        assert not QUEUE, (name, "draws left over", len(QUEUE))
        out = out if isinstance(out, dict) else {"images": out}
        arrays = {key: keras.ops.convert_to_numpy(value) for key, value in out.items()}
        np.savez(root + f"/{name}.npz", **arrays)
    """
)


def _keras_cases() -> dict:
    rng = np.random.default_rng(40)
    x, labels = _images((4, 6, 8, 3), seed=41), _labels(4, 5, seed=41)
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))

    def mixup(n):
        return [("perm", rng.permutation(n)), ("beta", rng.uniform(0, 1, n))]

    def cutmix(n):
        return [
            ("uniform", rng.uniform(0, 1, ())),
            ("beta", rng.uniform(0, 1, n)),
            ("uniform", rng.uniform(0, 1, n)),
            ("uniform", rng.uniform(0, 1, n)),
            ("perm", rng.permutation(n)),
        ]

    return {
        "mixup_dict": ("MixUp", {"alpha": 0.3}, {"images": x, "labels": labels}, mixup(4)),
        "mixup_plain": ("MixUp", {}, {"images": x}, mixup(4)),
        "mixup_first": (
            "MixUp",
            {"data_format": "channels_first"},
            {"images": first, "labels": labels},
            mixup(4),
        ),
        "mixup_single": ("MixUp", {}, {"images": x[0], "labels": labels[0]}, mixup(1)),
        "cutmix_dict": ("CutMix", {}, {"images": x, "labels": labels}, cutmix(4)),
        "cutmix_range": (
            "CutMix",
            {"factor": [0.3, 0.8]},
            {"images": x, "labels": labels},
            cutmix(4),
        ),
        "cutmix_plain": ("CutMix", {"factor": 0.5}, {"images": x}, cutmix(4)),
        "cutmix_first": (
            "CutMix",
            {"data_format": "channels_first"},
            {"images": first, "labels": labels},
            cutmix(4),
        ),
        "cutmix_single": ("CutMix", {}, {"images": x[0], "labels": labels[0]}, []),
    }


def test_scripted_draws_match_keras(tmp_path: Path):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    cases = _keras_cases()
    listing = {}
    for name, (cls, kwargs, data, draws) in cases.items():
        np.savez(tmp_path / f"{name}_data.npz", **data)
        np.savez(tmp_path / f"{name}_draws.npz", **{f"d{i}": v for i, (_, v) in enumerate(draws)})
        plain = name.endswith("_plain")
        listing[name] = {
            "cls": cls,
            "config": MINE[cls](**kwargs).get_config(),
            "plain": plain,
            "kinds": [k for k, _ in draws],
        }
    (tmp_path / "cases.json").write_text(json.dumps(listing))
    run_keras_side(KERAS_SIDE, tmp_path, backend="torch")
    for name, (cls, kwargs, data, draws) in cases.items():
        layer = MINE[cls](**kwargs)
        script = _scripted(layer, draws)
        out = layer(data["images"] if listing[name]["plain"] else dict(data), training=True)
        assert not script.draws, name
        out = out if isinstance(out, dict) else {"images": out}
        expected = np.load(tmp_path / f"{name}.npz")
        assert sorted(out) == sorted(expected.files), name
        for key in expected.files:
            mine = np.asarray(out[key])
            assert mine.shape == expected[key].shape, (name, key)
            np.testing.assert_allclose(
                mine, expected[key], rtol=1e-5, atol=1e-3, err_msg=f"{name} {key}"
            )
        if not name.endswith("_single") and "labels" in out:
            assert not np.allclose(np.asarray(out["labels"]), data["labels"]), name


# --- training, seeds, configs, layouts, dtypes --------------------------------------------
LAYERS = {"MixUp": {"alpha": 0.8, "seed": 3}, "CutMix": {"factor": (0.5, 1.0), "seed": 3}}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inference_returns_the_data_and_training_mixes(name):
    x, labels = _images(seed=20), _labels(seed=20)
    layer = MINE[name](**LAYERS[name])
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    out = layer({"images": x, "labels": labels}, training=False)
    np.testing.assert_array_equal(np.asarray(out["images"]), x)
    np.testing.assert_array_equal(np.asarray(out["labels"]), labels)
    out = layer({"images": x, "labels": labels})  # a direct call trains, as Keras
    assert not np.allclose(np.asarray(out["images"]), x)
    mixed = np.asarray(out["labels"])
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)  # still distributions
    assert mixed.min() >= 0 and not np.allclose(mixed, labels)
    assert layer.compute_output_shape((None, 6, 8, 3)) == (None, 6, 8, 3)
    shapes = {"images": (None, 6, 8, 3), "labels": (None, 5)}
    assert layer.compute_output_shape(shapes) == shapes


def test_cutmix_labels_follow_the_pasted_share():
    x = np.zeros((64, 16, 16, 1), "float32")
    x[:32] = 1.0  # the first half of the batch is white
    labels = np.repeat(np.eye(2, dtype="float32"), 32, axis=0)
    out = CutMix(seed=5)({"images": x, "labels": labels})
    white = np.asarray(out["images"]).mean(axis=(1, 2, 3))
    # the area of the box is continuous, its pixels are whole: close, not equal
    np.testing.assert_allclose(np.asarray(out["labels"])[:, 0], white, atol=0.15)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_seeds_repeat_and_calls_differ(name):
    x = _images(seed=21)
    a, b = MINE[name](**LAYERS[name]), MINE[name](**LAYERS[name])
    first = np.asarray(a(x))
    np.testing.assert_array_equal(np.asarray(b(x)), first)
    assert not np.array_equal(np.asarray(a(x)), first)
    assert not np.array_equal(np.asarray(MINE[name](**{**LAYERS[name], "seed": 4})(x)), first)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip_through_json(name):
    x = _images(seed=22)
    layer = MINE[name](**LAYERS[name])
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))
    assert config["data_format"] == "channels_last" and config["seed"] == 3
    assert MixUp().get_config()["alpha"] == 0.2 and CutMix().get_config()["factor"] == [0.0, 1.0]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_channels_first_and_float64(name):
    x, labels = _images(seed=23), _labels(seed=23)
    last = MINE[name](**LAYERS[name])({"images": x, "labels": labels})
    first = MINE[name](**LAYERS[name], data_format="channels_first")(
        {"images": np.moveaxis(x, -1, 1), "labels": labels}
    )
    np.testing.assert_array_equal(
        np.moveaxis(np.asarray(first["images"]), 1, -1), np.asarray(last["images"])
    )
    np.testing.assert_array_equal(np.asarray(first["labels"]), np.asarray(last["labels"]))
    as64 = MINE[name](**LAYERS[name], dtype="float64")(x.astype("float64"))
    assert np.asarray(as64).dtype == np.float64
    np.testing.assert_allclose(np.asarray(as64), np.asarray(last["images"]), rtol=1e-5)
    ints = np.asarray(MINE[name](**LAYERS[name])(x.astype("int32")))
    assert ints.dtype == np.float32


def test_cutmix_casts_integer_images_and_masks_as_keras_and_mixup_keeps_them():
    # Keras 3.15: CutMix casts integer images to float32 in every case (inference, one
    # image); MixUp returns its data at inference. Masks keep their integer class ids.
    x = np.round(_images((4, 6, 8, 3), seed=30)).astype("uint8")
    labels = _labels(seed=30)
    masks = np.arange(4 * 6 * 8, dtype="int32").reshape(4, 6, 8, 1) % 5
    layer = CutMix(seed=2)
    out = np.asarray(layer(x, training=False))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype("float32"))
    data = {"images": x, "labels": labels, "segmentation_masks": masks}
    out = layer(data, training=False)
    assert np.asarray(out["images"]).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out["images"]), x.astype("float32"))
    assert np.asarray(out["segmentation_masks"]).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), masks)
    np.testing.assert_array_equal(np.asarray(out["labels"]), labels)
    one = layer({"images": x[0], "labels": labels[0]})  # one image: not mixed, but cast
    assert np.asarray(one["images"]).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(one["images"]), x[0].astype("float32"))
    assert np.asarray(layer(x[0])).dtype == np.float32
    first = CutMix(seed=2, data_format="channels_first")(np.moveaxis(x[0], -1, 0), False)
    assert np.asarray(first).dtype == np.float32
    trained = layer(data)
    pasted = np.asarray(trained["segmentation_masks"])
    assert pasted.dtype == np.int32 and pasted.shape == masks.shape
    assert set(np.unique(pasted)) <= set(range(5))  # whole class ids, pasted not blended
    mixup = MixUp(seed=2)
    assert np.asarray(mixup(x, training=False)).dtype == np.uint8
    out = mixup(data, training=False)
    assert np.asarray(out["images"]).dtype == np.uint8
    assert np.asarray(out["segmentation_masks"]).dtype == np.int32


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="MixUp.*alpha.*0"):
        MixUp(alpha=0)
    with pytest.raises(ValueError, match="MixUp.*alpha.*'a'"):
        MixUp(alpha="a")
    with pytest.raises(ValueError, match="CutMix.*factor.*1.5"):
        CutMix(factor=1.5)
    with pytest.raises(ValueError, match="CutMix.*factor"):
        CutMix(factor=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="data_format.*nchw"):
        MixUp(data_format="nchw")
    x = _images()
    for cls in (MixUp, CutMix):
        layer = cls(name=f"my_{cls.__name__.lower()}")
        for training in (True, False):
            with pytest.raises(ValueError, match=f"my_{cls.__name__.lower()}.*\\(4, 6\\)"):
                layer(np.ones((4, 6), "float32"), training=training)
        with pytest.raises(ValueError, match="or a dict.*received a list"):
            layer([x, x])
        with pytest.raises(ValueError, match="'images'.*\\['labels'\\]"):
            layer({"labels": _labels()})
        with pytest.raises(ValueError, match="bounding_boxes"):
            layer({"images": x, "bounding_boxes": {"boxes": np.zeros((4, 1, 4))}})
        with pytest.raises(ValueError, match="'labels'.*batch size 4.*\\(3, 5\\)"):
            layer({"images": x, "labels": _labels(3)})
    with pytest.raises(ValueError, match="segmentation_masks.*\\(4, 5, 8\\)"):
        CutMix()({"images": x, "segmentation_masks": np.zeros((4, 5, 8), "int32")})


# --- gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_reach_the_images_and_labels(name):
    layer = _fixed(MINE[name](**LAYERS[name], dtype="float64"))
    rng = np.random.default_rng(30)
    x, labels = rng.standard_normal((4, 6, 5, 2)), rng.uniform(0, 1, (4, 3))
    gradcheck(lambda images: layer(images), x, name=name)

    def both(images: Tensor, targets: Tensor) -> Tensor:
        out = layer({"images": images, "labels": targets})
        totals = ops.reshape(ops.sum(out["images"], axis=(1, 2, 3)), (-1, 1))
        return totals * out["labels"]

    gradcheck(both, x, labels, name=f"{name} (images and labels)")
    first = _fixed(MINE[name](**LAYERS[name], dtype="float64", data_format="channels_first"))
    gradcheck(lambda images: first(images), x, name=f"{name} channels_first")
