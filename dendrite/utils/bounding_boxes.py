"""``keras.utils.bounding_boxes``: array utilities for object-detection boxes, on NumPy.

Boxes are arrays (..., 4): (N, 4) for one image, (batch, N, 4) for a batch; the formats
("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw" and the relative "rel_*" ones) are
described, with ``convert_format``, in ``dendrite.utils.bounding_box_formats``. Every
function accepts dendrite Tensors, ndarrays or nested lists and returns dendrite Tensors
(a dict of them where it takes a dict). None of them is differentiable: they prepare data.
Below, ``eps`` is ``keras.config.epsilon()`` (1e-7), and a box is read as its corners
(x1, y1, x2, y2), with ``w = x2 - x1`` and ``h = y2 - y1``.

IoU (``compute_iou``), pairwise: for each box i of ``boxes1`` and j of ``boxes2``,

    I_ij = max(0, min(x2_i, x2_j) - max(x1_i, x1_j)) * max(0, min(y2_i, y2_j) - max(y1_i, y1_j))
    IoU_ij = I_ij / (w_i h_i + w_j h_j - I_ij + eps)

With ``use_masking``, a pair where either box has all four coordinates negative (padding,
such as ``MaxNumBoundingBoxes``' -1 rows) gets ``mask_val`` instead.

CIoU (``compute_ciou``), element-wise (the two arrays broadcast against each other), with
the heights stabilised as ``h = y2 - y1 + eps``:

    IoU = I / (w1 h1 + w2 h2 - I + 2 eps)             (eps inside the union and beside it)
    rho^2 = (cx1 - cx2)^2 + (cy1 - cy2)^2            (squared distance of the centres)
    c^2 = C_w^2 + C_h^2 + eps                        (the enclosing box's squared diagonal)
    v = (4 / pi^2) (atan(w2 / h2) - atan(w1 / h1))^2 (aspect-ratio mismatch)
    alpha = v / (v - IoU + 1 + eps)
    CIoU = IoU - rho^2 / c^2 - alpha v

Delta encoding (``encode_box_to_deltas``; ``decode_deltas_to_boxes`` inverts it): a box b
and its anchor a are expressed in a centre format (``center_yxhw`` by default: centre
(cy, cx), size (h, w)); with the anchor's size ``s_a = max(size_a, eps)``,

    delta_centre = (centre_b - centre_a) / s_a
    delta_size = log(max(size_b, eps) / s_a)

and each of the four deltas is divided by ``variance`` when one is given. Decoding
multiplies by ``variance``, then ``centre = delta_centre * size_a + centre_a`` and
``size = exp(delta_size) * size_a``, and converts to ``box_format``.

``affine_transform`` maps each box's four corners through Keras' inverse affine matrix of
an image augmentation (rotation ``angle`` and shears in degrees, translations as fractions
of the image size, ``scale``) about the centre ``(cx, cy) = (center_x (W - 1),
center_y (H - 1))``: with ``t = (-translate_x (W - 1), -translate_y (H - 1))``, the angles
negated (``r = -angle``, ``u = -shear_x``, ``q = -shear_y``, in radians) and

    a = cos(r - q) / cos(q),  b = a tan(u) + sin(r),  c = -sin(r - q) / cos(q),
    d = cos(r) - c tan(u),    M = scale [[d, -b], [-c, a]],

a corner p goes to ``M (p - (cx, cy) - t) + (cx, cy)``, and the box becomes the smallest
"xyxy" box holding the four images of its corners. ``crop`` moves boxes into a window
(subtracting ``left`` and ``top``, then clipping to [0, width] x [0, height]); ``pad``
adds the offsets; ``clip_to_image_size`` clips to the image and sets to -1 the label of a
box left with no area.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.utils.bounding_box_formats import (
    as_array,
    check_last_axis,
    convert_array,
    convert_format,
)

__all__ = [
    "affine_transform",
    "clip_to_image_size",
    "compute_ciou",
    "compute_iou",
    "convert_format",
    "crop",
    "decode_deltas_to_boxes",
    "encode_box_to_deltas",
    "pad",
]

_ENCODINGS = ("center_xywh", "center_yxhw")


def _only_xyxy(bounding_box_format: str, function: str, allowed: tuple = ("xyxy",)) -> None:
    if bounding_box_format not in allowed:
        raise NotImplementedError(
            f"{function} supports bounding_box_format {' or '.join(map(repr, allowed))} "
            f"only; received bounding_box_format={bounding_box_format!r}. Convert the boxes "
            f"with convert_format first."
        )


def _keep_dtype(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``out`` in the dtype of the boxes ``like``: float boxes keep theirs; integer boxes
    stay integer unless the offsets made fractions (then floatx)."""
    if like.dtype.kind == "f" or out.dtype.kind != "f":
        return out.astype(like.dtype, copy=False)
    return out.astype(_settings.floatx(), copy=False)


def _image_size(image_shape: Any, function: str) -> tuple[Any, Any]:
    """(height, width) from an image shape (height, width[, channels]) or None."""
    if image_shape is None:
        return None, None
    shape = tuple(image_shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{function}: `image_shape` must be (height, width, channels); received "
            f"image_shape={image_shape!r}."
        )
    return shape[0], shape[1]


def _variance(variance: Any, function: str) -> np.ndarray | None:
    if variance is None:
        return None
    array = as_array(variance).astype(np.float32)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise ValueError(
            f"{function}: `variance` must hold 4 values (one per box coordinate); received "
            f"variance={variance!r}."
        )
    return array


def _check_encoding(value: str, argument: str, function: str) -> None:
    if value not in _ENCODINGS:
        raise ValueError(
            f"{function}: `{argument}` must be 'center_xywh' or 'center_yxhw'; received "
            f"{argument}={value!r}."
        )


# --- clipping, cropping, padding ---------------------------------------------------------
def clip_to_image_size(
    bounding_boxes: Any,
    height: Any = None,
    width: Any = None,
    bounding_box_format: str = "xyxy",
) -> Any:
    """Clip boxes to the image: x to [0, width] and y to [0, height] ("xyxy"), or every
    coordinate to [0, 1] ("rel_xyxy"). A box whose clipped area ``(x2 - x1)(y2 - y1)`` is
    not positive gets the label -1.

    Args:
        bounding_boxes: a dict with "boxes" (N, 4) or (batch, N, 4) and optionally
            "labels" (N,) or (batch, N); other keys are kept. A bare array of boxes is
            accepted too (then the clipped boxes are returned).
        height: the image height (needed for "xyxy").
        width: the image width (needed for "xyxy").
        bounding_box_format: "xyxy" (default) or "rel_xyxy"; others raise
            NotImplementedError, as in Keras.

    Returns:
        A new dict with "boxes" (and "labels") as dendrite Tensors.
    """
    _only_xyxy(bounding_box_format, "clip_to_image_size", ("xyxy", "rel_xyxy"))
    if bounding_box_format == "xyxy" and (height is None or width is None):
        raise ValueError(
            "clip_to_image_size: `height` and `width` are needed for "
            f"bounding_box_format='xyxy'; received height={height!r}, width={width!r}."
        )
    if not isinstance(bounding_boxes, dict):
        return clip_to_image_size({"boxes": bounding_boxes}, height, width, bounding_box_format)[
            "boxes"
        ]
    if "boxes" not in bounding_boxes:
        raise ValueError(
            "clip_to_image_size: expects a dict with the key 'boxes' (and optionally "
            f"'labels'); received keys {sorted(bounding_boxes)}."
        )
    boxes = as_array(bounding_boxes["boxes"])
    check_last_axis(boxes, "clip_to_image_size")
    if bounding_box_format == "xyxy":
        high_x = as_array(width).astype(boxes.dtype)
        high_y = as_array(height).astype(boxes.dtype)
    else:
        high_x = high_y = np.asarray(1.0, dtype=boxes.dtype)
    x1, y1, x2, y2 = np.split(boxes, 4, axis=-1)
    x1, x2 = np.clip(x1, 0, high_x), np.clip(x2, 0, high_x)
    y1, y2 = np.clip(y1, 0, high_y), np.clip(y2, 0, high_y)
    clipped = np.concatenate([x1, y1, x2, y2], axis=-1).astype(boxes.dtype, copy=False)
    result = dict(bounding_boxes)
    result["boxes"] = ops.convert_to_tensor(clipped)
    if bounding_boxes.get("labels") is not None:
        labels = as_array(bounding_boxes["labels"])
        area = ((x2 - x1) * (y2 - y1))[..., 0]
        result["labels"] = ops.convert_to_tensor(
            np.where(area > 0, labels, np.asarray(-1, dtype=labels.dtype))
        )
    return result


def crop(
    boxes: Any,
    top: Any,
    left: Any,
    height: Any = None,
    width: Any = None,
    bounding_box_format: str = "xyxy",
) -> Any:
    """Boxes seen from a crop window whose top-left corner is (``left``, ``top``):
    ``x - left`` clipped to [0, width] and ``y - top`` clipped to [0, height] (no upper
    bound where ``height``/``width`` is None). "xyxy" boxes (..., 4) only.

    Returns a dendrite Tensor in the boxes' dtype (integer boxes with fractional offsets
    come back in floatx).
    """
    high_x = None if width is None else as_array(width)
    high_y = None if height is None else as_array(height)
    return _shifted(
        boxes, bounding_box_format, "crop", -as_array(top), -as_array(left), (high_x, high_y)
    )


def pad(
    boxes: Any,
    top: Any,
    left: Any,
    height: Any = None,
    width: Any = None,
    bounding_box_format: str = "xyxy",
) -> Any:
    """Boxes of an image padded by ``top`` rows above and ``left`` columns before it:
    ``x + left``, ``y + top``. "xyxy" boxes (..., 4) only; ``height`` and ``width`` are
    accepted for Keras' signature and not used."""
    return _shifted(boxes, bounding_box_format, "pad", as_array(top), as_array(left))


def _shifted(
    boxes: Any, bounding_box_format: str, op: str, dy: Any, dx: Any, clip: tuple | None = None
) -> Any:
    """ "xyxy" boxes moved by (dx, dy); with ``clip = (high_x, high_y)``, each coordinate
    then clipped to [0, high] (no upper bound where high is None)."""
    _only_xyxy(bounding_box_format, op)
    array = as_array(boxes)
    check_last_axis(array, op)
    x1, y1, x2, y2 = np.split(array, 4, axis=-1)
    xs, ys = [x1 + dx, x2 + dx], [y1 + dy, y2 + dy]
    if clip is not None:
        xs = [np.clip(x, 0, clip[0]) for x in xs]
        ys = [np.clip(y, 0, clip[1]) for y in ys]
    out = np.concatenate([xs[0], ys[0], xs[1], ys[1]], axis=-1)
    return ops.convert_to_tensor(_keep_dtype(out, array))


# --- affine transforms --------------------------------------------------------------------
def _inverse_affine(
    batch: int,
    center_x: Any,
    center_y: Any,
    angle: np.ndarray,
    translate_x: Any,
    translate_y: Any,
    scale: Any,
    shear_x: Any,
    shear_y: Any,
    height: Any,
    width: Any,
) -> np.ndarray:
    """(batch, 2, 3): the matrices of the module docstring, ``[M | offset]``."""

    def per_image(value: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(as_array(value), dtype=np.float64), (batch,))

    degrees = math.pi / 180.0
    span_x = float(as_array(width)) - 1.0
    span_y = float(as_array(height)) - 1.0
    r = -per_image(angle) * degrees
    u = -per_image(shear_x) * degrees
    q = -per_image(shear_y) * degrees
    cx, cy = per_image(center_x) * span_x, per_image(center_y) * span_y
    tx, ty = -per_image(translate_x) * span_x, -per_image(translate_y) * span_y
    a = np.cos(r - q) / np.cos(q)
    b = a * np.tan(u) + np.sin(r)
    c = -np.sin(r - q) / np.cos(q)
    d = np.cos(r) - c * np.tan(u)
    s = per_image(scale)
    m00, m01, m10, m11 = d * s, -b * s, -c * s, a * s
    px, py = cx + tx, cy + ty
    return np.stack(
        [
            np.stack([m00, m01, cx - m00 * px - m01 * py], axis=-1),
            np.stack([m10, m11, cy - m10 * px - m11 * py], axis=-1),
        ],
        axis=1,
    )


def affine_transform(
    boxes: Any,
    angle: Any,
    translate_x: Any,
    translate_y: Any,
    scale: Any,
    shear_x: Any,
    shear_y: Any,
    height: Any,
    width: Any,
    center_x: Any = None,
    center_y: Any = None,
    bounding_box_format: str = "xyxy",
) -> Any:
    """The boxes' images under the affine transform of an augmentation (see the module
    docstring): each box becomes the "xyxy" box enclosing its transformed corners.

    Args:
        boxes: "xyxy" boxes, (batch, N, 4) (or (N, 4) for one image).
        angle: rotation in degrees, one per image (batch,) or one number for all.
        translate_x, translate_y: translations as fractions of the width and height.
        scale: the scale factor.
        shear_x, shear_y: shear angles in degrees.
        height, width: the image size.
        center_x, center_y: the centre as fractions of the size (default 0.5).
        bounding_box_format: "xyxy" only (others raise NotImplementedError, as Keras).

    Returns:
        A dendrite Tensor of the boxes' shape, in ``angle``'s float dtype (else floatx).
    """
    _only_xyxy(bounding_box_format, "affine_transform")
    array = as_array(boxes)
    check_last_axis(array, "affine_transform")
    single = array.ndim == 2
    if single:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            "affine_transform: `boxes` must be (batch, num_boxes, 4) or (num_boxes, 4); "
            f"received boxes.shape={tuple(as_array(boxes).shape)}."
        )
    angle_array = as_array(angle)
    dtype = angle_array.dtype if angle_array.dtype.kind == "f" else np.dtype(_settings.floatx())
    matrix = _inverse_affine(
        array.shape[0],
        0.5 if center_x is None else center_x,
        0.5 if center_y is None else center_y,
        angle_array,
        translate_x,
        translate_y,
        scale,
        shear_x,
        shear_y,
        height,
        width,
    )
    x1, y1, x2, y2 = (array[..., i].astype(np.float64) for i in range(4))
    # the corners (x1, y1), (x2, y1), (x2, y2), (x1, y2) in homogeneous form: (B, N, 4, 3)
    corners = np.stack(
        [
            np.stack([x, y, np.ones_like(x)], axis=-1)
            for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))
        ],
        axis=2,
    )
    moved = np.einsum("bnkj,bij->bnki", corners, matrix)
    out = np.concatenate([moved.min(axis=2), moved.max(axis=2)], axis=-1).astype(dtype)
    return ops.convert_to_tensor(out[0] if single else out)


# --- deltas against anchors ---------------------------------------------------------------
def encode_box_to_deltas(
    anchors: Any,
    boxes: Any,
    anchor_format: str,
    box_format: str,
    encoding_format: str = "center_yxhw",
    variance: Any = None,
    image_shape: Any = None,
) -> Any:
    """The deltas that move ``anchors`` (N, 4) onto ``boxes`` (N, 4) or (batch, N, 4)
    (see the module docstring), in ``encoding_format``'s order ("center_yxhw": dy, dx,
    dh, dw); divided by ``variance`` (4 values) when given. ``image_shape`` (height,
    width, channels) is needed for relative formats. Returns a float32 dendrite Tensor."""
    function = "encode_box_to_deltas"
    scale = _variance(variance, function)
    _check_encoding(encoding_format, "encoding_format", function)
    height, width = _image_size(image_shape, function)
    anchor = convert_array(
        as_array(anchors), anchor_format, encoding_format, height, width, function=function
    )
    box = convert_array(
        as_array(boxes), box_format, encoding_format, height, width, function=function
    )
    eps = _settings.epsilon()
    anchor_size = np.maximum(anchor[..., 2:], eps)
    box_size = np.maximum(box[..., 2:], eps)
    deltas = np.concatenate(
        [(box[..., :2] - anchor[..., :2]) / anchor_size, np.log(box_size / anchor_size)],
        axis=-1,
    )
    if scale is not None:
        deltas = deltas / scale
    return ops.convert_to_tensor(deltas.astype(np.float32, copy=False))


def decode_deltas_to_boxes(
    anchors: Any,
    boxes_delta: Any,
    anchor_format: str,
    box_format: str,
    encoded_format: str = "center_yxhw",
    variance: Any = None,
    image_shape: Any = None,
) -> Any:
    """The boxes, in ``box_format``, that the deltas ``boxes_delta`` (N, 4) or
    (batch, N, 4), in ``encoded_format``'s order, describe against ``anchors`` (N, 4):
    the inverse of ``encode_box_to_deltas``. ``anchors`` and ``boxes_delta`` may both be
    dicts keyed by feature level (then a dict of boxes is returned, level by level).
    Returns float32 dendrite Tensors."""
    function = "decode_deltas_to_boxes"
    scale = _variance(variance, function)
    _check_encoding(encoded_format, "encoded_format", function)
    height, width = _image_size(image_shape, function)

    def decode(anchor: Any, delta: Any) -> Any:
        encoded = convert_array(
            as_array(anchor), anchor_format, encoded_format, height, width, function=function
        )
        delta = as_array(delta)
        if scale is not None:
            delta = delta * scale
        size = encoded[..., 2:]
        box = np.concatenate(
            [delta[..., :2] * size + encoded[..., :2], np.exp(delta[..., 2:]) * size], axis=-1
        )
        out = convert_array(box, encoded_format, box_format, height, width, function=function)
        return ops.convert_to_tensor(out)

    if isinstance(anchors, dict) or isinstance(boxes_delta, dict):
        if not (isinstance(anchors, dict) and isinstance(boxes_delta, dict)):
            raise ValueError(
                f"{function}: `anchors` and `boxes_delta` must both be dicts (by level) or "
                f"both arrays; received {type(anchors).__name__} and "
                f"{type(boxes_delta).__name__}."
            )
        missing = sorted(set(anchors) - set(boxes_delta), key=str)
        if missing:
            raise ValueError(
                f"{function}: `boxes_delta` lacks the levels {missing} that `anchors` has."
            )
        return {level: decode(anchor, boxes_delta[level]) for level, anchor in anchors.items()}
    return decode(anchors, boxes_delta)


# --- overlaps -----------------------------------------------------------------------------
def _check_rank(boxes: np.ndarray, argument: str, function: str) -> None:
    if boxes.ndim not in (2, 3):
        raise ValueError(
            f"{function}: `{argument}` must be (num_boxes, 4) or (batch, num_boxes, 4), rank "
            f"2 or 3; received {argument}.shape={tuple(boxes.shape)} (rank {boxes.ndim})."
        )


def _check_relative(bounding_box_format: str, image_shape: Any, function: str) -> None:
    if "rel" in str(bounding_box_format).lower() and image_shape is None:
        raise ValueError(
            f"{function}: a relative bounding_box_format ({bounding_box_format!r}) needs "
            "`image_shape` (height, width, channels); received image_shape=None."
        )


def compute_iou(
    boxes1: Any,
    boxes2: Any,
    bounding_box_format: str,
    use_masking: bool = False,
    mask_val: Any = -1,
    image_shape: Any = None,
) -> Any:
    """The pairwise IoU table of ``boxes1`` (M boxes) and ``boxes2`` (N boxes): (M, N) for
    two unbatched arrays, (batch, M, N) when either is batched (see the module docstring).

    Args:
        boxes1: (M, 4) or (batch, M, 4).
        boxes2: (N, 4) or (batch, N, 4).
        bounding_box_format: the boxes' format (relative ones need ``image_shape``).
        use_masking: give ``mask_val`` to pairs with a padding box (all coordinates < 0).
        mask_val: the value of masked pairs (default -1).
        image_shape: (height, width, channels), for relative formats.

    Returns:
        A float32 dendrite Tensor.
    """
    function = "compute_iou"
    first, second = as_array(boxes1), as_array(boxes2)
    _check_rank(first, "boxes1", function)
    _check_rank(second, "boxes2", function)
    _check_relative(bounding_box_format, image_shape, function)
    height, width = _image_size(image_shape, function)
    first = convert_array(first, bounding_box_format, "xyxy", height, width, function=function)
    second = convert_array(second, bounding_box_format, "xyxy", height, width, function=function)
    a = first[..., :, None, :]  # (..., M, 1, 4)
    b = second[..., None, :, :]  # (..., 1, N, 4)
    inter_h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter_w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    intersection = inter_h * inter_w
    area_a = (a[..., 3] - a[..., 1]) * (a[..., 2] - a[..., 0])
    area_b = (b[..., 3] - b[..., 1]) * (b[..., 2] - b[..., 0])
    iou = intersection / (area_a + area_b - intersection + np.float32(_settings.epsilon()))
    if use_masking:
        padded = (a.max(axis=-1) < 0) | (b.max(axis=-1) < 0)
        iou = np.where(padded, np.asarray(mask_val).astype(iou.dtype), iou)
    return ops.convert_to_tensor(iou.astype(np.float32, copy=False))


def compute_ciou(
    boxes1: Any, boxes2: Any, bounding_box_format: str, image_shape: Any = None
) -> Any:
    """The Complete IoU of ``boxes1`` and ``boxes2`` box by box (the arrays (..., 4)
    broadcast against each other; the result drops the last axis). See the module
    docstring for the formula. Relative formats need ``image_shape``. Returns a float32
    dendrite Tensor."""
    function = "compute_ciou"
    _check_relative(bounding_box_format, image_shape, function)
    height, width = _image_size(image_shape, function)
    first = convert_array(
        as_array(boxes1), bounding_box_format, "xyxy", height, width, function=function
    )
    second = convert_array(
        as_array(boxes2), bounding_box_format, "xyxy", height, width, function=function
    )
    eps = np.float32(_settings.epsilon())
    x1a, y1a, x2a, y2a = (first[..., i] for i in range(4))
    x1b, y1b, x2b, y2b = (second[..., i] for i in range(4))
    w1, h1 = x2a - x1a, y2a - y1a + eps
    w2, h2 = x2b - x1b, y2b - y1b + eps
    intersection = np.maximum(np.minimum(x2a, x2b) - np.maximum(x1a, x1b), 0) * np.maximum(
        np.minimum(y2a, y2b) - np.maximum(y1a, y1b), 0
    )
    union = w1 * h1 + w2 * h2 - intersection + eps
    iou = intersection / (union + eps)
    enclosing_w = np.maximum(x2a, x2b) - np.minimum(x1a, x1b)
    enclosing_h = np.maximum(y2a, y2b) - np.minimum(y1a, y1b)
    diagonal = enclosing_w**2 + enclosing_h**2 + eps
    centres = ((x1a + x2a) / 2 - (x1b + x2b) / 2) ** 2 + ((y1a + y2a) / 2 - (y1b + y2b) / 2) ** 2
    v = np.float32(4 / math.pi**2) * (np.arctan(w2 / h2) - np.arctan(w1 / h1)) ** 2
    alpha = v / (v - iou + (1 + eps))
    ciou = iou - (centres / diagonal + v * alpha)
    return ops.convert_to_tensor(ciou.astype(np.float32, copy=False))
