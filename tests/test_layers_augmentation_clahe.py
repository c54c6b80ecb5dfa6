"""ContrastLimitedAdaptiveHistogramEqualization (CLAHE) against real Keras 3 (PyTorch
backend, in a subprocess) on random, low-contrast, constant, integer, one-image,
channels_first, value_range (0, 1) and reversed-range images with several grids and clip
limits; output dtypes; training vs inference; configs; argument and rank errors; no
gradient; an independent NumPy reference (global equalization); the TensorFlow-backend
variant of the clip limit; and the registry-wide layer contract for this layer."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.augmentation_clahe import ContrastLimitedAdaptiveHistogramEqualization, clahe
from dendrite.layers.input_layer import Input
from dendrite.models.model import Model
from dendrite.testing.keras_side import run_keras_side

CLAHE = ContrastLimitedAdaptiveHistogramEqualization
NAME = "ContrastLimitedAdaptiveHistogramEqualization"


def _cases() -> dict[str, tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(7)
    u8 = np.uint8
    return {
        "random": (rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32), {}),
        "random_uint8": (rng.integers(0, 256, (2, 32, 32, 3)).astype(u8), {}),
        "random_grid_2x2": (
            rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32),
            {"tile_grid_size": (2, 2)},
        ),
        "low_contrast": (
            (100 + rng.uniform(0, 12, (2, 24, 20, 1))).astype(np.float32),
            {"tile_grid_size": (3, 4), "clip_limit": 2.0},
        ),
        "low_contrast_uint8": (
            (100 + rng.integers(0, 12, (2, 24, 20, 1))).astype(u8),
            {"tile_grid_size": (3, 4), "clip_limit": 2.0},
        ),
        "low_contrast_big_limit": (
            (60 + rng.uniform(0, 30, (1, 40, 40, 2))).astype(np.float32),
            {"tile_grid_size": (2, 2), "clip_limit": 40.0},
        ),
        "constant": (np.full((1, 16, 16, 2), 77.3, np.float32), {}),
        "constant_uint8": (np.full((2, 16, 16, 1), 200, u8), {"tile_grid_size": (2, 2)}),
        "one_image_grid_not_dividing": (
            rng.uniform(0, 255, (13, 17, 3)).astype(np.float32),
            {"tile_grid_size": (3, 5), "clip_limit": 1.5},
        ),
        "channels_first": (
            rng.uniform(0, 255, (2, 3, 20, 18)).astype(np.float32),
            {"data_format": "channels_first", "tile_grid_size": (4, 4), "clip_limit": 3.0},
        ),
        "channels_first_one_image": (
            rng.uniform(0, 255, (2, 9, 11)).astype(np.float32),
            {"data_format": "channels_first", "tile_grid_size": (2, 3)},
        ),
        "unit_range": (
            rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32),
            {"value_range": (0, 1), "tile_grid_size": (2, 2), "clip_limit": 2.5},
        ),
        "unit_range_uint8": (
            rng.integers(0, 2, (1, 8, 8, 1)).astype(u8),
            {"value_range": (0, 1), "tile_grid_size": (2, 2)},
        ),
        "reversed_range": (
            rng.uniform(0, 1, (1, 16, 16, 1)).astype(np.float32),
            {"value_range": (1, 0), "tile_grid_size": (2, 2)},
        ),
        "no_clip": (rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32), {"clip_limit": 0}),
        "negative_clip": (
            rng.uniform(0, 255, (1, 12, 12, 1)).astype(np.float32),
            {"clip_limit": -1.0, "tile_grid_size": (3, 3)},
        ),
        "out_of_range_values": (
            rng.uniform(-50, 300, (1, 16, 16, 1)).astype(np.float32),
            {"tile_grid_size": (2, 2)},
        ),
        "int32": (
            rng.integers(0, 256, (1, 16, 16, 1)).astype(np.int32),
            {"tile_grid_size": (2, 2)},
        ),
        "smaller_than_grid": (rng.uniform(0, 255, (3, 3, 1)).astype(np.float32), {}),
        "wide_tiles": (
            rng.uniform(0, 255, (1, 64, 48, 3)).astype(np.float32),
            {"tile_grid_size": (4, 3), "clip_limit": 2.0},
        ),
    }


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import keras

    root = Path(sys.argv[1])
    L = keras.layers.ContrastLimitedAdaptiveHistogramEqualization
    inputs = np.load(root / "inputs.npz")
    kwargs = json.loads((root / "kwargs.json").read_text())
    out, info = {}, {"dtypes": {}, "inference_same": {}}
    for name, kw in kwargs.items():
        layer = L(**kw)
        trained = keras.ops.convert_to_numpy(layer(inputs[name]))
        inferred = keras.ops.convert_to_numpy(layer(inputs[name], training=False))
        out[name] = trained
        info["dtypes"][name] = str(trained.dtype)
        info["inference_same"][name] = bool(np.array_equal(trained, inferred))
    np.savez(root / "outputs.npz", **out)
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3))
    for dt in ["uint8", "int32", "float16", "float32", "float64"]:
        y = L(tile_grid_size=(2, 2))(x.astype(dt))
        info["dtypes"]["in_" + dt] = str(keras.ops.convert_to_numpy(y).dtype)
    y = L(tile_grid_size=(2, 2), dtype="float64")(x)
    info["dtypes"]["layer_float64"] = str(keras.ops.convert_to_numpy(y).dtype)
    np.save(root / "layer_float64.npy", keras.ops.convert_to_numpy(y))
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, L(tile_grid_size=(2, 2))(inp))
    predicted = model.predict(x.astype("float32"), verbose=0)
    direct = keras.ops.convert_to_numpy(L(tile_grid_size=(2, 2))(x.astype("float32")))
    info["predict_applies"] = bool(np.array_equal(predicted, direct))
    info["predict_changes"] = bool(not np.allclose(predicted, x))
    config = L().get_config()
    info["keys"] = sorted(config)
    info["defaults"] = {k: config[k] for k in ("value_range", "clip_limit", "tile_grid_size")}
    (root / "info.json").write_text(json.dumps(info))
    """
)


@pytest.fixture(scope="module")
def keras_side(tmp_path_factory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("clahe_keras")
    cases = _cases()
    np.savez(root / "inputs.npz", **{k: v[0] for k, v in cases.items()})
    (root / "kwargs.json").write_text(json.dumps({k: v[1] for k, v in cases.items()}))
    run_keras_side(KERAS_SIDE, root, backend="torch")
    outputs = np.load(root / "outputs.npz")
    info = json.loads((root / "info.json").read_text())
    info["layer_float64"] = np.load(root / "layer_float64.npy")
    return {k: outputs[k] for k in outputs.files}, info


def _scale(kwargs: dict) -> float:
    low, high = kwargs.get("value_range", (0, 255))
    return abs(high - low)


@pytest.mark.parametrize("case", sorted(_cases()))
def test_matches_keras(keras_side, case) -> None:
    outputs, info = keras_side
    x, kwargs = _cases()[case]
    expected = outputs[case]
    got = np.asarray(CLAHE(**kwargs)(x))
    assert got.shape == expected.shape == x.shape
    assert got.dtype == expected.dtype, case
    if got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected, err_msg=case)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * _scale(kwargs), err_msg=case)
    assert info["inference_same"][case], f"Keras changed its output with training=False: {case}"
    np.testing.assert_array_equal(np.asarray(CLAHE(**kwargs)(x, training=False)), got)


def test_output_dtypes_match_keras(keras_side) -> None:
    _, info = keras_side
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3))
    for dt in ["uint8", "int32", "float16", "float32", "float64"]:
        got = np.asarray(CLAHE(tile_grid_size=(2, 2))(x.astype(dt)))
        assert got.dtype.name == info["dtypes"]["in_" + dt], dt
    got = np.asarray(CLAHE(tile_grid_size=(2, 2), dtype="float64")(x))
    assert got.dtype.name == info["dtypes"]["layer_float64"] == "float64"
    np.testing.assert_allclose(got, info["layer_float64"], rtol=0, atol=1e-4 * 255)


def test_applied_in_training_and_inference(keras_side) -> None:
    _, info = keras_side
    assert info["predict_applies"] and info["predict_changes"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    layer = CLAHE(tile_grid_size=(2, 2))
    direct = np.asarray(layer(x))
    assert not np.allclose(direct, x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), direct)
    inputs = Input(shape=(8, 8, 3))
    model = Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model.predict(x, verbose=0), direct)


def test_symbolic_integer_input_keeps_its_dtype() -> None:
    x = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    layer = CLAHE(tile_grid_size=(2, 2))
    inputs = Input(shape=(16, 16, 3), dtype="uint8")
    outputs = layer(inputs)
    assert outputs.dtype == "uint8" and tuple(outputs.shape) == (None, 16, 16, 3)
    predicted = Model(inputs, outputs).predict(x, verbose=0)
    np.testing.assert_array_equal(predicted, np.asarray(layer(x)))
    # shapes alone (placeholders too large to run) still give uint8
    assert CLAHE()(Input(shape=(2048, 2048, 3), dtype="uint8")).dtype == "uint8"


def test_config_keys_and_defaults_match_keras(keras_side) -> None:
    _, info = keras_side
    config = CLAHE().get_config()
    assert sorted(config) == info["keys"]
    defaults = info["defaults"]
    assert config["value_range"] == list(defaults["value_range"])
    assert config["clip_limit"] == defaults["clip_limit"]
    assert config["tile_grid_size"] == list(defaults["tile_grid_size"])


def test_config_round_trip() -> None:
    layer = CLAHE(value_range=(1, 0), clip_limit=2.5, tile_grid_size=(3, 2), name="c")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["value_range"] == [1.0, 0.0]  # order kept, as Keras
    assert config["clip_limit"] == 2.5 and config["tile_grid_size"] == [3, 2]
    clone = CLAHE.from_config(config)
    assert clone.get_config() == config
    x = np.random.default_rng(2).uniform(0, 1, (1, 9, 8, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))


def test_channels_first_is_channels_last_moved() -> None:
    x = np.random.default_rng(3).uniform(0, 255, (2, 3, 10, 12)).astype(np.float32)
    first = np.asarray(CLAHE(data_format="channels_first", tile_grid_size=(2, 3))(x))
    last = np.asarray(
        CLAHE(data_format="channels_last", tile_grid_size=(2, 3))(np.moveaxis(x, 1, -1))
    )
    np.testing.assert_array_equal(first, np.moveaxis(last, -1, 1))


def test_one_tile_without_clipping_is_global_equalization() -> None:
    """An independent reference: one tile, no clipping is plain histogram equalization
    with the table ``255 (c_k - c_0) / (N - c_0)`` of each channel."""
    rng = np.random.default_rng(4)
    x = rng.integers(20, 90, (2, 7, 9, 2)).astype(np.float64) + rng.uniform(0, 0.99, (2, 7, 9, 2))
    got = np.asarray(CLAHE(clip_limit=0, tile_grid_size=(1, 1), dtype="float64")(x))
    for b in range(2):
        for c in range(2):
            levels = np.trunc(x[b, :, :, c]).astype(int)
            cdf = np.cumsum(np.bincount(levels.ravel(), minlength=256))
            table = 255.0 * (cdf - cdf[0]) / (levels.size - cdf[0])
            np.testing.assert_allclose(got[b, :, :, c], table[levels], rtol=0, atol=1e-3)


def test_clip_limit_below_one_count_returns_the_levels() -> None:
    """``clip_limit N / 256 < 1``: the integer limit is 0, every histogram flattens and the
    table is the identity (Keras on PyTorch)."""
    x = np.random.default_rng(5).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
    got = np.asarray(CLAHE(clip_limit=4.0)(x))  # 2 x 2 tiles: N = 4, 4 * 4 / 256 < 1
    np.testing.assert_array_equal(got, np.trunc(x))


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="no TensorFlow")
def test_tensorflow_backend_keeps_the_fractional_limit(tmp_path) -> None:
    """Keras on TensorFlow counts in float32: ``clahe(..., integer_limit=False)``."""
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 255, (2, 24, 20, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import numpy as np
        import keras
        root = Path(sys.argv[1])
        x = np.load(root / "x.npy")
        layer = keras.layers.ContrastLimitedAdaptiveHistogramEqualization(
            tile_grid_size=(3, 4), clip_limit=2.5
        )
        np.save(root / "y.npy", keras.ops.convert_to_numpy(layer(x)))
        """
    )
    run_keras_side(script, tmp_path, backend="tensorflow")
    expected = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(
        clahe(x, (3, 4), 2.5, integer_limit=False), expected, rtol=0, atol=1e-4 * 255
    )
    # 8 x 5 tiles: the PyTorch rule (limit trunc(2.5 * 40 / 256) = 0) differs
    assert not np.allclose(np.asarray(CLAHE(tile_grid_size=(3, 4), clip_limit=2.5)(x)), expected)


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"value_range": (0, 1, 2)}, "value_range=(0, 1, 2)"),
        ({"value_range": 255}, "value_range=255"),
        ({"value_range": (5, 5)}, "value_range=(5, 5)"),
        ({"value_range": (0, float("inf"))}, "value_range=(0, inf)"),
        ({"value_range": ("0", 1)}, "value_range=('0', 1)"),
        ({"clip_limit": "4"}, "clip_limit='4'"),
        ({"clip_limit": float("nan")}, "clip_limit=nan"),
        ({"clip_limit": True}, "clip_limit=True"),
        ({"clip_limit": None}, "clip_limit=None"),
        ({"tile_grid_size": 8}, "tile_grid_size=8"),
        ({"tile_grid_size": (0, 2)}, "tile_grid_size=(0, 2)"),
        ({"tile_grid_size": (2, -1)}, "tile_grid_size=(2, -1)"),
        ({"tile_grid_size": (2.0, 2)}, "tile_grid_size=(2.0, 2)"),
        ({"tile_grid_size": (2, 2, 2)}, "tile_grid_size=(2, 2, 2)"),
        ({"data_format": "channels_middle"}, "'channels_middle'"),
    ],
)
def test_argument_errors_name_the_layer_and_the_value(kwargs, bad) -> None:
    with pytest.raises(ValueError) as error:
        CLAHE(**kwargs)
    assert NAME in str(error.value) and bad in str(error.value)


def test_arguments_keras_accepts_are_accepted() -> None:
    """Keras checks none of its arguments; these work there and here: a non-positive clip
    limit (no clipping), a grid that does not divide the image, a reversed value range,
    more tiles than pixels, an infinite clip limit (no clipping)."""
    x = np.random.default_rng(8).uniform(0, 255, (1, 10, 14, 1)).astype(np.float32)
    no_clip = np.asarray(CLAHE(clip_limit=0, tile_grid_size=(3, 4))(x))
    for limit in (-2.0, float("inf")):
        got = np.asarray(CLAHE(clip_limit=limit, tile_grid_size=(3, 4))(x))
        np.testing.assert_array_equal(got, no_clip)
    assert np.asarray(CLAHE(tile_grid_size=(20, 20))(x)).shape == x.shape
    assert np.asarray(CLAHE(value_range=(255, 0))(x)).shape == x.shape


@pytest.mark.parametrize("shape", [(16, 16), (1, 2, 8, 8, 3)])
def test_wrong_rank_raises_naming_the_layer(shape) -> None:
    layer = CLAHE(name="my_clahe")
    with pytest.raises(ValueError, match="my_clahe"):
        layer(np.zeros(shape, np.float32))


def test_no_gradient_reaches_the_input() -> None:
    x = Tensor(np.random.default_rng(9).uniform(0, 255, (1, 8, 8, 1)), requires_grad=True)
    out = CLAHE(tile_grid_size=(2, 2), dtype="float64")(x)
    assert out.dtype == np.float64 and not out.requires_grad


def _contract_module():
    path = Path(__file__).with_name("test_layer_contract.py")
    spec = importlib.util.spec_from_file_location("_clahe_contract", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # another layer module failing to import
        pytest.skip(f"the contract module does not import: {error}")
    return module


@pytest.mark.parametrize(
    "check",
    [
        "test_lazy_build",
        "test_output_shape_matches_compute_output_shape",
        "test_directional_gradcheck_float64",
        "test_config_round_trip",
        "test_one_training_step_in_a_model_changes_the_weights",
        "test_wrong_rank_raises_value_error_naming_the_layer",
    ],
)
def test_layer_contract(check) -> None:
    contract = _contract_module()
    assert NAME in contract.LAYERS
    getattr(contract, check)(NAME)


def test_layer_contract_shapes_alone(monkeypatch) -> None:
    contract = _contract_module()
    contract.test_building_from_shapes_alone_matches_running_on_placeholders(NAME, monkeypatch)
