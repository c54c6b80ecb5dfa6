"""MaxNumBoundingBoxes against Keras 3's ``keras.layers.MaxNumBoundingBoxes``.

Keras (torch backend) runs in its own process, once for the module, on the same dicts:
padding (fewer boxes than ``max_number``), truncation (more), exactly ``max_number``, one
image, other keys passing through, images alone, and a custom ``fill_value``; outputs are
compared exactly (values and dtypes), and so are the ``get_config`` keys and
``compute_output_shape``. Then dendrite's own checks: errors naming the layer, ragged
lists, bounding boxes alone, inference, the config round trip and symbolic use.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.input_layer import Input
from dendrite.layers.max_num_bounding_boxes import MaxNumBoundingBoxes
from dendrite.models.model import Model
from dendrite.testing.keras_side import run_keras_side

RNG = np.random.default_rng(3)
IMAGES = RNG.uniform(0, 255, (2, 6, 7, 3)).astype("float32")
BOXES = RNG.uniform(0, 6, (2, 4, 4)).astype("float32")
LABELS = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])


def _data(batched: bool = True, **extra: Any) -> dict:
    if batched:
        data = {"images": IMAGES, "bounding_boxes": {"boxes": BOXES, "labels": LABELS}}
    else:
        data = {"images": IMAGES[0], "bounding_boxes": {"boxes": BOXES[0], "labels": LABELS[0]}}
    return {**data, **extra}


# name -> (constructor kwargs, data)
CASES: dict[str, tuple[dict, Any]] = {
    "pad": ({"max_number": 6, "bounding_box_format": "xyxy"}, _data()),
    "truncate": ({"max_number": 2, "bounding_box_format": "xyxy"}, _data()),
    "exact": ({"max_number": 4, "bounding_box_format": "xyxy"}, _data()),
    "zero": ({"max_number": 0, "bounding_box_format": "xyxy"}, _data()),
    "one_image_pad": ({"max_number": 7, "bounding_box_format": "xywh"}, _data(False)),
    "one_image_truncate": ({"max_number": 3, "bounding_box_format": "xyxy"}, _data(False)),
    "fill_value": ({"max_number": 5, "fill_value": 0, "bounding_box_format": "xyxy"}, _data()),
    "other_keys": (
        {"max_number": 5, "bounding_box_format": "xyxy"},
        _data(labels=np.array([0, 1]), segmentation_masks=np.zeros((2, 6, 7, 1), "int32")),
    ),
    "float_labels_int_boxes": (
        {"max_number": 5, "bounding_box_format": "xyxy"},
        {
            "images": IMAGES,
            "bounding_boxes": {"boxes": BOXES.astype("int64"), "labels": LABELS * 0.5},
        },
    ),
    "images_alone": ({"max_number": 3}, IMAGES),
    "one_image_alone": ({"max_number": 3}, IMAGES[0]),
    "uint8_images": ({"max_number": 3, "bounding_box_format": "xyxy"}, _data()),
    "no_format": ({"max_number": 3}, _data()),
}
CASES["uint8_images"][1]["images"] = IMAGES.astype("uint8")

SHAPES = {
    "dict": {
        "images": (None, 6, 7, 3),
        "bounding_boxes": {"boxes": (None, 4, 4), "labels": (None, 4)},
    },
    "images": (None, 6, 7, 3),
}

KERAS_SIDE = """
import copy, pickle, sys
from pathlib import Path
import numpy as np
import keras

root = Path(sys.argv[1])
cases, shapes = pickle.loads((root / "cases.pkl").read_bytes())

def numpy(value):
    if isinstance(value, dict):
        return {k: numpy(v) for k, v in value.items()}
    return keras.ops.convert_to_numpy(value)

results = {}
for name, (kwargs, data) in cases.items():
    layer = keras.layers.MaxNumBoundingBoxes(**kwargs)
    try:
        results[name] = ("ok", numpy(layer(copy.deepcopy(data))))
    except Exception as error:
        results[name] = ("error", type(error).__name__, str(error))
layer = keras.layers.MaxNumBoundingBoxes(max_number=5)
results["config"] = sorted(layer.get_config())
layer = keras.layers.MaxNumBoundingBoxes(max_number=5, fill_value=0, bounding_box_format="yxyx")
results["config_format"] = sorted(layer.get_config())
results["config_values"] = {
    k: v for k, v in layer.get_config().items() if k in ("max_number", "bounding_box_format")
}
results["shapes"] = {
    k: layer.compute_output_shape(copy.deepcopy(v)) for k, v in shapes.items()
}
(root / "results.pkl").write_bytes(pickle.dumps(results))
"""


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("keras_max_num_boxes")
    (root / "cases.pkl").write_bytes(pickle.dumps((CASES, SHAPES)))
    run_keras_side(KERAS_SIDE, root)
    return pickle.loads((root / "results.pkl").read_bytes())


def _numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    return np.asarray(value.data) if isinstance(value, Tensor) else np.asarray(value)


def _assert_equal(got: Any, want: Any, name: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{name}: {got} vs {want}"
        for key in want:
            _assert_equal(got[key], want[key], f"{name}[{key!r}]")
        return
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs Keras {want.shape}"
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} vs Keras {want.dtype}"
    np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras(name: str, keras_results: dict) -> None:
    kwargs, data = CASES[name]
    expected = keras_results[name]
    layer = MaxNumBoundingBoxes(**kwargs)
    if expected[0] == "error":
        assert expected[1] == "ValueError", expected
        with pytest.raises(ValueError, match=layer.name):
            layer(data)
        return
    _assert_equal(_numpy(layer(data)), expected[1], name)


def test_truncation_keeps_the_first_boxes(keras_results: dict) -> None:
    out = MaxNumBoundingBoxes(2, bounding_box_format="xyxy")(_data())["bounding_boxes"]
    np.testing.assert_array_equal(out["boxes"].data, BOXES[:, :2])
    np.testing.assert_array_equal(out["labels"].data, LABELS[:, :2])
    padded = _numpy(keras_results["pad"][1]["bounding_boxes"])
    assert (padded["boxes"][:, 4:] == -1).all() and (padded["labels"][:, 4:] == -1).all()


def test_get_config_keys_equal_keras(keras_results: dict) -> None:
    assert sorted(MaxNumBoundingBoxes(max_number=5).get_config()) == keras_results["config"]
    config = MaxNumBoundingBoxes(max_number=5, bounding_box_format="yxyx").get_config()
    assert sorted(config) == keras_results["config_format"]
    assert {k: config[k] for k in keras_results["config_values"]} == keras_results["config_values"]


def test_fill_value_survives_the_config_round_trip() -> None:
    # Keras leaves fill_value out of its config (a clone pads with -1 again); dendrite adds
    # the key only when it is not the default, so default configs keep Keras' keys
    layer = MaxNumBoundingBoxes(max_number=5, fill_value=0, bounding_box_format="xyxy")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["fill_value"] == 0
    clone = MaxNumBoundingBoxes.from_config(config)
    out = clone(_data())["bounding_boxes"]
    assert (out["boxes"].data[:, 4:] == 0).all()
    assert clone.get_config() == layer.get_config()


def test_compute_output_shape_matches_keras(keras_results: dict) -> None:
    layer = MaxNumBoundingBoxes(max_number=5, bounding_box_format="yxyx")
    want = keras_results["shapes"]
    got = layer.compute_output_shape(SHAPES["dict"])
    assert got["images"] == tuple(want["dict"]["images"])
    for key in ("boxes", "labels"):
        assert got["bounding_boxes"][key] == tuple(want["dict"]["bounding_boxes"][key])
    assert layer.compute_output_shape(SHAPES["images"]) == tuple(want["images"])
    one = layer.compute_output_shape(
        {"images": (6, 7, 3), "bounding_boxes": {"boxes": (4, 4), "labels": (4,)}}
    )
    assert one["bounding_boxes"] == {"boxes": (5, 4), "labels": (5,)}


def test_output_shape_agrees_with_the_call() -> None:
    layer = MaxNumBoundingBoxes(max_number=3, bounding_box_format="xyxy")
    for batched in (True, False):
        data = _data(batched)
        shapes = {
            "images": data["images"].shape,
            "bounding_boxes": {k: v.shape for k, v in data["bounding_boxes"].items()},
        }
        out = layer(data)
        predicted = layer.compute_output_shape(shapes)
        assert predicted["bounding_boxes"]["boxes"] == out["bounding_boxes"]["boxes"].shape
        assert predicted["bounding_boxes"]["labels"] == out["bounding_boxes"]["labels"].shape


def test_inference_pads_too() -> None:
    layer = MaxNumBoundingBoxes(max_number=6, bounding_box_format="xyxy")
    out = layer(_data(), training=False)["bounding_boxes"]
    assert out["boxes"].shape == (2, 6, 4) and out["labels"].shape == (2, 6)


def test_ragged_lists_per_image_come_back_dense() -> None:
    boxes = [np.ones((1, 4)), np.zeros((5, 4)), np.full((3, 4), 2.0)]
    labels = [np.array([7]), np.arange(5), np.array([1, 2, 3])]
    out = MaxNumBoundingBoxes(4)({"boxes": boxes, "labels": labels})
    assert out["boxes"].shape == (3, 4, 4) and out["boxes"].dtype == np.float32
    np.testing.assert_array_equal(
        out["labels"].data, [[7, -1, -1, -1], [0, 1, 2, 3], [1, 2, 3, -1]]
    )
    np.testing.assert_array_equal(out["boxes"].data[0, 1:], -1)


def test_bounding_boxes_alone() -> None:
    out = MaxNumBoundingBoxes(5)({"boxes": BOXES, "labels": LABELS})
    assert out["boxes"].shape == (2, 5, 4) and out["labels"].shape == (2, 5)
    one = MaxNumBoundingBoxes(2)({"boxes": BOXES[0], "labels": LABELS[0]})
    assert one["boxes"].shape == (2, 4) and one["labels"].shape == (2,)


def test_errors_name_the_layer_and_the_received_values() -> None:
    layer = MaxNumBoundingBoxes(3, bounding_box_format="xyxy", name="boxes_cap")
    with pytest.raises(ValueError, match=r"boxes_cap.*rank 4.*rank 3.*\(2, 3\).*rank 2"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"boxes_cap.*'boxes' and 'labels'.*\['boxes'\]"):
        layer({"images": IMAGES, "bounding_boxes": {"boxes": BOXES}})
    with pytest.raises(ValueError, match=r"boxes_cap.*'images'.*\['pixels'\]"):
        layer({"pixels": IMAGES})
    with pytest.raises(ValueError, match=r"boxes_cap.*batch of images.*rank 3.*\(4, 4\)"):
        layer({"images": IMAGES, "bounding_boxes": {"boxes": BOXES[0], "labels": LABELS[0]}})
    with pytest.raises(ValueError, match=r"boxes_cap.*bounding_box_format"):
        MaxNumBoundingBoxes(3, name="boxes_cap")(_data())
    with pytest.raises(ValueError, match=r"max_number.*received max_number=-1"):
        MaxNumBoundingBoxes(-1)
    with pytest.raises(ValueError, match=r"data_format.*received data_format='nhwc'"):
        MaxNumBoundingBoxes(3, data_format="nhwc")


def test_images_pass_through_a_model_unchanged() -> None:
    inputs = Input(shape=(6, 7, 3))
    model = Model(inputs, MaxNumBoundingBoxes(3)(inputs))
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES)
