"""Bounding-box formats and ``convert_format`` (``keras.utils.bounding_boxes.convert_format``).

A box is four numbers on the last axis of an array of any leading shape: (N, 4) for one
image, (batch, N, 4) for a batch. The formats (names are case-insensitive):

=====================  =========================================================
``xyxy``               (x1, y1, x2, y2): left, top, right, bottom, in pixels
``yxyx``               (y1, x1, y2, x2)
``xywh``               (x1, y1, w, h) with ``w = x2 - x1``, ``h = y2 - y1``
``center_xywh``        (cx, cy, w, h) with ``cx = x1 + w / 2``, ``cy = y1 + h / 2``
``center_yxhw``        (cy, cx, h, w)
``rel_xyxy``           ``xyxy`` with every x divided by the image width W, every y by H
``rel_yxyx``           likewise for ``yxyx``
``rel_xywh``           likewise for ``xywh`` (w / W, h / H)
``rel_center_xywh``    likewise for ``center_xywh``
=====================  =========================================================

A conversion goes through the corners: the source's components give
``(x1, y1, x2, y2)`` in the source's own units (``x1 = cx - w / 2``, ``x2 = x1 + w`` ...),
which are multiplied by (W, H) when the source is relative; the target's components are
computed from the corners in pixels and divided by (W, H) when the target is relative. The
arithmetic runs in ``dtype`` (float32 by default), in the order Keras uses, so results
agree with Keras to the last bit in float32. Converting between two relative formats
never scales (the image size is not needed then).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor

__all__ = ["SUPPORTED_FORMATS", "convert_format"]

#: The format names Keras 3 accepts, in its order.
SUPPORTED_FORMATS: tuple[str, ...] = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)

# The four components of each (absolute) layout, in order on the last axis.
_LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "xyxy": ("x1", "y1", "x2", "y2"),
    "yxyx": ("y1", "x1", "y2", "x2"),
    "xywh": ("x1", "y1", "w", "h"),
    "center_xywh": ("cx", "cy", "w", "h"),
    "center_yxhw": ("cy", "cx", "h", "w"),
}
# Components measured along the image's width (the rest along its height).
_ALONG_WIDTH = frozenset(("x1", "x2", "cx", "w"))


def as_array(x: Any) -> np.ndarray:
    """The NumPy value of ``x`` (a dendrite Tensor, an ndarray, a list or a number)."""
    if isinstance(x, Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


def check_format(name: Any, argument: str, function: str) -> str:
    """``name`` lower-cased if it is one of ``SUPPORTED_FORMATS``; else ValueError."""
    lowered = name.lower() if isinstance(name, str) else name
    if lowered not in SUPPORTED_FORMATS:
        raise ValueError(
            f"{function}: `{argument}` must be one of {', '.join(SUPPORTED_FORMATS)} "
            f"(case-insensitive); received {argument}={name!r}."
        )
    return lowered


def check_last_axis(boxes: np.ndarray, function: str, argument: str = "boxes") -> None:
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{function}: `{argument}` must have 4 values on its last axis, shape (..., 4); "
            f"received {argument}.shape={tuple(boxes.shape)}."
        )


def _split_layout(fmt: str) -> tuple[bool, str]:
    """(relative, absolute layout) of a supported format name."""
    if fmt.startswith("rel_"):
        return True, fmt[len("rel_") :]
    return False, fmt


def _corners(
    boxes: np.ndarray, layout: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x1, y1, x2, y2), each (..., 1), from boxes in ``layout`` (in their own units)."""
    parts = dict(zip(_LAYOUTS[layout], np.split(boxes, 4, axis=-1)))
    if "x2" in parts:
        return parts["x1"], parts["y1"], parts["x2"], parts["y2"]
    if "cx" in parts:
        half_w, half_h = parts["w"] / 2.0, parts["h"] / 2.0
        return (
            parts["cx"] - half_w,
            parts["cy"] - half_h,
            parts["cx"] + half_w,
            parts["cy"] + half_h,
        )
    return parts["x1"], parts["y1"], parts["x1"] + parts["w"], parts["y1"] + parts["h"]


def _components(
    x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, layout: str
) -> dict[str, np.ndarray]:
    """The components of ``layout`` from the corners."""
    w, h = x2 - x1, y2 - y1
    values = {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "w": w, "h": h}
    if layout.startswith("center_"):
        values["cx"] = x1 + w / 2.0
        values["cy"] = y1 + h / 2.0
    return values


def convert_array(
    boxes: np.ndarray,
    source: str,
    target: str,
    height: Any = None,
    width: Any = None,
    dtype: Any = "float32",
    function: str = "convert_format",
) -> np.ndarray:
    """``convert_format`` on a NumPy array, returning a NumPy array."""
    boxes = np.asarray(boxes)
    check_last_axis(boxes, function)
    source = check_format(source, "source", function)
    target = check_format(target, "target", function)
    source_relative, source_layout = _split_layout(source)
    target_relative, target_layout = _split_layout(target)
    dtype = np.dtype(dtype)
    boxes = boxes.astype(dtype)
    if source == target:
        return boxes
    if source_relative and target_relative:
        source_relative = target_relative = False  # both in [0, 1]: no scaling at all
    elif (source_relative or target_relative) and (height is None or width is None):
        raise ValueError(
            f"{function}: converting between a relative and an absolute format needs the "
            f"image's `height` and `width`; received source={source!r}, target={target!r}, "
            f"height={height!r}, width={width!r}."
        )
    if source_relative or target_relative:
        height = as_array(height).astype(dtype)
        width = as_array(width).astype(dtype)
    x1, y1, x2, y2 = _corners(boxes, source_layout)
    if source_relative:
        x1, y1, x2, y2 = x1 * width, y1 * height, x2 * width, y2 * height
    values = _components(x1, y1, x2, y2, target_layout)
    parts = []
    for name in _LAYOUTS[target_layout]:
        value = values[name]
        if target_relative:
            value = value / (width if name in _ALONG_WIDTH else height)
        parts.append(value)
    out = np.concatenate(parts, axis=-1)
    if out.dtype != dtype:
        # an integer dtype with halves or a division: the float result in floatx
        out = out.astype(dtype if out.dtype.kind == dtype.kind else _settings.floatx())
    return out


def convert_format(
    boxes: Any,
    source: str,
    target: str,
    height: Any = None,
    width: Any = None,
    dtype: Any = "float32",
) -> Any:
    """Boxes in format ``source`` re-expressed in format ``target``.

    Args:
        boxes: an array (..., 4) (a dendrite Tensor, an ndarray or nested lists), or a dict
            with the boxes under "boxes" (other keys, "labels" ..., are kept as they are).
        source: the format of ``boxes`` (one of ``SUPPORTED_FORMATS``, any case).
        target: the format wanted.
        height: the image height, needed when exactly one of the formats is relative.
        width: the image width, likewise.
        dtype: the dtype of the result (and of the arithmetic); default "float32".

    Returns:
        A dendrite Tensor of the shape of ``boxes``; for a dict, a new dict with "boxes"
        converted.

    Raises:
        ValueError: an unknown format, a last axis other than 4, or a missing height or
            width for a relative conversion.
    """
    if isinstance(boxes, dict):
        if "boxes" not in boxes:
            raise ValueError(
                "convert_format: a dict of bounding boxes must hold them under 'boxes'; "
                f"received keys {sorted(boxes)}."
            )
        return {
            **boxes,
            "boxes": convert_format(boxes["boxes"], source, target, height, width, dtype),
        }
    out = convert_array(as_array(boxes), source, target, height, width, dtype)
    return ops.convert_to_tensor(out)
