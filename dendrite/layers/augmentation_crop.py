"""RandomCrop with Keras 3's arguments and rule. Images are (batch, H, W, C) or one image
(H, W, C) (channels_first: (batch, C, H, W) or (C, H, W)); the output is (height, width).

In training, when the image is larger than the target on both axes (``H > height`` and
``W > width``, strictly, as Keras), one window per batch (Keras draws a single location for
the whole batch) starts at ``top = floor(u_1 (H - height + 1))``,
``left = floor(u_2 (W - width + 1))`` with ``u_1, u_2`` uniform in [0, 1).

Otherwise (at inference, or an image not larger on both axes) the start is that of the
largest window of the target's aspect ratio, centred: ``h = max(min(H, floor(W height /
width)), 1)``, ``w = max(min(W, floor(H width / height)), 1)``, ``top = floor((H - h) / 2)``,
``left = floor((W - w) / 2)``. As in Keras 3.15 the slice taken from there is
``[top, top + height) x [left, left + width)``, cut short by the image's edge (so it keeps
the target's size only where the image has room, and the aspect ratio is not kept), and is
resized bilinearly (half-pixel centres) to (height, width) when its size differs.
Keras 3.15 applies this rule in training only; its inference path returns the input
unchanged (a shape its own ``compute_output_shape`` does not give), which dendrite does
not copy: at inference it applies the centred rule above. Gradients reach the input
through the slice and the resize.
"""

from __future__ import annotations

from typing import Any

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _RandomImageLayer, _resized
from dendrite.layers.registry import register_layer


@register_layer
class RandomCrop(_RandomImageLayer):
    """A random (height, width) window in training, the central one (resized) otherwise
    (see the module docstring).

    Args:
        height, width: the output's size.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {"kwargs": {"height": 3, "width": 4, "seed": 1}, "input_shape": (2, 5, 6, 2)}

    def __init__(
        self,
        height: int,
        width: int,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.height, self.width = int(height), int(width)
        if self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"RandomCrop: height and width must be positive, received height={height}, "
                f"width={width}."
            )
        self.data_format = _data_format(data_format, "RandomCrop")

    def _start(self, h: int, w: int, training: bool) -> tuple[int, int]:
        if training and h > self.height and w > self.width:
            rng = self._generator()
            top = int(rng.uniform(0.0, float(h - self.height + 1)))
            left = int(rng.uniform(0.0, float(w - self.width + 1)))
            return top, left
        crop_h = max(min(h, int(float(w * self.height) / self.width)), 1)
        crop_w = max(min(w, int(float(h * self.width) / self.height)), 1)
        return int((h - crop_h) / 2), int((w - crop_w) / 2)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        x = inputs
        if self.data_format == "channels_first" and len(x.shape) in (3, 4):
            x = ops.moveaxis(x, -3, -1)
        x, single = self._batched(x)
        _, h, w, _ = x.shape
        top, left = self._start(h, w, bool(training))
        out = x[:, top : top + self.height, left : left + self.width, :]
        if tuple(out.shape[1:3]) != (self.height, self.width):
            out = _resized(out, self.height, self.width, "bilinear")
        out = ops.reshape(out, out.shape[1:]) if single else out
        return ops.moveaxis(out, -1, -3) if self.data_format == "channels_first" else out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        axes = (-3, -2) if self.data_format == "channels_last" else (-2, -1)
        shape[axes[0]], shape[axes[1]] = self.height, self.width
        return tuple(shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "data_format": self.data_format,
        }
