"""Colour augmentation layers with Keras 3's arguments: RandomContrast and RandomBrightness.
Images are channels_last, (batch, H, W, C) or one image (H, W, C), with values in
``value_range`` (Keras' default (0, 255)). In training (``fit``, or a direct
call: ``training`` defaults to True, as in Keras); with ``training=False`` (``predict``,
``evaluate``) they return their input. One draw per image:

- contrast, with ``f`` uniform in ``[1 - lower, 1 + upper]``: each channel moves away from
  (or towards) its mean over the image, ``y = (x - mean_HW(x)) f + mean_HW(x)``;
- brightness, with ``d`` uniform in ``[lower, upper]``: ``y = x + d (high - low)``;

then ``y`` is clipped to ``value_range``. ``factor`` is Keras': a number f gives
``(lower, upper) = (max(-f, bound), f)`` for bounds (0, 1) (contrast) and (-1, 1)
(brightness), so a contrast factor of 0.2 draws f from [1, 1.2] as Keras does; a pair is
sorted into (lower, upper). The arithmetic is a composition of ops: gradients reach the
input (zero where the clip bites).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import _RandomImageLayer
from dendrite.layers.registry import register_layer


def _factor(factor: Any, bounds: tuple[float, float], layer: str) -> tuple[float, float]:
    """Keras' ``factor`` as (lower, upper), checked against ``bounds``."""
    message = (
        f"{layer}: `factor` must be a number, or a list of two numbers, in [{bounds[0]}, "
        f"{bounds[1]}]; received factor={factor!r}."
    )
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(message)
        lower, upper = sorted(float(f) for f in factor)
        return lower, upper
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.number)):
        raise ValueError(message)
    if not bounds[0] <= factor <= bounds[1]:
        raise ValueError(message)
    return max(-abs(float(factor)), bounds[0]), abs(float(factor))


def _value_range(value_range: Any, layer: str) -> list[float]:
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise ValueError(
            f"{layer}: `value_range` must be a list or tuple of two numbers (low, high); "
            f"received value_range={value_range!r}."
        )
    return sorted(float(v) for v in value_range)


class _ColorLayer(_RandomImageLayer):
    """One draw per image of a shape (n, 1, 1, 1), applied by ``_adjust``, then the clip."""

    bounds: tuple[float, float] = (0.0, 1.0)

    def __init__(
        self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.factor = _factor(factor, self.bounds, name)
        self.value_range = _value_range(value_range, name)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not training:
            return inputs
        x, single = self._batched(inputs)
        draws = self._draw(self._generator(), x.shape[0]).astype(x.dtype)
        out = ops.clip(self._adjust(x, Tensor._make(draws)), *self.value_range)
        return ops.reshape(out, out.shape[1:]) if single else out

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def _adjust(self, x: Tensor, draws: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
        }


@register_layer
class RandomContrast(_ColorLayer):
    """Scales each image's deviations from its per-channel mean by a random factor (see
    the module docstring).

    Args:
        factor: a number in [0, 1] or a pair (lower, upper): the factor is drawn from
            ``[1 - lower, 1 + upper]``.
        value_range: (low, high) of the images' values; the result is clipped to it.
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"factor": 0.5, "seed": 5}, "input_shape": (2, 4, 4, 3)}
    bounds = (0.0, 1.0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lower, upper = self.factor
        return rng.uniform(1.0 - lower, 1.0 + upper, size=(n, 1, 1, 1))

    def _adjust(self, x: Tensor, draws: Tensor) -> Tensor:
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        return (x - mean) * draws + mean


@register_layer
class RandomBrightness(_ColorLayer):
    """Adds a random fraction of the value range to each image (see the module docstring).

    Args:
        factor: a number in [-1, 1] (f: [-|f|, |f|]) or a pair (lower, upper): the fraction
            of ``high - low`` added.
        value_range: (low, high) of the images' values; the result is clipped to it.
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"factor": 0.2, "seed": 6}, "input_shape": (2, 4, 4, 3)}
    bounds = (-1.0, 1.0)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        low, high = self.value_range
        return rng.uniform(*self.factor, size=(n, 1, 1, 1)) * (high - low)

    def _adjust(self, x: Tensor, draws: Tensor) -> Tensor:
        return x + draws
