"""RandAugment and AugMix: shapes and dtypes, training vs inference, value ranges, seeds,
channels_first, configs (keys and values against Keras 3's own get_config), argument
errors, AugMix's convex mix, and, against Keras 3 itself (in a subprocess), the finite set
of outputs that factor 0 allows (every step is then deterministic)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.augmentation_policies import (
    AUG_MIX_BASIC_STEPS,
    AUG_MIX_STEPS,
    RAND_AUGMENT_STEPS,
    AugMix,
    RandAugment,
)
from dendrite.testing.keras_side import run_keras_side

LAYERS = {"RandAugment": RandAugment, "AugMix": AugMix}
# steps under which a constant image stays constant, whatever their draws (exactly, with
# nearest sampling: bilinear weights leave float noise that AutoContrast would stretch)
CONSTANT_KEEPING = (
    "random_shear",
    "random_translation",
    "random_rotation",
    "random_contrast",
    "auto_contrast",
    "equalization",
)


def _images(shape=(3, 8, 9, 3), seed=0, low=0.0, high=255.0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def _run(layer, x, **kwargs) -> np.ndarray:
    return np.asarray(layer(x, **kwargs))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shapes_dtypes_batched_unbatched_and_float64(name):
    cls = LAYERS[name]
    x = _images()
    for data in (x, x[0]):
        y = _run(cls(seed=1), data)
        assert y.shape == data.shape and y.dtype == np.float32
    y64 = _run(cls(seed=1, dtype="float64"), x.astype("float64"))
    assert y64.dtype == np.float64 and y64.shape == x.shape
    # integer images come back in the layer's float dtype, in both modes (as Keras)
    ints = x.astype("uint8")
    for training in (True, False):
        out = _run(cls(seed=2), ints, training=training)
        assert out.dtype == np.float32 and out.shape == ints.shape
    np.testing.assert_array_equal(_run(cls(), ints, training=False), ints.astype("float32"))
    assert cls().compute_output_shape((None, 8, 9, 3)) == (None, 8, 9, 3)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_training_false_is_the_input_and_direct_calls_augment(name):
    cls = LAYERS[name]
    x = _images(seed=1)
    layer = cls(seed=3)
    np.testing.assert_array_equal(_run(layer, x, training=False), x)
    np.testing.assert_array_equal(_run(layer, x[0], training=False), x[0])
    # a direct call defaults to training=True: some of a few calls change the images
    changed = [not np.allclose(_run(layer, x), x) for _ in range(4)]
    assert any(changed)
    # the rank is checked in both modes, the error naming the layer
    for training in (True, False):
        with pytest.raises(ValueError, match=layer.name):
            layer(np.zeros((2, 2, 4, 4, 3), "float32"), training=training)
        with pytest.raises(ValueError, match=layer.name):
            layer(np.zeros((4, 3), "float32"), training=training)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)])
def test_outputs_stay_in_value_range(name, value_range):
    cls = LAYERS[name]
    x = _images((4, 10, 10, 3), seed=2, low=value_range[0], high=value_range[1])
    layer = cls(value_range=value_range, factor=0.9, seed=5)
    for _ in range(6):
        y = _run(layer, x)
        assert np.all(np.isfinite(y))
        assert y.min() >= value_range[0] - 1e-4 and y.max() <= value_range[1] + 1e-4


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_seeds_reproduce_sequences_and_formats_agree(name):
    cls = LAYERS[name]
    x = _images(seed=3)
    a, b, other = cls(seed=11), cls(seed=11), cls(seed=12)
    first = [_run(a, x) for _ in range(4)]
    second = [_run(b, x) for _ in range(4)]
    for p, q in zip(first, second):
        np.testing.assert_array_equal(p, q)
    assert any(not np.array_equal(p, _run(other, x)) for p in first)
    # one image is a batch of one
    np.testing.assert_array_equal(_run(cls(seed=4), x[0]), _run(cls(seed=4), x[:1])[0])
    # channels_first: the same draws on the moved axes
    last = _run(cls(seed=6, data_format="channels_last"), x)
    first_fmt = _run(cls(seed=6, data_format="channels_first"), np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(np.moveaxis(first_fmt, 1, -1), last, rtol=1e-6, atol=1e-4)
    single = _run(cls(seed=6, data_format="channels_first"), np.moveaxis(x[0], -1, 0))
    assert single.shape == (3, 8, 9)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip_and_seeded_clone(name):
    cls = LAYERS[name]
    extra = {"num_ops": 3} if name == "RandAugment" else {"num_chains": 2, "alpha": 0.5}
    layer = cls(
        value_range=(-1, 1),
        factor=(0.2, 0.6),
        interpolation="nearest",
        seed=9,
        data_format="channels_first",
        **extra,
    )
    config = json.loads(json.dumps(layer.get_config()))
    clone = cls.from_config(config)
    assert clone.get_config() == config
    x = np.moveaxis(_images(seed=4, low=-1, high=1), -1, 1)
    np.testing.assert_array_equal(_run(layer, x), _run(clone, x))


def test_argument_errors_name_the_layer_and_value():
    bad_common = [
        ({"factor": 1.5}, "1.5"),
        ({"factor": -0.1}, "-0.1"),
        ({"factor": "a"}, "'a'"),
        ({"factor": (0.1, 0.2, 0.3)}, r"\(0.1, 0.2, 0.3\)"),
        ({"interpolation": "cubic"}, "cubic"),
        ({"value_range": (0,)}, r"\(0,\)"),
        ({"value_range": (1, 1)}, r"\(1, 1\)"),
        ({"data_format": "channels_middle"}, "channels_middle"),
    ]
    for name, cls in LAYERS.items():
        for kwargs, shown in bad_common:
            with pytest.raises(ValueError, match=f"{name}.*{shown}"):
                cls(**kwargs)
    for kwargs, shown in [
        ({"num_ops": -1}, "-1"),
        ({"num_ops": 2.5}, "2.5"),
        ({"num_ops": True}, "True"),
    ]:
        with pytest.raises(ValueError, match=f"RandAugment.*num_ops={shown}"):
            RandAugment(**kwargs)
    for kwargs, shown in [
        ({"num_chains": 0}, "num_chains=0"),
        ({"chain_depth": -1}, "chain_depth=-1"),
        ({"alpha": 0}, "alpha=0"),
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"alpha": "x"}, "alpha='x'"),
        ({"all_ops": "yes"}, "'yes'"),
    ]:
        with pytest.raises(ValueError, match=f"AugMix.*{shown}"):
            AugMix(**kwargs)


def test_step_lists_follow_keras():
    assert len(RAND_AUGMENT_STEPS) == 11 and set(AUG_MIX_STEPS) == set(RAND_AUGMENT_STEPS)
    assert AugMix(all_ops=True)._names == AUG_MIX_STEPS
    assert AugMix(all_ops=False)._names == AUG_MIX_BASIC_STEPS
    assert "random_brightness" not in AUG_MIX_BASIC_STEPS
    # the steps are built from the policy's factor pair (Keras' mapping)
    layer = RandAugment(factor=0.6, value_range=(0, 1))
    steps = layer._steps
    assert steps["random_rotation"]._bounds == (0.0, 0.6)
    assert steps["random_shear"].x_factor == (0.0, 0.6)
    assert steps["random_contrast"].factor == (0.0, 0.6)
    assert steps["solarization"].threshold_factor == (0.0, 0.6)
    assert steps["random_posterization"].factor == (1.0, 4.0)  # max(1, int(8 * 0.6))
    assert steps["equalization"].value_range == [0.0, 1.0]
    assert layer.layers == [] and [w.name for w in layer.weights] == []
    seeded = RandAugment(seed=1)
    seeded(_images())
    assert [w.name for w in seeded.weights] == ["seed_state"]  # the steps hold none


def test_zero_ops_zero_depth_and_constant_keeping_steps_are_the_identity():
    x = _images(seed=5)
    np.testing.assert_array_equal(_run(RandAugment(num_ops=0, seed=1), x), x)
    # chain_depth 0: every chain is the input, and the weights sum to 1
    np.testing.assert_allclose(_run(AugMix(chain_depth=0, seed=1), x), x, rtol=1e-5, atol=1e-3)
    # constant images, with only steps that keep constants: any mix keeps them
    constant = np.full((3, 7, 6, 3), 77.0, "float32")
    nearest = {"factor": 0.8, "interpolation": "nearest", "seed": 2}
    for layer in (RandAugment(num_ops=4, **nearest), AugMix(alpha=0.7, **nearest)):
        layer._names = CONSTANT_KEEPING
        for _ in range(5):
            np.testing.assert_allclose(_run(layer, constant), constant, atol=1e-3)


def _candidates(layer, x: np.ndarray) -> dict[str, np.ndarray]:
    """With factor 0 every step is deterministic: its output on ``x``."""
    return {name: np.asarray(layer._apply(name, Tensor(x), 0)) for name in layer._names}


def _match(y: np.ndarray, candidates: dict[str, np.ndarray], atol: float) -> list[str]:
    return [k for k, c in candidates.items() if np.max(np.abs(y - c)) <= atol]


def test_rand_augment_factor_zero_outputs_are_single_steps():
    x = _images((2, 8, 8, 3), seed=6)
    layer = RandAugment(num_ops=1, factor=0.0, seed=3)
    candidates = _candidates(layer, x)
    for geometric in ("random_shear", "random_translation", "random_rotation"):
        np.testing.assert_allclose(candidates[geometric], x, atol=1e-3)
    for colour in ("random_brightness", "random_color_degeneration", "random_contrast"):
        np.testing.assert_allclose(candidates[colour], x, atol=1e-3)
    np.testing.assert_allclose(candidates["solarization"], 255.0 - x, atol=1e-3)
    used = set()
    for _ in range(60):
        found = _match(_run(layer, x), candidates, 1e-3)
        assert found
        used.update(found)
    assert used == set(RAND_AUGMENT_STEPS)


def _mix_coefficients(layer, x: np.ndarray, calls: int) -> list[float]:
    """For num_chains = chain_depth = 1 and factor 0: each output is ``x + t (c - x)`` for
    a step's output c; the t of each call whose output differs from x."""
    candidates = _candidates(layer, x)
    coefficients = []
    for _ in range(calls):
        y = _run(layer, x).astype("float64")
        if np.allclose(y, x, atol=1e-2):  # no step, an identity step, or t = 0
            continue
        fits = []
        for c in candidates.values():
            d = c.astype("float64") - x
            if np.max(np.abs(d)) < 1.0:
                continue
            t = float(np.sum((y - x) * d) / np.sum(d * d))
            if np.max(np.abs(x + t * d - y)) <= 1e-2:
                fits.append(t)
        assert fits, "an AugMix output that is no mix of the input and one step's output"
        assert all(-1e-6 <= t <= 1 + 1e-6 for t in fits)
        coefficients.append(fits[0])
    return coefficients


def test_aug_mix_is_a_convex_mix_with_beta_weights():
    x = _images((2, 8, 8, 3), seed=7)
    uniform = _mix_coefficients(AugMix(num_chains=1, chain_depth=1, factor=0.0, seed=1), x, 300)
    # alpha = 1: 1 - w ~ Beta(1, 1), uniform on [0, 1]: mean 1/2, variance 1/12
    assert len(uniform) > 60
    assert abs(np.mean(uniform) - 0.5) < 0.1
    assert abs(np.var(uniform) - 1 / 12) < 0.03
    peaked = _mix_coefficients(
        AugMix(num_chains=1, chain_depth=1, factor=0.0, alpha=200.0, seed=2), x, 200
    )
    assert len(peaked) > 40 and np.max(np.abs(np.asarray(peaked) - 0.5)) < 0.15


def test_gradients_reach_the_input_in_training():
    x = Tensor(_images((2, 6, 6, 3), seed=8).astype("float64"), requires_grad=True)
    layer = AugMix(dtype="float64", seed=4, all_ops=True)
    layer._names = ("random_rotation", "random_contrast", "random_brightness")
    out = layer(x)
    out.sum().backward()
    assert x.grad is not None and np.all(np.isfinite(x.grad)) and np.any(x.grad != 0)


KERAS_SIDE = textwrap.dedent(
    """
    import json, random, sys
    from pathlib import Path
    import numpy as np
    import keras

    root = Path(sys.argv[1])
    random.seed(0)
    cases = json.loads((root / "cases.json").read_text())
    configs = {}
    for key, (cls, kwargs) in cases.items():
        config = getattr(keras.layers, cls)(**kwargs).get_config()
        config.pop("dtype")
        configs[key] = config
    (root / "configs.json").write_text(json.dumps(configs))
    x = np.load(root / "x.npy")
    outs = []
    for seed in range(80):
        layer = keras.layers.RandAugment(num_ops=1, factor=0.0, seed=seed)
        outs.append(keras.ops.convert_to_numpy(layer(x, training=True)))
    np.save(root / "rand_augment.npy", np.stack(outs))
    infer = keras.layers.RandAugment(seed=1)(x, training=False)
    np.save(root / "inference.npy", keras.ops.convert_to_numpy(infer))
    outs = []
    for seed in range(80):
        layer = keras.layers.AugMix(num_chains=1, chain_depth=1, factor=0.0, seed=seed)
        outs.append(keras.ops.convert_to_numpy(layer(x, training=True)))
    np.save(root / "aug_mix.npy", np.stack(outs))
    """
)

CONFIG_CASES = {
    "ra_default": ("RandAugment", {}),
    "ra_args": (
        "RandAugment",
        {
            "value_range": [0, 1],
            "num_ops": 3,
            "factor": [0.2, 0.7],
            "interpolation": "nearest",
            "seed": 4,
            "data_format": "channels_first",
        },
    ),
    "am_default": ("AugMix", {}),
    "am_args": (
        "AugMix",
        {
            "value_range": [-1, 1],
            "num_chains": 2,
            "chain_depth": 4,
            "factor": 0.6,
            "alpha": 0.5,
            "all_ops": False,
            "seed": 3,
        },
    ),
}


def test_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    x = _images((2, 8, 8, 3), seed=9)
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    (tmp_path / "cases.json").write_text(json.dumps(CONFIG_CASES))
    run_keras_side(KERAS_SIDE, tmp_path)
    # configs: the same keys, the same values (pairs as lists; names differ)
    theirs = json.loads((tmp_path / "configs.json").read_text())
    for key, (cls, kwargs) in CONFIG_CASES.items():
        mine = json.loads(json.dumps(LAYERS[cls](**kwargs).get_config()))
        mine.pop("dtype")
        assert set(mine) == set(theirs[key]), key
        for field in set(mine) - {"name"}:
            a, b = mine[field], theirs[key][field]
            if isinstance(a, list):
                np.testing.assert_allclose(a, b, err_msg=f"{key}.{field}")
            else:
                assert a == b, f"{key}.{field}: {a!r} != {b!r}"
    # inference: the input
    np.testing.assert_array_equal(np.load(tmp_path / "inference.npy"), x)
    # RandAugment, factor 0, one op: Keras' outputs and ours are the same finite set
    layer = RandAugment(num_ops=1, factor=0.0, seed=1)
    candidates = _candidates(layer, x)
    keras_outputs = np.load(tmp_path / "rand_augment.npy")
    keras_used = set()
    for y in keras_outputs:
        found = _match(y, candidates, 0.05)
        assert found, "a Keras RandAugment output that no step of ours gives"
        keras_used.update(found)
    distinct = {k: c for k, c in candidates.items() if not np.allclose(c, x, atol=1e-3)}
    assert set(distinct) <= keras_used  # Keras produced each non-identity output of ours
    # AugMix, one chain of depth one, factor 0: x + t (c - x) with t in [0, 1] for one of
    # our steps' outputs c, in Keras too
    for y in np.load(tmp_path / "aug_mix.npy").astype("float64"):
        ok = np.allclose(y, x, atol=0.05)
        for c in candidates.values():
            d = c.astype("float64") - x
            if np.max(np.abs(d)) < 1.0:
                continue
            t = float(np.sum((y - x) * d) / np.sum(d * d))
            ok = ok or (-1e-3 <= t <= 1.001 and np.max(np.abs(x + t * d - y)) <= 0.05)
        assert ok, "a Keras AugMix output that is no convex mix of the input and a step"
