"""``dendrite.utils.bounding_boxes`` against Keras 3's ``keras.utils.bounding_boxes``.

Every case is run on the same arrays by real Keras (torch backend, in its own process, one
run for the module) and by dendrite; values are compared within float32 rounding, dtypes
exactly, and where Keras raises, dendrite raises the same exception type. Then the checks
of dendrite's own: error messages naming the expected and received values, Tensors in and
out, dicts, the encode/decode round trip and the documented differences from Keras.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.testing.keras_side import run_keras_side
from dendrite.utils import bounding_box_formats
from dendrite.utils import bounding_boxes as bb

FORMATS = bounding_box_formats.SUPPORTED_FORMATS
HEIGHT, WIDTH = 50, 80


def _xyxy(shape: tuple, seed: int) -> np.ndarray:
    """Valid "xyxy" boxes inside a HEIGHT x WIDTH image (some running over its edges)."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-10, WIDTH - 10, shape)
    y1 = rng.uniform(-10, HEIGHT - 10, shape)
    w = rng.uniform(1, 40, shape)
    h = rng.uniform(1, 30, shape)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1).astype("float32")


def _in_format(boxes: np.ndarray, fmt: str) -> np.ndarray:
    return np.asarray(
        bounding_box_formats.convert_array(boxes, "xyxy", fmt, HEIGHT, WIDTH, "float64")
    ).astype("float32")


def _cases() -> dict[str, tuple[str, tuple, dict]]:
    """name -> (function, args, kwargs), the same for both sides."""
    cases: dict[str, tuple[str, tuple, dict]] = {}
    batched, single = _xyxy((2, 5), 0), _xyxy((6,), 1)
    # convert_format: every pair of formats, batched, with the image size
    for source in FORMATS:
        for target in FORMATS:
            boxes = _in_format(batched, source)
            cases[f"convert_{source}_to_{target}"] = (
                "convert_format",
                (boxes, source, target),
                {"height": HEIGHT, "width": WIDTH},
            )
    for source, target in [("xyxy", "center_yxhw"), ("rel_xywh", "rel_yxyx"), ("yxyx", "xywh")]:
        cases[f"convert_unbatched_{source}_{target}"] = (
            "convert_format",
            (_in_format(single, source), source, target),
            {"height": HEIGHT, "width": WIDTH},
        )
    cases["convert_no_size_absolute"] = ("convert_format", (batched, "xyxy", "center_xywh"), {})
    cases["convert_upper_case"] = ("convert_format", (batched, "XYXY", "Center_YXHW"), {})
    cases["convert_float64"] = (
        "convert_format",
        (batched, "xyxy", "rel_xywh"),
        {"height": HEIGHT, "width": WIDTH, "dtype": "float64"},
    )
    cases["convert_int_boxes"] = (
        "convert_format",
        (np.array([[10, 20, 50, 60], [0, 5, 9, 7]]), "xyxy", "xywh"),
        {},
    )
    cases["convert_int_dtype"] = (
        "convert_format",
        (np.array([[10, 20, 50, 60]]), "xyxy", "yxyx"),
        {"dtype": "int32"},
    )
    cases["convert_dict"] = (
        "convert_format",
        ({"boxes": single, "labels": np.arange(6)}, "xyxy", "rel_center_xywh"),
        {"height": HEIGHT, "width": WIDTH},
    )
    cases["convert_bad_source"] = ("convert_format", (batched, "xyz", "xyxy"), {})
    cases["convert_bad_target"] = ("convert_format", (batched, "xyxy", "center_xyxy"), {})
    cases["convert_rel_without_size"] = ("convert_format", (batched, "xyxy", "rel_xyxy"), {})
    cases["convert_last_axis_not_4"] = ("convert_format", (batched[..., :3], "xyxy", "xywh"), {})
    # clip_to_image_size
    labels = np.arange(10).reshape(2, 5)
    wild = batched * 1.5 - 20
    cases["clip_batched_labels"] = (
        "clip_to_image_size",
        ({"boxes": wild, "labels": labels, "extra": np.ones(3)},),
        {"height": HEIGHT, "width": WIDTH},
    )
    cases["clip_unbatched_labels"] = (
        "clip_to_image_size",
        ({"boxes": _xyxy((6,), 2) * 2 - 30, "labels": np.arange(6)},),
        {"height": HEIGHT, "width": WIDTH},
    )
    cases["clip_no_labels"] = (
        "clip_to_image_size",
        ({"boxes": wild},),
        {"height": HEIGHT, "width": WIDTH},
    )
    cases["clip_int_boxes"] = (
        "clip_to_image_size",
        (
            {
                "boxes": np.array([[-10, -20, 150, 160], [50, 40, 70, 80]]),
                "labels": np.array([0, 1]),
            },
        ),
        {"height": 40, "width": 60},
    )
    rel = _in_format(wild, "rel_xyxy")
    cases["clip_rel_xyxy"] = (
        "clip_to_image_size",
        ({"boxes": rel, "labels": labels.astype("float32")},),
        {"bounding_box_format": "rel_xyxy"},
    )
    cases["clip_xyxy_without_size"] = ("clip_to_image_size", ({"boxes": wild},), {})
    cases["clip_other_format"] = (
        "clip_to_image_size",
        ({"boxes": wild},),
        {"height": HEIGHT, "width": WIDTH, "bounding_box_format": "xywh"},
    )
    # crop and pad
    ints = np.array([[10, 20, 50, 60], [70, 80, 100, 120]])
    cases["crop_int"] = ("crop", (ints, 10, 20, 40, 30), {})
    cases["crop_float_batched"] = ("crop", (batched, 5.5, 7.0, 30, 40), {})
    cases["crop_float_unbatched"] = ("crop", (single, 3, 4, 20, 25), {})
    cases["crop_other_format"] = ("crop", (batched, 3, 4, 20, 25), {"bounding_box_format": "yxyx"})
    cases["pad_int"] = ("pad", (ints, 3, 4), {})
    cases["pad_float_batched"] = ("pad", (batched, 2.5, 7.0), {"height": 9, "width": 9})
    cases["pad_float64"] = ("pad", (single.astype("float64"), 1, 2), {})
    cases["pad_other_format"] = ("pad", (batched, 3, 4), {"bounding_box_format": "xywh"})
    # affine_transform: per-image parameters (batch,) as Keras' augmentation layers pass them
    rng = np.random.default_rng(7)
    for i in range(3):
        boxes = _xyxy((2, 4), 10 + i)
        params = {
            "angle": rng.uniform(-40, 40, 2),
            "translate_x": rng.uniform(-0.2, 0.2, 2),
            "translate_y": rng.uniform(-0.2, 0.2, 2),
            "scale": rng.uniform(0.7, 1.3, 2),
            "shear_x": rng.uniform(-15, 15, 2),
            "shear_y": rng.uniform(-15, 15, 2),
        }
        params = {k: v.astype("float32") for k, v in params.items()}
        kwargs = {"height": HEIGHT, "width": WIDTH}
        if i == 2:
            kwargs.update(center_x=np.float32(0.3), center_y=np.float32(0.6))
        cases[f"affine_{i}"] = ("affine_transform", (boxes,), {**params, **kwargs})
    zero = np.zeros(2, "float32")
    cases["affine_identity"] = (
        "affine_transform",
        (batched,),
        {
            "angle": zero,
            "translate_x": zero,
            "translate_y": zero,
            "scale": np.ones(2, "float32"),
            "shear_x": zero,
            "shear_y": zero,
            "height": HEIGHT,
            "width": WIDTH,
        },
    )
    cases["affine_other_format"] = (
        "affine_transform",
        (batched, zero, zero, zero, zero + 1, zero, zero, HEIGHT, WIDTH),
        {"bounding_box_format": "yxyx"},
    )
    # encode / decode
    anchors = _xyxy((5,), 20)
    variance = [0.1, 0.1, 0.2, 0.2]
    image_shape = (HEIGHT, WIDTH, 3)
    for label, fmt in [("xyxy", "xyxy"), ("center_xywh", "center_xywh"), ("rel", "rel_xyxy")]:
        a, b = _in_format(anchors, fmt), _in_format(batched, fmt)
        extra = {"image_shape": image_shape} if fmt.startswith("rel") else {}
        cases[f"encode_{label}_batched"] = ("encode_box_to_deltas", (a, b, fmt, fmt), extra)
        cases[f"encode_{label}_variance"] = (
            "encode_box_to_deltas",
            (a, _in_format(batched[0], fmt), fmt, fmt),
            {**extra, "variance": variance},
        )
    cases["encode_center_xywh_encoding"] = (
        "encode_box_to_deltas",
        (anchors, _in_format(batched, "yxyx"), "xyxy", "yxyx"),
        {"encoding_format": "center_xywh"},
    )
    cases["encode_bad_encoding"] = (
        "encode_box_to_deltas",
        (anchors, batched, "xyxy", "xyxy"),
        {"encoding_format": "xyxy"},
    )
    cases["encode_bad_variance"] = (
        "encode_box_to_deltas",
        (anchors, batched, "xyxy", "xyxy"),
        {"variance": [0.1, 0.2]},
    )
    deltas = np.random.default_rng(21).normal(0, 0.3, (2, 5, 4)).astype("float32")
    cases["decode_xyxy"] = ("decode_deltas_to_boxes", (anchors, deltas, "xyxy", "xyxy"), {})
    cases["decode_to_rel"] = (
        "decode_deltas_to_boxes",
        (anchors, deltas[0], "xyxy", "rel_yxyx"),
        {"variance": variance, "image_shape": image_shape, "encoded_format": "center_xywh"},
    )
    cases["decode_levels"] = (
        "decode_deltas_to_boxes",
        ({"P3": anchors, "P4": anchors[:3] * 2}, {"P3": deltas, "P4": deltas[:, :3]}),
        {"anchor_format": "xyxy", "box_format": "center_xywh"},
    )
    cases["decode_bad_encoding"] = (
        "decode_deltas_to_boxes",
        (anchors, deltas, "xyxy", "xyxy"),
        {"encoded_format": "center_yxyx"},
    )
    # compute_iou
    first, second = _xyxy((2, 4), 30), _xyxy((2, 6), 31)
    second[:, 0] = first[:, 0]  # some exact overlaps
    for fmt in ("xyxy", "yxyx", "xywh", "center_xywh", "rel_xyxy"):
        extra = {"image_shape": image_shape} if fmt.startswith("rel") else {}
        cases[f"iou_{fmt}_33"] = (
            "compute_iou",
            (_in_format(first, fmt), _in_format(second, fmt), fmt),
            extra,
        )
    cases["iou_22"] = ("compute_iou", (first[0], second[1], "xyxy"), {})
    cases["iou_32"] = ("compute_iou", (first, second[1], "xyxy"), {})
    cases["iou_23"] = ("compute_iou", (first[0], second, "xyxy"), {})
    padded = second.copy()
    padded[:, -2:] = -1
    cases["iou_masked_33"] = ("compute_iou", (first, padded, "xyxy"), {"use_masking": True})
    cases["iou_masked_22"] = (
        "compute_iou",
        (padded[0], first[1], "xyxy"),
        {"use_masking": True, "mask_val": -5},
    )
    cases["iou_rank_1"] = ("compute_iou", (first[0, 0], second, "xyxy"), {})
    cases["iou_rel_without_shape"] = ("compute_iou", (first, second, "rel_xyxy"), {})
    # compute_ciou
    other = _xyxy((2, 4), 32)
    other[0, 0] = first[0, 0]
    for fmt in ("xyxy", "yxyx", "center_xywh", "xywh"):
        cases[f"ciou_{fmt}"] = (
            "compute_ciou",
            (_in_format(first, fmt), _in_format(other, fmt), fmt),
            {},
        )
    cases["ciou_unbatched"] = ("compute_ciou", (first[1], other[1], "xyxy"), {})
    cases["ciou_rel_without_shape"] = ("compute_ciou", (first, other, "rel_xyxy"), {})
    return cases


CASES = _cases()

KERAS_SIDE = """
import pickle, sys
from pathlib import Path
import numpy as np
import keras

root = Path(sys.argv[1])
cases = pickle.loads((root / "cases.pkl").read_bytes())

def numpy(value):
    if isinstance(value, dict):
        return {k: numpy(v) for k, v in value.items()}
    if isinstance(value, (int, float)):
        return value
    return keras.ops.convert_to_numpy(value)

results = {"names": sorted(n for n in dir(keras.utils.bounding_boxes) if not n.startswith("_"))}
def tensors(value):
    if isinstance(value, dict):
        return {k: tensors(v) for k, v in value.items()}
    return keras.ops.convert_to_tensor(value) if isinstance(value, np.ndarray) else value

for name, (function, args, kwargs) in cases.items():
    if function == "decode_deltas_to_boxes":  # Keras multiplies an ndarray by a tensor there
        args = tuple(tensors(a) for a in args)
    try:
        out = getattr(keras.utils.bounding_boxes, function)(*args, **kwargs)
        results[name] = ("ok", numpy(out))
    except Exception as error:  # the type is compared
        results[name] = ("error", type(error).__name__, str(error))
(root / "results.pkl").write_bytes(pickle.dumps(results))
"""


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("keras_bounding_boxes")
    (root / "cases.pkl").write_bytes(pickle.dumps(CASES))
    run_keras_side(KERAS_SIDE, root)
    return pickle.loads((root / "results.pkl").read_bytes())


def _numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    if isinstance(value, Tensor):
        return np.asarray(value.data)
    return value


def _assert_same(got: Any, want: Any, name: str, rtol: float, atol: float) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{name}: keys {got} vs {want}"
        for key in want:
            _assert_same(got[key], want[key], f"{name}[{key!r}]", rtol, atol)
        return
    got_array, want_array = np.asarray(got), np.asarray(want)
    assert got_array.shape == want_array.shape, f"{name}: {got_array.shape} vs {want_array.shape}"
    assert got_array.dtype == want_array.dtype, f"{name}: {got_array.dtype} vs {want_array.dtype}"
    np.testing.assert_allclose(got_array, want_array, rtol=rtol, atol=atol, err_msg=name)


def test_the_namespace_has_keras_public_names(keras_results: dict) -> None:
    assert sorted(bb.__all__) == keras_results["names"]
    for name in bb.__all__:
        assert callable(getattr(bb, name))


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_keras(name: str, keras_results: dict) -> None:
    function, args, kwargs = CASES[name]
    expected = keras_results[name]
    call = getattr(bb, function)
    if expected[0] == "error":
        kind = {"ValueError": ValueError, "NotImplementedError": NotImplementedError}
        assert expected[1] in kind, f"Keras raised {expected[1]}: {expected[2]}"
        with pytest.raises(kind[expected[1]]):
            call(*args, **kwargs)
        return
    got = call(*args, **kwargs)
    # float32 arithmetic on both sides; the affine maps differ in intermediate precision
    rtol, atol = (1e-5, 2e-3) if function == "affine_transform" else (1e-5, 1e-5)
    _assert_same(_numpy(got), expected[1], name, rtol, atol)


# --- dendrite's own checks ------------------------------------------------------------------
def test_returns_dendrite_tensors_and_takes_them() -> None:
    boxes = Tensor(_xyxy((3,), 40))
    out = bb.convert_format(boxes, "xyxy", "center_yxhw")
    assert isinstance(out, Tensor) and out.dtype == np.float32
    assert isinstance(bb.compute_iou(boxes, boxes, "xyxy"), Tensor)
    clipped = bb.clip_to_image_size({"boxes": boxes, "labels": [1, 2, 3]}, HEIGHT, WIDTH)
    assert isinstance(clipped["boxes"], Tensor) and isinstance(clipped["labels"], Tensor)


def test_convert_format_dict_is_a_new_dict_with_other_keys_kept() -> None:
    labels = np.array([4, 5])
    data = {"boxes": np.array([[1.0, 2, 3, 4], [0, 0, 2, 2]]), "labels": labels}
    out = bb.convert_format(data, "xyxy", "xywh")
    assert out is not data and out["labels"] is labels
    np.testing.assert_array_equal(out["boxes"].data, [[1, 2, 2, 2], [0, 0, 2, 2]])
    assert data["boxes"].dtype == np.float64  # the caller's dict is left alone


def test_bad_format_error_names_expected_and_received() -> None:
    with pytest.raises(ValueError, match=r"source.*rel_center_xywh.*received source='xyz'"):
        bb.convert_format(np.zeros((1, 4)), "xyz", "xyxy")
    with pytest.raises(ValueError, match=r"target.*xyxy.*received target='corners'"):
        bb.convert_format(np.zeros((1, 4)), "xyxy", "corners")
    with pytest.raises(ValueError, match=r"compute_iou.*received source='cxcywh'"):
        bb.compute_iou(np.zeros((1, 4)), np.zeros((1, 4)), "cxcywh")
    with pytest.raises(ValueError, match=r"height.*width.*height=None, width=None"):
        bb.convert_format(np.zeros((1, 4)), "rel_xyxy", "xyxy")
    with pytest.raises(ValueError, match=r"last axis.*\(2, 3\)"):
        bb.convert_format(np.zeros((2, 3)), "xyxy", "xywh")
    with pytest.raises(ValueError, match=r"center_xywh.*center_yxhw.*received encoding_format='x"):
        bb.encode_box_to_deltas(np.zeros((1, 4)), np.zeros((1, 4)), "xyxy", "xyxy", "xyxy")
    with pytest.raises(ValueError, match=r"4 values.*\[1, 2\]"):
        bb.decode_deltas_to_boxes(
            np.zeros((1, 4)), np.zeros((1, 4)), "xyxy", "xyxy", variance=[1, 2]
        )
    with pytest.raises(ValueError, match=r"rank 2 or 3.*\(4,\)"):
        bb.compute_iou(np.zeros(4), np.zeros((1, 4)), "xyxy")
    with pytest.raises(NotImplementedError, match=r"'xyxy'.*received bounding_box_format='xywh'"):
        bb.crop(np.zeros((1, 4)), 0, 0, 1, 1, bounding_box_format="xywh")


def test_every_format_round_trips() -> None:
    boxes = _xyxy((3, 7), 41).astype("float64")
    for fmt in FORMATS:
        there = bb.convert_format(boxes, "xyxy", fmt, HEIGHT, WIDTH, dtype="float64")
        back = bb.convert_format(there, fmt, "xyxy", HEIGHT, WIDTH, dtype="float64")
        np.testing.assert_allclose(back.data, boxes, rtol=1e-12, atol=1e-12, err_msg=fmt)


def test_relative_to_relative_needs_no_image_size() -> None:
    # Keras asks for height and width here although it does not use them
    out = bb.convert_format(np.array([[0.1, 0.2, 0.3, 0.4]]), "rel_xywh", "rel_xyxy")
    np.testing.assert_allclose(out.data, [[0.1, 0.2, 0.4, 0.6]], rtol=1e-6)


def test_encode_then_decode_gives_the_boxes_back() -> None:
    anchors, boxes = _xyxy((6,), 42), _xyxy((2, 6), 43)
    for encoding in ("center_yxhw", "center_xywh"):
        deltas = bb.encode_box_to_deltas(
            anchors, boxes, "xyxy", "xyxy", encoding, variance=[0.1, 0.1, 0.2, 0.2]
        )
        back = bb.decode_deltas_to_boxes(
            anchors, deltas, "xyxy", "xyxy", encoding, variance=[0.1, 0.1, 0.2, 0.2]
        )
        np.testing.assert_allclose(back.data, boxes, rtol=1e-4, atol=1e-3)


def test_decode_levels_must_both_be_dicts() -> None:
    with pytest.raises(ValueError, match="both be dicts"):
        bb.decode_deltas_to_boxes({"P3": np.zeros((1, 4))}, np.zeros((1, 4)), "xyxy", "xyxy")


def test_iou_by_hand_and_masking_for_mixed_ranks() -> None:
    a = np.array([[0.0, 0, 2, 2]])
    b = np.array([[[1.0, 1, 3, 3], [-1, -1, -1, -1]]])
    iou = bb.compute_iou(a, b, "xyxy", use_masking=True).data
    assert iou.shape == (1, 1, 2)
    np.testing.assert_allclose(iou[0, 0, 0], 1 / 7, rtol=1e-6)
    assert iou[0, 0, 1] == -1  # Keras cannot mask with ranks 2 and 3 (a transpose fails)


def test_ciou_by_hand() -> None:
    a, b = np.array([0.0, 0, 2, 2]), np.array([1.0, 0, 3, 4])
    iou = 2 / (4 + 8 - 2)
    centres = (1 - 2) ** 2 + (1 - 2) ** 2
    diagonal = 3**2 + 4**2
    v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(2 / 2)) ** 2
    alpha = v / (v - iou + 1)
    expected = iou - centres / diagonal - alpha * v
    got = float(bb.compute_ciou(a, b, "xyxy").data)
    assert got == pytest.approx(expected, rel=1e-5)


def test_ciou_takes_relative_formats_with_an_image_shape() -> None:
    a, b = _xyxy((4,), 44), _xyxy((4,), 45)
    rel_a, rel_b = _in_format(a, "rel_xyxy"), _in_format(b, "rel_xyxy")
    want = bb.compute_ciou(a, b, "xyxy").data
    got = bb.compute_ciou(rel_a, rel_b, "rel_xyxy", image_shape=(HEIGHT, WIDTH, 3)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_affine_transform_takes_one_image_and_scalar_parameters() -> None:
    boxes = _xyxy((3,), 46)
    args = dict(translate_x=0.1, translate_y=-0.1, scale=1.2, shear_x=5, shear_y=-3)
    one = bb.affine_transform(boxes, 30.0, height=HEIGHT, width=WIDTH, **args).data
    batch = bb.affine_transform(
        boxes[None], np.array([30.0], "float32"), height=HEIGHT, width=WIDTH, **args
    ).data
    assert one.shape == (3, 4)
    np.testing.assert_allclose(one, batch[0], rtol=1e-6, atol=1e-4)


def test_crop_without_a_window_size_clips_only_at_zero() -> None:
    out = bb.crop(np.array([[5, 5, 100, 100]]), 10, 2).data
    np.testing.assert_array_equal(out, [[3, 0, 98, 90]])


def test_clip_bare_boxes() -> None:
    out = bb.clip_to_image_size(np.array([[-1.0, 2, 90, 60]]), HEIGHT, WIDTH)
    np.testing.assert_array_equal(out.data, [[0, 2, WIDTH, HEIGHT]])
