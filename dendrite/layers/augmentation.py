"""Image resizing and geometric augmentation layers with Keras 3's arguments: Resizing,
CenterCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom (the colour ones are
in ``augmentation_color.py``). Images are channels_last, (batch, H, W, C) or one image
(H, W, C).

The random layers act in training: in ``fit``, and when called directly (their ``call``
defaults to ``training=True``, as Keras'); in ``predict``/``evaluate`` or with
``training=False`` they return their input. Each draws one transform per image, then
samples every output pixel ``(y, x)`` from the input at the transformed coordinates
``(y', x')``:

- flip: ``x' = W - 1 - x`` (horizontal) and/or ``y' = H - 1 - y`` (vertical), each with
  probability 1/2;
- rotation by ``a`` (counter-clockwise, a fraction ``factor`` of a full turn) about the
  centre ``(cy, cx)``: ``x' = cx + cos a (x - cx) - sin a (y - cy)``,
  ``y' = cy + sin a (x - cx) + cos a (y - cy)``;
- translation by ``(dy, dx)`` (fractions of H and W): ``y' = y - dy``, ``x' = x - dx``;
- zoom by ``(zy, zx)`` (1 + a fraction; > 1 zooms out): ``y' = cy + zy (y - cy)``.

Sampling is bilinear (``interpolation="bilinear"``) or nearest, and a coordinate outside
the image follows ``fill_mode``: "reflect" (d c b a | a b c d | d c b a), "wrap", "nearest"
(the edge pixel) or "constant" (``fill_value``). The sampling is a weighted gather of input
pixels, so gradients flow back to the input.

``Resizing(height, width)`` samples at half-pixel centres, ``y' = (y + 1/2) H / h - 1/2``
(TensorFlow's ``resize`` with ``half_pixel_centers``), in inference too. ``CenterCrop``
cuts the central (height, width) window, rows ``(H - height) // 2`` on; an image smaller
than that is first cut to the largest central window of the target's aspect ratio, then
resized (Keras' ``smart_resize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.creation import as_float_tensor

_FILL_MODES = ("reflect", "wrap", "nearest", "constant")
_INTERPOLATIONS = ("bilinear", "nearest")


def _fold(index: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel indices folded into [0, size) by ``mode``, and where they are inside
    (only "constant" leaves pixels outside: their weight goes to ``fill_value``)."""
    inside = (index >= 0) & (index < size)
    if mode == "reflect":
        period = np.mod(index, 2 * size)
        folded = np.where(period < size, period, 2 * size - 1 - period)
    elif mode == "wrap":
        folded = np.mod(index, size)
    else:  # nearest, constant
        folded = np.clip(index, 0, size - 1)
    return folded.astype(np.int64), inside if mode == "constant" else np.ones_like(inside)


def _sample(
    images: Tensor, ys: np.ndarray, xs: np.ndarray, mode: str, interpolation: str, fill: float
) -> Tensor:
    """``out[n, i, j, c] = images[n, ys[n, i, j], xs[n, i, j], c]`` interpolated."""
    n, h, w, c = images.shape
    flat = ops.reshape(images, (n * h * w, c))
    base = (np.arange(n) * h * w)[:, None, None]
    if interpolation == "nearest":
        corners = [(np.floor(ys + 0.5), np.floor(xs + 0.5), np.ones_like(ys))]
    else:
        y0, x0 = np.floor(ys), np.floor(xs)
        wy, wx = ys - y0, xs - x0
        corners = [
            (y0, x0, (1 - wy) * (1 - wx)),
            (y0, x0 + 1, (1 - wy) * wx),
            (y0 + 1, x0, wy * (1 - wx)),
            (y0 + 1, x0 + 1, wy * wx),
        ]
    out = None
    filled = np.zeros(ys.shape)
    for cy, cx, weight in corners:
        iy, in_y = _fold(cy.astype(np.int64), h, mode)
        ix, in_x = _fold(cx.astype(np.int64), w, mode)
        inside = in_y & in_x
        filled += weight * ~inside  # the share of fill_value ("constant" only)
        weight = weight * inside
        index = (base + iy * w + ix).reshape(-1)
        part = ops.take(flat, index, axis=0)
        part = ops.reshape(part, (n, *ys.shape[1:], c)) * Tensor._make(
            weight[..., None].astype(images.dtype)
        )
        out = part if out is None else out + part
    if mode == "constant" and fill:
        out = out + Tensor._make((filled[..., None] * fill).astype(images.dtype))
    return out


class _ImageLayer(Layer):
    """Handles the one-image (H, W, C) form and the float cast."""

    def _batched(self, inputs: Tensor) -> tuple[Tensor, bool]:
        if len(inputs.shape) not in (3, 4):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects images of shape "
                f"(batch, height, width, channels) or (height, width, channels), received "
                f"{tuple(inputs.shape)}."
            )
        x = inputs if inputs.dtype.kind == "f" else as_float_tensor(inputs, self.dtype)
        if len(x.shape) == 3:
            return ops.reshape(x, (1, *x.shape)), True
        return x, False

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)


_FORMATS = ("channels_last", "channels_first")


def _data_format(value: str | None, layer: str) -> str:
    """Keras' ``data_format`` argument: None is the configured ``image_data_format``."""
    return _check(value or _settings.image_data_format(), _FORMATS, "data_format", layer)


def _check(value: str, allowed: tuple, name: str, layer: str) -> str:
    if value not in allowed:
        raise ValueError(
            f"Unknown `{name}` for {layer}: {value!r}. Expected one of {', '.join(allowed)}."
        )
    return value


def _range(factor: Any, name: str, layer: str) -> tuple[float, float]:
    """Keras' factor: a float f gives (-f, f); a pair gives (lower, upper)."""
    if isinstance(factor, (list, tuple)):
        lower, upper = float(factor[0]), float(factor[1])
    else:
        lower, upper = -abs(float(factor)), abs(float(factor))
    if lower > upper:
        raise ValueError(f"{layer}: `{name}` must have lower <= upper, received {factor}.")
    return lower, upper


class _RandomImageLayer(_ImageLayer):
    """A layer that draws from its own generator: from ``default_rng([seed, k])`` on its
    k-th call with a seed, else from dendrite's global generator."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape: Any) -> None:
        if self.seed is not None:
            # With a seed, call k draws from default_rng([seed, k]); the count is a weight,
            # so a saved and reloaded model continues the same sequence (Keras saves its
            # seed generator's state too).
            self._seed_state = self.add_weight(
                (), initializer="zeros", dtype="int64", trainable=False, name="seed_state"
            )
        self.built = True

    def _generator(self) -> np.random.Generator:
        if self.seed is None:
            return _settings.rng()
        count = int(self._seed_state.data)
        self._seed_state.data[...] = count + 1
        return np.random.default_rng([int(self.seed), count])

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


class _RandomAffine(_RandomImageLayer):
    """A random transform per image, sampled with interpolation and a fill mode."""

    def __init__(
        self,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        cls = type(self).__name__
        self.fill_mode = _check(fill_mode, _FILL_MODES, "fill_mode", cls)
        self.interpolation = _check(interpolation, _INTERPOLATIONS, "interpolation", cls)
        self.fill_value = float(fill_value)

    def _coordinates(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._batched(inputs)
        n, h, w, _ = x.shape
        ys, xs = self._coordinates(n, h, w)
        out = _sample(x, ys, xs, self.fill_mode, self.interpolation, self.fill_value)
        return ops.reshape(out, out.shape[1:]) if single else out

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


def _grid(n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    ys, xs = np.meshgrid(rows, columns, indexing="ij")
    return np.broadcast_to(ys, (n, h, w)), np.broadcast_to(xs, (n, h, w))


@register_layer
class RandomFlip(_RandomAffine):
    """Flips each image left-right and/or up-down with probability 1/2 (training only).

    Args:
        mode: "horizontal", "vertical" or "horizontal_and_vertical" (Keras' default).
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"mode": "horizontal", "seed": 1}, "input_shape": (2, 4, 5, 3)}

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        modes = ("horizontal", "vertical", "horizontal_and_vertical")
        self.mode = _check(mode, modes, "mode", "RandomFlip")

    def _coordinates(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = _grid(n, h, w)
        rng = self._generator()
        if "horizontal" in self.mode:
            flip = rng.random(n) < 0.5
            xs = np.where(flip[:, None, None], w - 1 - xs, xs)
        if "vertical" in self.mode:
            flip = rng.random(n) < 0.5
            ys = np.where(flip[:, None, None], h - 1 - ys, ys)
        return ys, xs

    def get_config(self) -> dict:
        return {**Layer.get_config(self), "mode": self.mode, "seed": self.seed}


@register_layer
class RandomRotation(_RandomAffine):
    """Rotates each image by a random fraction of a full turn in ``factor`` (a float f:
    [-f, f]; a pair: [lower, upper]), counter-clockwise for positive values."""

    example = {"kwargs": {"factor": 0.1, "seed": 2}, "input_shape": (2, 5, 5, 2)}

    def __init__(
        self,
        factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        self._bounds = _range(factor, "factor", "RandomRotation")

    def _coordinates(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = _grid(n, h, w)
        angle = self._generator().uniform(*self._bounds, size=n) * 2 * np.pi
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        cy, cx = (h - 1) / 2, (w - 1) / 2
        dy, dx = ys - cy, xs - cx
        return cy + sin * dx + cos * dy, cx + cos * dx - sin * dy

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}


class _PerAxis(_RandomAffine):
    """A random transform with one draw per image and axis: ``height_factor`` and
    ``width_factor`` (each a float f: [-f, f], or a pair; width None: the height's draw)."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        cls = type(self).__name__
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _range(height_factor, "height_factor", cls)
        self._width = None if width_factor is None else _range(width_factor, "width_factor", cls)

    def _per_axis(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per image, the height and width draws, shaped (n, 1, 1)."""
        rng = self._generator()
        along_h = rng.uniform(*self._height, size=n)[:, None, None]
        if self._width is None:
            return along_h, along_h
        return along_h, rng.uniform(*self._width, size=n)[:, None, None]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


@register_layer
class RandomTranslation(_PerAxis):
    """Shifts each image by random fractions of its height and width (each a float f:
    [-f, f], or a pair)."""

    example = {
        "kwargs": {"height_factor": 0.2, "width_factor": 0.2, "seed": 3},
        "input_shape": (2, 5, 5, 2),
    }

    def __init__(self, height_factor: Any, width_factor: Any, **kwargs: Any) -> None:
        super().__init__(height_factor, width_factor, **kwargs)

    def _coordinates(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = _grid(n, h, w)
        dy, dx = self._per_axis(n)
        return ys - dy * h, xs - dx * w


@register_layer
class RandomZoom(_PerAxis):
    """Zooms each image by ``1 + u`` with ``u`` drawn from ``height_factor`` (a float f:
    [-f, f], or a pair; positive values zoom out) and from ``width_factor`` (default: the
    same draw as the height, keeping the aspect ratio)."""

    example = {"kwargs": {"height_factor": 0.3, "seed": 4}, "input_shape": (2, 5, 5, 2)}

    def _coordinates(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = _grid(n, h, w)
        zy, zx = self._per_axis(n)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        return cy + (1.0 + zy) * (ys - cy), cx + (1.0 + zx) * (xs - cx)


@register_layer
class Resizing(_ImageLayer):
    """Resizes images to (height, width), sampling at half-pixel centres (bilinear or
    nearest), in training and inference alike."""

    example = {"kwargs": {"height": 3, "width": 6}, "input_shape": (2, 5, 4, 2)}

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", **kwargs: Any):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"Resizing: height and width must be positive, got {height}, {width}.")
        self.interpolation = _check(interpolation, _INTERPOLATIONS, "interpolation", "Resizing")

    def call(self, inputs: Tensor) -> Tensor:
        x, single = self._batched(inputs)
        out = _resized(x, self.height, self.width, self.interpolation)
        return ops.reshape(out, out.shape[1:]) if single else out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = tuple(input_shape)
        return (*shape[:-3], self.height, self.width, shape[-1])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
        }


def _resized(x: Tensor, height: int, width: int, interpolation: str) -> Tensor:
    """Batched channels_last images resized to (height, width) at half-pixel centres."""
    n, h, w, _ = x.shape
    rows = (np.arange(height) + 0.5) * h / height - 0.5
    columns = (np.arange(width) + 0.5) * w / width - 0.5
    ys, xs = np.meshgrid(rows, columns, indexing="ij")
    ys = np.broadcast_to(np.clip(ys, 0, h - 1), (n, height, width))
    xs = np.broadcast_to(np.clip(xs, 0, w - 1), (n, height, width))
    return _sample(x, ys, xs, "nearest", interpolation, 0.0)


@register_layer
class CenterCrop(_ImageLayer):
    """The central (height, width) window of each image, in training and inference alike
    (see the module docstring for images smaller than the window).

    Args:
        height, width: the output's size.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {"kwargs": {"height": 3, "width": 2}, "input_shape": (2, 5, 4, 2)}

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        if self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"CenterCrop: height and width must be positive, got {height}, {width}."
            )
        self.data_format = _data_format(data_format, "CenterCrop")

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.data_format == "channels_first":
            x = ops.moveaxis(x, -3, -1)
        x, single = self._batched(x)
        _, h, w, _ = x.shape
        if h >= self.height and w >= self.width:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            out = x[:, top : top + self.height, left : left + self.width, :]
        else:
            crop_h = max(min(h, int(w * self.height / self.width)), 1)
            crop_w = max(min(w, int(h * self.width / self.height)), 1)
            top, left = (h - crop_h) // 2, (w - crop_w) // 2
            window = x[:, top : top + crop_h, left : left + crop_w, :]
            out = _resized(window, self.height, self.width, "bilinear")
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
