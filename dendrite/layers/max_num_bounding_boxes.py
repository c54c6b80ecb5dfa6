"""Keras 3's MaxNumBoundingBoxes: give every image exactly ``max_number`` bounding boxes.

The data is a dict ``{"images": ..., "bounding_boxes": {"boxes": ..., "labels": ...}}``
(other keys, such as "labels" or "segmentation_masks", pass through unchanged), or images
alone (returned unchanged). With a batch of images (batch, H, W, C) the boxes are
(batch, N, 4) and their labels (batch, N); with one image (H, W, C), (N, 4) and (N,).
Each image's boxes are cut to their first ``max_number`` or padded after the last one
with rows of ``fill_value`` (-1 by default), and the labels likewise::

    boxes'[i] = boxes[i] for i < min(N, max_number), fill_value (all 4 values) after
    labels'[i] = labels[i] for i < min(N, max_number), fill_value after

The boxes come back as float32 and the labels keep their dtype; the images are returned
as they are (no cast), in training and inference alike. As in Keras, a dict with
"bounding_boxes" needs ``bounding_box_format`` to be set (it is not used otherwise).

Beyond Keras: the bounding boxes may be given alone, ``{"boxes": ..., "labels": ...}``
(batched when the boxes are (batch, N, 4)), and a batch's boxes and labels may be lists
with one array per image of different lengths (ragged), which come back dense.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer

_DATA_FORMATS = ("channels_last", "channels_first")


def _array(value: Any) -> np.ndarray:
    return np.asarray(value.data) if isinstance(value, Tensor) else np.asarray(value)


def _items(value: Any) -> list[np.ndarray] | None:
    """The per-entry arrays of a list or tuple (None for an array)."""
    if isinstance(value, (list, tuple)):
        return [_array(item) for item in value]
    return None


@register_layer
class MaxNumBoundingBoxes(Layer):
    """Pads or truncates each image's bounding boxes to ``max_number`` (see the module
    docstring).

    Args:
        max_number: the number of boxes every image gets.
        fill_value: the value of the padding rows of "boxes" and "labels" (default -1).
        bounding_box_format: the boxes' format (e.g. "xyxy"); required, as in Keras, when
            the data holds "bounding_boxes", though this layer does not read it.
        data_format: "channels_last" or "channels_first" (default: the image data format
            in force); the images are not changed either way.
    """

    example = {"kwargs": {"max_number": 3}, "input_shape": (2, 5, 6, 3)}

    def __init__(
        self,
        max_number: int,
        fill_value: int = -1,
        bounding_box_format: str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(max_number, bool) or not isinstance(max_number, (int, np.integer)):
            if not (isinstance(max_number, float) and max_number.is_integer()):
                raise ValueError(
                    f"MaxNumBoundingBoxes: `max_number` must be a non-negative integer; "
                    f"received max_number={max_number!r}."
                )
        if max_number < 0:
            raise ValueError(
                f"MaxNumBoundingBoxes: `max_number` must be a non-negative integer; received "
                f"max_number={max_number!r}."
            )
        self.max_number = int(max_number)
        self.fill_value = int(fill_value)
        self.bounding_box_format = bounding_box_format
        data_format = data_format or _settings.image_data_format()
        if data_format not in _DATA_FORMATS:
            raise ValueError(
                f"MaxNumBoundingBoxes: `data_format` must be one of {', '.join(_DATA_FORMATS)}; "
                f"received data_format={data_format!r}."
            )
        self.data_format = data_format

    # --- calling ---------------------------------------------------------------------------
    def call(self, data: Any, training: Any = True) -> Any:
        if not isinstance(data, dict):
            self._batched(data)  # checks the rank
            return data
        if "images" not in data:
            if "boxes" in data:  # the bounding boxes alone
                return self._fit(data, None)
            raise ValueError(
                f"Layer '{self.name}' (MaxNumBoundingBoxes) expects a dict with the key "
                f"'images' (and 'bounding_boxes'), or a dict of bounding boxes with 'boxes' "
                f"and 'labels'; received keys {sorted(data)}."
            )
        batched = self._batched(data["images"])
        if "bounding_boxes" not in data:
            return data
        if not self.bounding_box_format:
            raise ValueError(
                f"Layer '{self.name}' (MaxNumBoundingBoxes) received 'bounding_boxes' but has "
                f"no `bounding_box_format`; pass one, e.g. "
                f"MaxNumBoundingBoxes(max_number={self.max_number}, "
                f"bounding_box_format='xyxy')."
            )
        return {**data, "bounding_boxes": self._fit(data["bounding_boxes"], batched)}

    def _batched(self, images: Any) -> bool:
        rank = len(getattr(images, "shape", np.shape(images)))
        if rank not in (3, 4):
            raise ValueError(
                f"Layer '{self.name}' (MaxNumBoundingBoxes) expects images of rank 4 "
                f"(batch, height, width, channels) or rank 3 (one image); received shape "
                f"{tuple(np.shape(_array(images)))} (rank {rank})."
            )
        return rank == 4

    def _fit(self, bounding_boxes: Any, batched: bool | None) -> dict:
        """The dict of bounding boxes with ``max_number`` boxes per image."""
        if (
            not isinstance(bounding_boxes, dict)
            or "boxes" not in bounding_boxes
            or "labels" not in bounding_boxes
        ):
            received = (
                f"keys {sorted(bounding_boxes)}"
                if isinstance(bounding_boxes, dict)
                else f"a {type(bounding_boxes).__name__}"
            )
            raise ValueError(
                f"Layer '{self.name}' (MaxNumBoundingBoxes) expects 'bounding_boxes' to be a "
                f"dict with the keys 'boxes' and 'labels'; received {received}."
            )
        boxes, labels = bounding_boxes["boxes"], bounding_boxes["labels"]
        box_items, label_items = _items(boxes), _items(labels)
        if box_items is not None and box_items and box_items[0].ndim == 2:
            # ragged: one (N_i, 4) array per image
            if label_items is None or len(label_items) != len(box_items):
                raise ValueError(
                    f"Layer '{self.name}' (MaxNumBoundingBoxes): with one array of boxes per "
                    f"image, 'labels' must be a list of the same length ({len(box_items)}); "
                    f"received {type(labels).__name__} of length {len(labels)}."
                )
            if batched is False:
                raise ValueError(
                    f"Layer '{self.name}' (MaxNumBoundingBoxes): one image takes boxes "
                    f"(num_boxes, 4), not a list of arrays per image."
                )
            fitted = [self._fit_one(b, lab) for b, lab in zip(box_items, label_items)]
            new_boxes = np.stack([b for b, _ in fitted])
            new_labels = np.stack([lab for _, lab in fitted])
        else:
            box_array = (
                (np.stack(box_items) if box_items else np.zeros((0, 4)))
                if box_items is not None
                else _array(boxes)
            )
            label_array = (
                (np.stack(label_items) if label_items else np.zeros((0,), np.int64))
                if label_items is not None
                else _array(labels)
            )
            if box_array.ndim not in (2, 3) or box_array.shape[-1] != 4:
                raise ValueError(
                    f"Layer '{self.name}' (MaxNumBoundingBoxes) expects boxes (num_boxes, 4) "
                    f"or (batch, num_boxes, 4); received shape {box_array.shape}."
                )
            if batched is None:
                batched = box_array.ndim == 3
            expected = 3 if batched else 2
            if box_array.ndim != expected or label_array.ndim < expected - 1:
                what = "a batch of images" if batched else "one image"
                raise ValueError(
                    f"Layer '{self.name}' (MaxNumBoundingBoxes): for {what} the boxes must "
                    f"have rank {expected} and the labels rank {expected - 1}; received "
                    f"boxes {box_array.shape} and labels {label_array.shape}."
                )
            if batched:
                new_boxes, new_labels = self._fit_batch(box_array, label_array)
            else:
                new_boxes, new_labels = self._fit_one(box_array, label_array)
        return {
            **bounding_boxes,
            "boxes": ops.convert_to_tensor(new_boxes),
            "labels": ops.convert_to_tensor(new_labels),
        }

    def _fit_one(self, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fitted_boxes, fitted_labels = self._fit_batch(boxes[None], labels[None])
        return fitted_boxes[0], fitted_labels[0]

    def _fit_batch(self, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut or pad axis 1 of (batch, N, 4) boxes and (batch, N, ...) labels."""
        if boxes.shape[1] != labels.shape[1] or boxes.shape[0] != labels.shape[0]:
            raise ValueError(
                f"Layer '{self.name}' (MaxNumBoundingBoxes): the boxes {boxes.shape} and "
                f"labels {labels.shape} do not agree on the batch and box axes."
            )
        boxes = boxes.astype(np.float32)[:, : self.max_number]
        labels = labels[:, : self.max_number]
        extra = self.max_number - boxes.shape[1]
        if extra > 0:
            boxes = np.pad(boxes, [(0, 0), (0, extra), (0, 0)], constant_values=self.fill_value)
            widths = [(0, 0), (0, extra)] + [(0, 0)] * (labels.ndim - 2)
            labels = np.pad(labels, widths, constant_values=self.fill_value)
        return boxes, labels

    # --- shapes and config -----------------------------------------------------------------
    def compute_output_shape(self, input_shape: Any) -> Any:
        if not isinstance(input_shape, dict):
            return tuple(input_shape)
        if "images" in input_shape:
            if "bounding_boxes" not in input_shape:
                return dict(input_shape)
            batched = len(input_shape["images"]) == 4
            return {
                **input_shape,
                "bounding_boxes": self._fitted_shapes(input_shape["bounding_boxes"], batched),
            }
        return self._fitted_shapes(input_shape, len(input_shape["boxes"]) == 3)

    def _fitted_shapes(self, shapes: dict, batched: bool) -> dict:
        axis = 1 if batched else 0
        result = dict(shapes)
        for key in ("boxes", "labels"):
            shape = list(shapes[key])
            shape[axis] = self.max_number
            result[key] = tuple(shape)
        return result

    def get_config(self) -> dict:
        config = {**super().get_config(), "data_format": self.data_format}
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        config["max_number"] = self.max_number
        if self.fill_value != -1:
            config["fill_value"] = self.fill_value  # Keras forgets it; kept when not default
        return config
