"""Keras 3's hue and saturation layers and their jitter: RandomHue, RandomSaturation and
RandomColorJitter (Solarization, RandomPosterization, RandomSharpness and Equalization are
in ``augmentation_color_tone.py``). Images are (batch, H, W, C) or one image (H, W, C)
(``data_format="channels_first"``: the channels before H and W), RGB, with values in
``value_range`` = (low, high) (default (0, 255)). ``hsv`` and ``rgb`` are
``ops.image.rgb_to_hsv`` / ``hsv_to_rgb`` (Keras' formulas, hue in [0, 1)). One draw per
image; ``factor`` follows Keras' base rule: a number f gives
``(lower, upper) = (max(-|f|, bound), |f|)`` for the layer's bounds, a pair is sorted.

- RandomHue (bounds [0, 1]): ``f`` uniform in ``[lower, upper]`` and a sign, minus with
  probability 1/2, give ``d = +-f / 2``. With ``u = (x - low) / (high - low)`` and
  ``(h, s, v) = hsv(u)``: ``h' = h + d``, less 1 where ``h' > 1``, plus 1 where ``h' < 0``;
  ``y = low + (high - low) clip(rgb(h', s, v), 0, 1)``.
- RandomSaturation (bounds [-1, 1], as Keras' code, whatever its docstring says: a number
  f draws from [-f, f], and a negative draw gives k < 0, s' = low: grey for low = 0): ``f``
  uniform in ``[lower, upper]``, ``k = f / (1 - f + eps)`` (eps = ``backend.epsilon()``,
  1e-7; f = 1/2 gives k ~ 1). On the images as they are (s and h do not depend on their
  scale), ``(h, s, v) = hsv(x)``, ``s' = clip(k s, low, high)`` (Keras clips the
  saturation to ``value_range``, not to [0, 1]) and ``y = rgb(h, s', v)``, not clipped: an
  s' above 1 can take channels below ``low``, as in Keras.
- RandomColorJitter: the steps given a factor, in this order, each drawing one value per
  image from the jitter's one generator: brightness ``y = clip(x + d (high - low))``
  (d uniform in its factor, bounds [-1, 1]); contrast ``y = clip((x - m) c + m)`` (m: the
  per-image, per-channel mean over H and W; c uniform in [1 - lower, 1 + upper], bounds
  [0, 1]); then saturation and hue as above; ``clip`` is to ``value_range``.

They act in training (``fit``, or a direct call: ``training`` defaults to True, as in
Keras); with ``training=False`` (``predict``, ``evaluate``) they return their input. The
arithmetic is a composition of ops, so gradients reach the input (through hsv and rgb,
piecewise smooth; zero where a clip bites).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _RandomImageLayer
from dendrite.layers.augmentation_color import _factor, _value_range
from dendrite.layers.augmentation_color_more import _Channels, _RangedColor
from dendrite.layers.registry import register_layer


def _rescale(x: Tensor, source: Any, target: Any) -> Tensor:
    """Keras' ``_transform_value_range``: ``x`` mapped linearly from ``source`` to
    ``target`` (returned as it is when they are equal)."""
    if float(source[0]) == float(target[0]) and float(source[1]) == float(target[1]):
        return x
    unit = (x - float(source[0])) / (float(source[1]) - float(source[0]))
    return unit * (float(target[1]) - float(target[0])) + float(target[0])


def _rgb(layer: Any, x: Tensor, inputs: Any) -> None:
    """``x``, ``inputs`` moved channels-last, must have 3 channels (R, G, B)."""
    if x.shape[-1] != 3:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) expects RGB images with 3 "
            f"channels (axis {'-3' if layer.data_format == 'channels_first' else '-1'}); "
            f"received input of shape {tuple(inputs.shape)}."
        )


def _per_image(values: np.ndarray, x: Tensor) -> Tensor:
    """One value per image, shaped to broadcast over (H, W) planes: (n, 1, 1)."""
    return Tensor._make(values.reshape(-1, 1, 1).astype(x.dtype))


def _hue_draws(rng: np.random.Generator, n: int, factor: tuple[float, float]) -> np.ndarray:
    """Keras' hue deltas: a sign (minus when a uniform draw exceeds 1/2), then f."""
    sign = np.where(rng.uniform(0.0, 1.0, size=n) > 0.5, -1.0, 1.0)
    return sign * rng.uniform(*factor, size=n) * 0.5


def _shift_hue(x: Tensor, delta: Tensor, value_range: list[float]) -> Tensor:
    """Channels-last RGB ``x`` with its hue moved by ``delta`` (n, 1, 1), wrapped once."""
    unit = _rescale(x, value_range, (0.0, 1.0))
    hsv = ops.image.rgb_to_hsv(unit, data_format="channels_last")
    hue = hsv[..., 0] + delta
    hue = ops.where(hue.data > 1.0, hue - 1.0, hue)
    hue = ops.where(hue.data < 0.0, hue + 1.0, hue)
    hsv = ops.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1)
    rgb = ops.clip(ops.image.hsv_to_rgb(hsv, data_format="channels_last"), 0.0, 1.0)
    return _rescale(rgb, (0.0, 1.0), value_range)


def _saturation_draws(rng: np.random.Generator, n: int, factor: tuple[float, float]) -> np.ndarray:
    f = rng.uniform(*factor, size=n)
    return f / (1.0 - f + _settings.epsilon())


def _scale_saturation(x: Tensor, scale: Tensor, value_range: list[float]) -> Tensor:
    """Channels-last RGB ``x`` with its saturation times ``scale`` (n, 1, 1), clipped."""
    hsv = ops.image.rgb_to_hsv(x, data_format="channels_last")
    saturation = ops.clip(hsv[..., 1] * scale, *value_range)
    hsv = ops.stack([hsv[..., 0], saturation, hsv[..., 2]], axis=-1)
    return ops.image.hsv_to_rgb(hsv, data_format="channels_last")


@register_layer
class RandomHue(_RangedColor):
    """Rotates each image's hue by a random amount (see the module docstring).

    Args:
        factor: a number f in [0, 1] (the amount drawn from [0, f]) or a pair; the hue
            moves by half the amount, in either direction.
        value_range: (low, high) of the images' values (default (0, 255)).
        data_format: "channels_last" or "channels_first" (default: the configured one).
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"factor": 0.4, "value_range": (0, 255), "seed": 1},
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }
    bounds = (0.0, 1.0)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        _rgb(self, x, inputs)
        delta = _hue_draws(self._generator(), x.shape[0], self.factor)
        out = _shift_hue(x, _per_image(delta, x), self.value_range)
        return self._from_last(out, single)


@register_layer
class RandomSaturation(_RangedColor):
    """Scales each image's saturation by a random factor (see the module docstring).

    Args:
        factor: a number f in [-1, 1] (drawn from [-|f|, |f|], Keras' rule) or a pair;
            0.5 keeps the image, 0 greys it, 1 saturates it fully.
        value_range: (low, high) of the images' values; the saturation is clipped to it.
        data_format: "channels_last" or "channels_first" (default: the configured one).
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"factor": (0.3, 0.8), "value_range": (0, 255), "seed": 2},
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }
    bounds = (-1.0, 1.0)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        _rgb(self, x, inputs)
        scale = _saturation_draws(self._generator(), x.shape[0], self.factor)
        out = _scale_saturation(x, _per_image(scale, x), self.value_range)
        return self._from_last(out, single)


def _jitter_factor(value: Any, bounds: tuple[float, float], name: str) -> Any:
    """A jitter step's factor, checked (None: the step is skipped)."""
    if value is None:
        return None
    try:
        return _factor(value, bounds, "RandomColorJitter")
    except ValueError:
        raise ValueError(
            f"RandomColorJitter: `{name}` must be None, a number, or a list of two numbers, "
            f"in [{bounds[0]}, {bounds[1]}]; received {name}={value!r}."
        ) from None


def _plain(value: Any) -> Any:
    """A factor as JSON-friendly Python numbers (None, a number or a list of two)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return float(value)


@register_layer
class RandomColorJitter(_Channels, _RandomImageLayer):
    """Brightness, contrast, saturation and hue steps, in that order, each where its
    factor is given (see the module docstring).

    Args:
        value_range: (low, high) of the images' values (default (0, 255)).
        brightness_factor: RandomBrightness' factor (in [-1, 1]), or None to skip.
        contrast_factor: RandomContrast's factor (in [0, 1]), or None to skip.
        saturation_factor: RandomSaturation's factor (in [-1, 1]), or None to skip.
        hue_factor: RandomHue's factor (in [0, 1]), or None to skip.
        seed: seed of this layer's own generator (all steps draw from it).
        data_format: "channels_last" or "channels_first" (default: the configured one);
            every step honours it (Keras' steps assume channels_last).
    """

    example = {
        "kwargs": {
            "brightness_factor": 0.2,
            "contrast_factor": 0.3,
            "saturation_factor": (0.4, 0.6),
            "hue_factor": 0.2,
            "seed": 3,
        },
        "input_shape": (2, 4, 4, 3),
        "input_range": (0, 255),
    }

    def __init__(
        self,
        value_range: Any = (0, 255),
        brightness_factor: Any = None,
        contrast_factor: Any = None,
        saturation_factor: Any = None,
        hue_factor: Any = None,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.value_range = _value_range(value_range, name)
        self.data_format = _data_format(data_format, name)
        self._brightness = _jitter_factor(brightness_factor, (-1.0, 1.0), "brightness_factor")
        self._contrast = _jitter_factor(contrast_factor, (0.0, 1.0), "contrast_factor")
        self._saturation = _jitter_factor(saturation_factor, (-1.0, 1.0), "saturation_factor")
        self._hue = _jitter_factor(hue_factor, (0.0, 1.0), "hue_factor")
        # the factors as given (Keras' config), each checked above
        self.brightness_factor = _plain(brightness_factor)
        self.contrast_factor = _plain(contrast_factor)
        self.saturation_factor = _plain(saturation_factor)
        self.hue_factor = _plain(hue_factor)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        if self._saturation is not None or self._hue is not None:
            _rgb(self, x, inputs)
        rng = self._generator()
        n = x.shape[0]
        low, high = self.value_range
        if self._brightness is not None:
            delta = rng.uniform(*self._brightness, size=n) * (high - low)
            x = ops.clip(x + _per_image(delta, x)[..., None], low, high)
        if self._contrast is not None:
            lower, upper = self._contrast
            factor = _per_image(rng.uniform(1.0 - lower, 1.0 + upper, size=n), x)[..., None]
            mean = ops.mean(ops.mean(x, axis=1, keepdims=True), axis=2, keepdims=True)
            x = ops.clip((x - mean) * factor + mean, low, high)
        if self._saturation is not None:
            scale = _saturation_draws(rng, n, self._saturation)
            x = _scale_saturation(x, _per_image(scale, x), self.value_range)
        if self._hue is not None:
            x = _shift_hue(x, _per_image(_hue_draws(rng, n, self._hue), x), self.value_range)
        return self._from_last(x, single)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "value_range": list(self.value_range),
            "brightness_factor": self.brightness_factor,
            "contrast_factor": self.contrast_factor,
            "saturation_factor": self.saturation_factor,
            "hue_factor": self.hue_factor,
            "data_format": self.data_format,
        }
