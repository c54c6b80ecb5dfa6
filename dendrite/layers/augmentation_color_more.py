"""More of Keras 3's colour layers: RandomGrayscale, RandomInvert, RandomColorDegeneration
and AutoContrast. Images are (batch, H, W, C) or one image (H, W, C) (channels_first:
channels before H and W where the layer takes ``data_format``), values in ``value_range``.

The grey level of an RGB pixel is ``g = 0.2989 r + 0.587 g + 0.114 b`` (Keras'
``rgb_to_grayscale``), copied to the three channels. With one draw per image:

- RandomGrayscale: with probability ``factor``, ``y = g``;
- RandomInvert: ``p`` uniform in ``factor`` = (lower, upper), then with probability ``p``,
  ``y = high - x`` (Keras subtracts from the range's top, whatever its bottom);
- RandomColorDegeneration: ``f`` uniform in ``factor``, ``y = clip(x + f (g - x))`` to
  ``value_range`` (``f = 1``: grey, ``f = 0``: the input);
- AutoContrast (in training and inference alike, no draw): per image and channel, the
  values are mapped to [0, 255] (``v = 255 (x - low) / (high - low)``), stretched to fill
  it (``v' = 255 (v - min_HW v) / (max_HW v - min_HW v)``, clipped), mapped back to
  ``value_range``; a flat channel (0 / 0) keeps its input.

The random three act in training (``fit``, or a direct call: ``training`` defaults to
True, as in Keras); with ``training=False`` (``predict``, ``evaluate``) they return their
input. The arithmetic is a composition of ops, so gradients reach the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _ImageLayer, _RandomImageLayer
from dendrite.layers.augmentation_color import _factor, _value_range
from dendrite.layers.registry import register_layer

_GREY = np.asarray([0.2989, 0.587, 0.114])


class _Channels:
    """Channels-first inputs moved to channels-last and back around ``_transform``."""

    data_format = "channels_last"

    def _to_last(self, inputs: Tensor) -> tuple[Tensor, bool]:
        x = inputs
        if self.data_format == "channels_first" and len(x.shape) in (3, 4):
            x = ops.moveaxis(x, -3, -1)
        return self._batched(x)  # type: ignore[attr-defined]

    def _from_last(self, out: Tensor, single: bool) -> Tensor:
        out = ops.reshape(out, out.shape[1:]) if single else out
        return ops.moveaxis(out, -1, -3) if self.data_format == "channels_first" else out


def _grey(layer: Any, x: Tensor) -> Tensor:
    """Keras' grey level of channels-last RGB images, broadcast over the channels."""
    if x.shape[-1] != 3:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) expects RGB images with 3 "
            f"channels; received input of shape {tuple(x.shape)}."
        )
    weights = Tensor._make(_GREY.astype(x.dtype))
    return ops.sum(x * weights, axis=-1, keepdims=True)


@register_layer
class RandomGrayscale(_Channels, _RandomImageLayer):
    """Turns each image grey with probability ``factor`` (see the module docstring).

    Args:
        factor: the probability, in [0, 1] (default 0.5).
        data_format: "channels_last" (the default) or "channels_first".
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"factor": 0.5, "seed": 3}, "input_shape": (2, 4, 4, 3)}

    def __init__(
        self,
        factor: float = 0.5,
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float, np.number)):
            raise ValueError(f"RandomGrayscale: `factor` must be a number; received {factor!r}.")
        if factor < 0 or factor > 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor}")
        self.factor = float(factor)
        self.data_format = _data_format(data_format, "RandomGrayscale")

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        apply = self._generator().uniform(0.0, 1.0, size=x.shape[0]) < self.factor
        grey = _grey(self, x) * Tensor._make(np.ones(3, x.dtype))
        keep = Tensor._make(apply[:, None, None, None].astype(x.dtype))
        return self._from_last(grey * keep + x * (1 - keep), single)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "data_format": self.data_format}


class _RangedColor(_Channels, _RandomImageLayer):
    """A factor pair drawn per image and a value range (Keras' base factor rule)."""

    bounds: tuple[float, float] = (-1.0, 1.0)

    def __init__(
        self,
        factor: Any,
        value_range: Any = (0, 255),
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.factor = _factor(factor, self.bounds, name)
        self.value_range = _value_range(value_range, name)
        self.data_format = _data_format(data_format, name)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
            "data_format": self.data_format,
        }


@register_layer
class RandomInvert(_RangedColor):
    """Inverts each image, ``y = high - x``, with a probability drawn from ``factor`` (see
    the module docstring).

    Args:
        factor: a number p in [0, 1] (probability drawn from [0, p]) or a pair; default 1.
        value_range: (low, high) of the images' values.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {"kwargs": {"factor": 0.8, "seed": 4}, "input_shape": (2, 4, 4, 3)}
    bounds = (0.0, 1.0)

    def __init__(
        self,
        factor: Any = 1.0,
        value_range: Any = (0, 255),
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(factor, value_range, data_format, seed, **kwargs)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        rng = self._generator()
        n = x.shape[0]
        probability = rng.uniform(*self.factor, size=n)
        apply = rng.uniform(0.0, 1.0, size=n) < probability
        keep = Tensor._make(apply[:, None, None, None].astype(x.dtype))
        out = (self.value_range[1] - x) * keep + x * (1 - keep)
        return self._from_last(out, single)


@register_layer
class RandomColorDegeneration(_RangedColor):
    """Blends each image towards its grey version by a random factor (see the module
    docstring).

    Args:
        factor: a number f in [-1, 1] (drawn from [-f, f] clipped at -1) or a pair.
        value_range: (low, high) of the images' values; the result is clipped to it.
        data_format: "channels_last" (the default) or "channels_first".
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"factor": (0.2, 0.7), "seed": 5}, "input_shape": (2, 4, 4, 3)}

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._to_last(inputs)
        draws = self._generator().uniform(*self.factor, size=(x.shape[0], 1, 1, 1))
        f = Tensor._make(draws.astype(x.dtype))
        out = ops.clip(x + f * (_grey(self, x) - x), *self.value_range)
        return self._from_last(out, single)


@register_layer
class AutoContrast(_Channels, _ImageLayer):
    """Stretches each image's channels to fill ``value_range`` (see the module docstring),
    in training and inference alike.

    Args:
        value_range: (low, high) of the images' values (default (0, 255)).
    """

    example = {"kwargs": {"value_range": (0, 1)}, "input_shape": (2, 4, 4, 3)}

    def __init__(self, value_range: Any = (0, 255), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
            raise ValueError(
                "The `value_range` argument should be a list of two numbers. "
                f"Received: value_range={value_range}"
            )
        self.value_range = sorted(float(v) for v in value_range)

    def call(self, inputs: Tensor) -> Tensor:
        x, single = self._batched(inputs)
        low, high = self.value_range
        v = (x - low) * (255.0 / (high - low))
        bottom = ops.min(v, axis=(1, 2), keepdims=True)
        top = ops.max(v, axis=(1, 2), keepdims=True)
        spread = (top - bottom).data
        flat = Tensor._make((spread == 0).astype(x.dtype))
        # A flat channel keeps its input (Keras: NaN from 0 / 0 replaced by the input).
        safe = top - bottom + flat
        stretched = ops.clip((v - bottom) * (255.0 / safe), 0.0, 255.0)
        out = stretched * ((high - low) / 255.0) + low
        out = out * (1 - flat) + x * flat
        out = ops.reshape(out, out.shape[1:]) if single else out
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "value_range": list(self.value_range)}
