"""Regularisation layers (the design document's 9.3, over-fitting): SpatialDropout1D/2D/3D,
GaussianNoise, GaussianDropout, ActivityRegularization.

``Dropout`` itself lives in ``layers/core.py``; the spatial variants reuse it with a noise
shape that keeps or drops whole channels. Every random layer is the identity at inference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.layers import regularizers
from dendrite.layers.base import Layer, ShapePreservingLayer
from dendrite.layers.core import Dropout
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer

_DATA_FORMATS = ("channels_last", "channels_first")


def _data_format(layer_name: str, value: str | None) -> str:
    value = (value or _settings.image_data_format()).lower()
    if value not in _DATA_FORMATS:
        raise ValueError(
            f"{layer_name}: data_format must be 'channels_last' or 'channels_first'; "
            f"received {value!r}."
        )
    return value


class _SpatialDropout(Dropout):
    """Dropout whose mask is shared over the spatial axes: each sample keeps or drops a
    whole channel, ``y[b, ..., c] = x[b, ..., c] * m[b, c] / (1 - rate)``,
    ``m ~ Bernoulli(1 - rate)``."""

    _rank = 3

    def __init__(
        self,
        rate: float,
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = _data_format(type(self).__name__, data_format)
        spatial = self._rank - 2
        if self.data_format == "channels_last":
            self.noise_shape = (None, *([1] * spatial), None)
        else:
            self.noise_shape = (None, None, *([1] * spatial))
        self.supports_masking = True
        self.input_spec = InputSpec(ndim=self._rank)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = {**Layer.get_config(self), "rate": self.rate, "seed": self.seed}
        if self._rank > 3:
            config["data_format"] = self.data_format
        return config


@register_layer
class SpatialDropout1D(_SpatialDropout):
    """Spatial dropout for (batch, timesteps, channels) inputs: drops whole channels
    (the same channels at every timestep of a sample).

    Args:
        rate: fraction of the channels to drop, in [0, 1).
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"rate": 0.5}, "input_shape": (2, 3, 4)}
    _rank = 3

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.pop("data_format", None)
        super().__init__(rate, data_format="channels_last", seed=seed, **kwargs)


@register_layer
class SpatialDropout2D(_SpatialDropout):
    """Spatial dropout for images: drops whole feature maps.

    Args:
        rate: fraction of the channels to drop, in [0, 1).
        data_format: "channels_last" (batch, rows, cols, channels), the default, or
            "channels_first" (batch, channels, rows, cols).
        seed: seed of this layer's own generator.
    """

    example = {"kwargs": {"rate": 0.5}, "input_shape": (2, 3, 3, 2)}
    _rank = 4


@register_layer
class SpatialDropout3D(_SpatialDropout):
    """Spatial dropout for volumes (batch, d1, d2, d3, channels): drops whole feature maps.

    Args:
        rate, data_format, seed: as SpatialDropout2D.
    """

    example = {"kwargs": {"rate": 0.5}, "input_shape": (2, 2, 2, 2, 3)}
    _rank = 5


def _generator(layer: Any) -> np.random.Generator:
    return layer._rng if layer._rng is not None else _settings.rng()


def _normal(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dtype in (np.float32, np.float64):
        return rng.standard_normal(shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


@register_layer
class GaussianNoise(ShapePreservingLayer):
    """Additive zero-centred Gaussian noise, in training only: ``y = x + n``,
    ``n ~ N(0, stddev^2)``; at inference ``y = x``.

    Args:
        stddev: standard deviation of the noise, in [0, 1] (Keras' range).
        seed: seed of this layer's own generator (default: dendrite's global one).
    """

    example = {"kwargs": {"stddev": 0.1}, "input_shape": (3, 4)}

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= stddev <= 1:
            raise ValueError(
                "Invalid value received for argument `stddev` of GaussianNoise. Expected a "
                f"float value between 0 and 1. Received: stddev={stddev}"
            )
        self.stddev = float(stddev)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training or self.stddev == 0:
            return inputs
        noise = _normal(_generator(self), inputs.shape, inputs.dtype)
        noise *= np.asarray(self.stddev, inputs.dtype)
        return inputs + noise

    def get_config(self) -> dict:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


@register_layer
class GaussianDropout(ShapePreservingLayer):
    """Multiplicative Gaussian noise of mean 1, in training only:
    ``y = x * n``, ``n ~ N(1, rate / (1 - rate))``; at inference ``y = x``.

    Args:
        rate: drop probability of the equivalent Bernoulli dropout, in [0, 1).
        seed: seed of this layer's own generator (default: dendrite's global one).
    """

    example = {"kwargs": {"rate": 0.3}, "input_shape": (3, 4)}

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(
                "Invalid value received for argument `rate` of GaussianDropout. Expected a "
                f"float value in [0, 1). Received: rate={rate}"
            )
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = _normal(_generator(self), inputs.shape, inputs.dtype)
        noise *= np.asarray(stddev, inputs.dtype)
        noise += np.asarray(1.0, inputs.dtype)
        return inputs * noise

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# SELU's constants (Klambauer et al., 2017): selu(x) = SCALE * (x if x > 0 else ALPHA (e^x - 1)).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@register_layer
class AlphaDropout(ShapePreservingLayer):
    """Dropout that keeps SELU's self-normalisation (Klambauer et al., 2017), in training
    only: each value is kept with probability ``1 - rate`` or set to SELU's negative
    saturation ``a' = -SCALE * ALPHA``, then ``y = a x' + b`` with
    ``a = ((1 - rate)(1 + rate a'^2))^(-1/2)`` and ``b = -a a' rate``, which restores zero
    mean and unit variance; at inference ``y = x``.

    Args:
        rate: drop probability, in [0, 1].
        noise_shape: the mask's shape (None axes take the input's), for masks shared along
            axes.
        seed: seed of this layer's own generator (default: dendrite's global one).
    """

    example = {"kwargs": {"rate": 0.3}, "input_shape": (3, 4)}

    def __init__(
        self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(
                "Invalid value received for argument `rate` of AlphaDropout. Expected a "
                f"float value in [0, 1]. Received: rate={rate}"
            )
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(d if n is None else n for n, d in zip(self.noise_shape, inputs.shape))
        kept = (_generator(self).random(shape) >= self.rate).astype(inputs.dtype)
        saturation = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * saturation**2)) ** -0.5
        b = -a * saturation * self.rate
        shift = np.asarray(a * saturation, inputs.dtype) * (1 - kept) + np.asarray(b, inputs.dtype)
        return inputs * Tensor._make(kept * np.asarray(a, inputs.dtype)) + Tensor._make(shift)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "seed": self.seed,
            "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
        }


@register_layer
class ActivityRegularization(ShapePreservingLayer):
    """The identity, plus the activity penalty ``l1 * sum|y| + l2 * sum y^2`` added to the
    training loss (through the layer's ``activity_regularizer``, as Keras does).

    Args:
        l1, l2: the penalty factors (non-negative).
    """

    example = {"kwargs": {"l1": 0.01, "l2": 0.01}, "input_shape": (3, 4)}

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        kwargs.pop("activity_regularizer", None)
        super().__init__(**kwargs)
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.activity_regularizer = regularizers.L1L2(l1=self.l1, l2=self.l2)

    def call(self, inputs: Tensor) -> Tensor:
        return inputs

    def get_config(self) -> dict:
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
