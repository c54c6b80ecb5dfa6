"""Keras 3's tone layers: Solarization, RandomPosterization, RandomSharpness and
Equalization (RandomHue, RandomSaturation and RandomColorJitter are in
``augmentation_color_extra.py``). Images are (batch, H, W, C) or one image (H, W, C)
(``data_format="channels_first"``: the channels before H and W), values in ``value_range``
= (low, high) (default (0, 255)); ``u = 255 (x - low) / (high - low)`` is a value on the
[0, 255] scale and ``x = low + (high - low) u / 255`` maps one back. One draw per image:

- Solarization: ``a`` uniform in ``[a_lower, 255 a_upper]`` and ``t`` uniform in
  ``[t_lower, 255 t_upper]`` (Keras scales only the upper bound of ``addition_factor`` and
  ``threshold_factor``; a number f is the pair (0, f)); ``v = clip(u + a, 0, 255)``, then
  ``v`` where ``v < t``, else ``255 - v``. With the defaults (0, 0), every value is
  inverted, ``y = high + low - x``.
- RandomPosterization: ``b`` bits, from ``factor`` by Keras' base rule within [1, 8] (a
  number f is (1, f)): ``b = lower`` when lower == upper, else an integer uniform in
  ``[lower, upper)`` (Keras' randint leaves ``upper`` out); ``q = trunc(u)`` (Keras' uint8
  cast), ``u' = (q >> (8 - b)) << (8 - b)``: the low ``8 - b`` bits cleared.
- RandomSharpness: ``f`` uniform in ``factor`` (bounds [0, 1]: a number f is (0, f)); the
  blur ``s`` is a per-channel 3 x 3 convolution with ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``
  and zero padding ("same"), ``y = clip(x + (1 - 2 f)(s - x))`` to ``value_range``: f = 0
  blurs, 1/2 keeps the image, 1 sharpens (``2 x - s``).
- Equalization (no draw): per channel, over the whole batch at once (Keras' histogram is
  of ``images[..., c]``, every image together), with ``B = bins``: bin
  ``k = clip(trunc(u (B - 1) / 255), 0, B - 1)`` (in float32, as Keras), histogram ``n_k``,
  ``c_k`` its cumulative sum, ``c_min`` the first non-zero ``c_k``,
  ``L_k = clip(round(255 (c_k - c_min) / d), 0, 255)`` with ``d = c_(B-1) - c_min`` (1 if
  0), ``u' = L[trunc(clip(u / 255 (B - 1), 0, B - 1))]``; a channel with fewer than two
  non-empty bins keeps its values.

All four act in training only (``fit``, or a direct call: ``training`` defaults to True);
with ``training=False`` (``predict``, ``evaluate``) they return their input, Equalization
too (Keras applies it only when ``training`` is true). As in Keras, Solarization and
RandomSharpness cast integer images to their float dtype in both modes (uint8 in, float32
out, values unchanged at inference); RandomPosterization and Equalization return integer
images as they are at inference. Solarization and RandomSharpness are
compositions of ops, so gradients reach the input (zero where a clip bites; ``-1`` where
solarized); RandomPosterization and Equalization are piecewise constant (a uint8 cast and a
lookup table, as in Keras) and pass no gradient (Equalization's unchanged channels do).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _ImageLayer, _RandomImageLayer
from dendrite.layers.augmentation_color import _value_range
from dendrite.layers.augmentation_color_extra import _rescale
from dendrite.layers.augmentation_color_more import _Channels, _RangedColor
from dendrite.layers.augmentation_geometry_extra import _float_images
from dendrite.layers.registry import register_layer

_U8 = (0.0, 255.0)


def _unit_factor(factor: Any, name: str, layer: str) -> tuple[float, float]:
    """Solarization's factor: a number f in [0, 1] is (0, f); a pair in [0, 1] is sorted."""
    message = (
        f"{layer}: `{name}` must be a number, or a list of two numbers, in [0, 1]; "
        f"received {name}={factor!r}."
    )
    if isinstance(factor, (list, tuple)):
        values = list(factor)
    elif isinstance(factor, bool) or not isinstance(factor, (int, float, np.number)):
        raise ValueError(message)
    else:
        values = [0.0, factor]
    if len(values) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not 0 <= v <= 1
        for v in values
    ):
        raise ValueError(message)
    lower, upper = sorted(float(v) for v in values)
    return lower, upper


@register_layer
class Solarization(_RandomImageLayer):
    """Inverts each image's values at or above a random threshold, after adding a random
    offset (see the module docstring).

    Args:
        addition_factor: a number f in [0, 1] (offset drawn from [0, 255 f]) or a pair.
        threshold_factor: a number f in [0, 1] (threshold drawn from [0, 255 f]) or a pair.
        value_range: (low, high) of the images' values (default (0, 255)).
        seed: seed of this layer's own generator.
        data_format: "channels_last" or "channels_first" (default: the configured one);
            the layer is elementwise, so it only matters to the config.
    """

    example = {
        "kwargs": {"addition_factor": 0.2, "threshold_factor": (0.3, 0.6), "seed": 4},
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }

    def __init__(
        self,
        addition_factor: Any = 0.0,
        threshold_factor: Any = 0.0,
        value_range: Any = (0, 255),
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.addition_factor = _unit_factor(addition_factor, "addition_factor", name)
        self.threshold_factor = _unit_factor(threshold_factor, "threshold_factor", name)
        self.value_range = _value_range(value_range, name)
        self.data_format = _data_format(data_format, name)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return _float_images(self, inputs)
        x, single = self._batched(inputs)
        rng = self._generator()
        shape = (x.shape[0], 1, 1, 1)
        additions = rng.uniform(self.addition_factor[0], self.addition_factor[1] * 255, shape)
        thresholds = rng.uniform(self.threshold_factor[0], self.threshold_factor[1] * 255, shape)
        u = ops.clip(_rescale(x, self.value_range, _U8) + additions.astype(x.dtype), *_U8)
        u = ops.where(u.data < thresholds.astype(x.dtype), u, 255.0 - u)
        out = _rescale(u, _U8, self.value_range)
        return ops.reshape(out, out.shape[1:]) if single else out

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "addition_factor": list(self.addition_factor),
            "threshold_factor": list(self.threshold_factor),
            "value_range": list(self.value_range),
            "data_format": self.data_format,
        }


@register_layer
class RandomPosterization(_RangedColor):
    """Keeps a random number of high bits of each 8-bit value (see the module docstring).

    Args:
        factor: the number of bits to keep, in [1, 8]: a number f draws from [1, f) (f
            itself when it is 1), a pair (lower, upper) from [lower, upper) (lower itself
            when they are equal).
        value_range: (low, high) of the images' values (default (0, 255)).
        data_format: "channels_last" or "channels_first" (default: the configured one).
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"factor": (2, 6), "seed": 5},
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }
    bounds = (1.0, 8.0)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._batched(inputs)
        n = x.shape[0]
        lower, upper = int(self.factor[0]), int(self.factor[1])
        if self.factor[0] != self.factor[1]:
            bits = self._generator().integers(lower, upper, size=n)
        else:
            bits = np.full(n, lower)
        shift = (8 - bits).astype(np.uint8)[:, None, None, None]
        u = _rescale(x, self.value_range, _U8).data
        q = np.trunc(np.clip(u, *_U8)).astype(np.uint8)
        kept = Tensor._make(((q >> shift) << shift).astype(x.dtype))
        out = _rescale(kept, _U8, self.value_range)
        return ops.reshape(out, out.shape[1:]) if single else out


@register_layer
class RandomSharpness(_RangedColor):
    """Blends each image with its blur by a random factor (see the module docstring).

    Args:
        factor: a number f in [0, 1] (drawn from [0, f]) or a pair; 0 blurs, 0.5 keeps the
            image, 1 sharpens it.
        value_range: (low, high) of the images' values; the result is clipped to it.
        data_format: "channels_last" or "channels_first" (default: the configured one).
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"factor": (0.2, 0.9), "seed": 6},
        "input_shape": (2, 5, 4, 3),
        "input_range": (0, 255),
    }
    bounds = (0.0, 1.0)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return _float_images(self, inputs)
        x, single = self._to_last(inputs)
        n, channels = x.shape[0], x.shape[-1]
        strength = self._generator().uniform(*self.factor, size=n) * 2
        strength = Tensor._make(strength.reshape(n, 1, 1, 1).astype(x.dtype))
        a, b = 1.0 / 13.0, 5.0 / 13.0
        kernel = np.asarray([[a, a, a], [a, b, a], [a, a, a]], dtype=x.dtype)
        kernel = np.broadcast_to(kernel[:, :, None, None], (3, 3, channels, 1)).copy()
        smoothed = ops.depthwise_conv(
            x, Tensor._make(kernel), strides=1, padding="same", data_format="channels_last"
        )
        out = ops.clip(x + (1.0 - strength) * (smoothed - x), *self.value_range)
        return self._from_last(out, single)


def _lookup(u: np.ndarray, bins: int) -> np.ndarray | None:
    """Keras' equalized values of ``u`` (one channel on the [0, 255] scale, every image of
    the batch), or None when fewer than two bins are used."""
    values = u.astype(np.float32)
    scaled = values * np.float32(bins - 1) / np.float32(255.0)
    index = np.clip(np.clip(scaled, -1, bins).astype(np.int32), 0, bins - 1)
    histogram = np.bincount(index.ravel(), minlength=bins)
    if np.count_nonzero(histogram) <= 1:
        return None
    cdf = np.cumsum(histogram)
    cdf_min = cdf[np.nonzero(cdf)[0][0]]
    denominator = cdf[-1] - cdf_min
    denominator = denominator if denominator != 0 else 1
    table = np.float32((cdf - cdf_min) * 255) / np.float32(denominator)
    table = np.clip(np.round(table), 0, 255)
    position = np.clip((u / 255.0) * (bins - 1), 0, bins - 1).astype(np.int32)
    return table[position].astype(u.dtype)


@register_layer
class Equalization(_Channels, _ImageLayer):
    """Histogram equalization of each channel (see the module docstring).

    Args:
        value_range: (low, high) of the images' values (default (0, 255)).
        bins: the number of histogram bins (default 256).
        data_format: "channels_last" or "channels_first" (default: the configured one).
    """

    example = {
        "kwargs": {"value_range": (0, 255), "bins": 16},
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }

    def __init__(
        self,
        value_range: Any = (0, 255),
        bins: int = 256,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"{name}: `bins` must be a positive integer; received bins={bins!r}.")
        self.bins = int(bins)
        self.value_range = _value_range(value_range, name)
        self.data_format = _data_format(data_format, name)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        low, high = self.value_range
        to_u8, from_u8 = 255.0 / (high - low), (high - low) / 255.0
        channels = []
        for c in range(x.shape[-1]):
            u = x[..., c] * to_u8 + (0.0 - low * to_u8)
            table = _lookup(u.data, self.bins)
            if table is not None:
                u = Tensor._make(table)
            channels.append(u * from_u8 + low)
        return self._from_last(ops.stack(channels, axis=-1), single)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "value_range": list(self.value_range),
            "bins": self.bins,
            "data_format": self.data_format,
        }
