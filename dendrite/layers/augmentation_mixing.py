"""Keras 3's MixUp and CutMix: each image of a batch is mixed with another image of the same
batch (``x[perm]``, ``perm`` a random permutation of the batch), and so are the labels.

``data`` is images, (batch, H, W, C) or one image (H, W, C) (channels_first: channels
before H and W), or a dict with the images under "images" and optionally "labels"
(batch, ...) and "segmentation_masks" (batch, H, W[, C]); other keys pass through unchanged.
Per batch, with ``w_i`` the weight of image i:

- MixUp: ``perm``, then ``w_i ~ Beta(alpha, alpha)``; ``y_i = w_i x_i + (1 - w_i) x_perm(i)``,
  and the labels (and segmentation masks) mix the same way.
- CutMix: ``a ~ U[factor] + 1e-6`` once, ``l_i ~ Beta(a, a)``, ``r_i = sqrt(1 - l_i)``; a box
  of width ``r_i W`` and height ``r_i H`` (not rounded) starting at ``x0 = u (W - r_i W)``,
  ``y0 = u' (H - r_i H)`` (``u, u' ~ U[0, 1)``), then ``perm``. The pixels
  ``x0 <= x < x0 + r_i W``, ``y0 <= y < y0 + r_i H`` of image i (and of its segmentation
  mask) come from image perm(i); the labels mix with ``w_i = 1 - r_i^2``, one minus the box's
  area over the image's (the continuous area, as Keras, not the count of pixels pasted).
  One image alone (rank 3) is returned unchanged (integers cast to float), as Keras does.

In training (``fit``, or a direct call: ``training`` defaults to True, as in Keras); with
``training=False`` the data come back unchanged, except that CutMix, as Keras, casts
integer images to its float dtype in every case (uint8 in, float32 out; also for one
image). CutMix's segmentation masks keep their dtype (integer class ids stay integers;
Keras casts them to float too, and in training broadcasts them against the images'
channels). The mixing is a composition of ops (take, products, sums, where), so gradients
reach the images and the labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _RandomImageLayer
from dendrite.layers.augmentation_geometry_extra import (
    _float_images,
    _is_number,
    _pair,
)
from dendrite.layers.registry import register_layer
from dendrite.ops.creation import as_float_tensor

_KEYS = ("images", "labels", "segmentation_masks")


class _Mixing(_RandomImageLayer):
    """Splits ``data`` into images, labels and masks, and puts the mixed ones back."""

    def call(self, data: Any, training: Any = True) -> Any:
        images = self._images(data)
        if not training:
            return self._unchanged(data)
        x = images if images.dtype.kind == "f" else as_float_tensor(images, self.dtype)
        single = len(x.shape) == 3
        if single:
            x = ops.reshape(x, (1, *x.shape))
        if self.data_format == "channels_first":
            x = ops.moveaxis(x, 1, -1)
        mixed = self._mix(x, data if isinstance(data, dict) else {}, single)
        if mixed is None:
            return self._unchanged(data)
        out, labels, masks = mixed
        if self.data_format == "channels_first":
            out = ops.moveaxis(out, -1, 1)
        out = ops.reshape(out, out.shape[1:]) if single else out
        if not isinstance(data, dict):
            return out
        result = {**data, "images": out}
        if labels is not None:
            result["labels"] = labels
        if masks is not None:
            result["segmentation_masks"] = masks
        return result

    def _unchanged(self, data: Any) -> Any:
        """The data when nothing is mixed (inference, or CutMix's one image)."""
        return data

    def _images(self, data: Any) -> Tensor:
        cls = type(self).__name__
        if isinstance(data, dict):
            if "images" not in data:
                raise ValueError(
                    f"Layer '{self.name}' ({cls}) expects a dict with the key 'images' (and "
                    f"optionally 'labels', 'segmentation_masks'); received keys {sorted(data)}."
                )
            if "bounding_boxes" in data:
                raise ValueError(
                    f"Layer '{self.name}' ({cls}) does not transform 'bounding_boxes'; "
                    f"expected keys among {list(_KEYS)}, received keys {sorted(data)}."
                )
            data = data["images"]
        if not isinstance(data, Tensor) or len(data.shape) not in (3, 4):
            raise ValueError(
                f"Layer '{self.name}' ({cls}) expects images of shape (batch, height, width, "
                f"channels) or (height, width, channels), or a dict of them under 'images'; "
                f"received {_described(data)}."
            )
        return data

    def _batch_of(self, value: Tensor, n: int, key: str, single: bool) -> Tensor:
        """``value`` with a batch axis (added for one image), checked against the images'."""
        if single:
            value = ops.reshape(value, (1, *value.shape))
        if len(value.shape) == 0 or value.shape[0] != n:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects '{key}' with the images' "
                f"batch size {n} first; received shape {tuple(value.shape)}."
            )
        return value

    def _mask_layout(self, masks: Tensor, spatial: np.ndarray, key: str) -> np.ndarray:
        """The (n, H, W) box mask shaped to broadcast over ``masks``."""
        n, h, w = spatial.shape
        rank = len(masks.shape)
        if rank == 3 and tuple(masks.shape) == (n, h, w):
            return spatial
        if rank == 4 and self.data_format == "channels_last" and masks.shape[1:3] == (h, w):
            return spatial[..., None]
        if rank == 4 and self.data_format == "channels_first" and masks.shape[2:4] == (h, w):
            return spatial[:, None]
        raise ValueError(
            f"Layer '{self.name}' ({type(self).__name__}) expects '{key}' of shape "
            f"(batch, {h}, {w}) or with a channel axis in {self.data_format} order; "
            f"received shape {tuple(masks.shape)}."
        )

    def _mix(
        self, x: Tensor, data: dict, single: bool
    ) -> tuple[Tensor, Tensor | None, Tensor | None] | None:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape if isinstance(input_shape, dict) else tuple(input_shape)


def _described(data: Any) -> str:
    shape = getattr(data, "shape", None)
    return str(tuple(shape)) if shape is not None else f"a {type(data).__name__}"


def _blend(value: Tensor, other: Tensor, weights: np.ndarray) -> Tensor:
    """``w value + (1 - w) other`` with one weight per batch entry."""
    if value.dtype.kind != "f":
        value = as_float_tensor(value, weights.dtype)
        other = as_float_tensor(other, weights.dtype)
    w = weights.reshape(-1, *([1] * (len(value.shape) - 1))).astype(value.dtype)
    return value * Tensor._make(w) + other * Tensor._make(1.0 - w)


@register_layer
class MixUp(_Mixing):
    """Blends each image (and its labels) with another image of the batch by a
    Beta(alpha, alpha) weight (see the module docstring).

    Args:
        alpha: the Beta distribution's parameters (positive; default 0.2): small values
            keep images nearly whole, larger ones blend more.
        data_format: "channels_last" (the default) or "channels_first".
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"alpha": 0.4, "seed": 1}, "input_shape": (4, 5, 6, 3)}

    def __init__(
        self,
        alpha: float = 0.2,
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if not _is_number(alpha) or not alpha > 0:
            raise ValueError(f"MixUp: `alpha` must be a positive number; received alpha={alpha!r}.")
        self.alpha = float(alpha)
        self.data_format = _data_format(data_format, "MixUp")

    def _mix(
        self, x: Tensor, data: dict, single: bool
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        n = x.shape[0]
        rng = self._generator()
        perm = np.asarray(rng.permutation(n), dtype=np.int64)
        weights = np.asarray(rng.beta(self.alpha, self.alpha, size=(n,)), dtype=x.dtype)
        out = _blend(x, ops.take(x, perm, axis=0), weights)
        mixed = []
        for key in ("labels", "segmentation_masks"):
            if key not in data:
                mixed.append(None)
                continue
            value = self._batch_of(data[key], n, key, single)
            value = _blend(value, ops.take(value, perm, axis=0), weights)
            mixed.append(ops.reshape(value, value.shape[1:]) if single else value)
        return out, mixed[0], mixed[1]

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "data_format": self.data_format}


@register_layer
class CutMix(_Mixing):
    """Pastes a random box of another image of the batch into each image, and mixes the
    labels by the box's area (see the module docstring).

    Args:
        factor: the range of the Beta parameter a: a number f in [0, 1] (a drawn from
            [0, f]) or a pair (lower, upper); default 1.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {"kwargs": {"factor": 1.0, "seed": 2}, "input_shape": (4, 6, 5, 2)}

    def __init__(
        self,
        factor: Any = 1.0,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.factor = _pair(factor, "factor", "CutMix")
        self.data_format = _data_format(data_format, "CutMix")

    def _unchanged(self, data: Any) -> Any:
        """Keras' CutMix casts integer images to float even when it mixes nothing."""
        if not isinstance(data, dict):
            return _float_images(self, data)
        return {**data, "images": _float_images(self, data["images"])}

    def _mix(
        self, x: Tensor, data: dict, single: bool
    ) -> tuple[Tensor, Tensor | None, Tensor | None] | None:
        if single:
            return None  # Keras leaves one image (and its labels) as it is
        n, h, w, _ = x.shape
        rng = self._generator()
        a = float(rng.uniform(self.factor[0], self.factor[1], size=())) + 1e-6
        ratio = np.sqrt(1.0 - np.asarray(rng.beta(a, a, size=(n,)), dtype=np.float64))
        box_w, box_h = ratio * w, ratio * h
        x0 = rng.uniform(0.0, 1.0, size=(n,)) * (w - box_w)
        y0 = rng.uniform(0.0, 1.0, size=(n,)) * (h - box_h)
        perm = np.asarray(rng.permutation(n), dtype=np.int64)
        rows = np.arange(h, dtype=np.float64)[None, :, None]
        columns = np.arange(w, dtype=np.float64)[None, None, :]
        box = (
            (columns >= x0[:, None, None])
            & (columns < (x0 + box_w)[:, None, None])
            & (rows >= y0[:, None, None])
            & (rows < (y0 + box_h)[:, None, None])
        )
        out = ops.where(box[..., None], ops.take(x, perm, axis=0), x)
        labels = masks = None
        if "labels" in data:
            value = self._batch_of(data["labels"], n, "labels", False)
            weights = (1.0 - box_w * box_h / (w * h)).astype(np.float64)
            dtype = value.dtype if value.dtype.kind == "f" else np.dtype(self.dtype)
            labels = _blend(value, ops.take(value, perm, axis=0), weights.astype(dtype))
        if "segmentation_masks" in data:
            value = self._batch_of(data["segmentation_masks"], n, "segmentation_masks", False)
            where = self._mask_layout(value, box, "segmentation_masks")
            masks = ops.where(where, ops.take(value, perm, axis=0), value)
        return out, labels, masks

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "data_format": self.data_format,
        }
