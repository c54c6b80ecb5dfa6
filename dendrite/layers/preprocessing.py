"""Preprocessing layers with Keras 3's arguments: Rescaling, Normalization (with
``adapt``), UnitNormalization and Identity.

- ``Rescaling(scale, offset=0)``: ``y = x scale + offset`` (integer images become floats);
- ``Normalization(axis=-1)``: ``y = (x - mean) / max(sqrt(var), eps)`` per feature along
  ``axis`` (``invert=True``: ``y = mean + x max(sqrt(var), eps)``), with ``eps`` the
  backend's ``epsilon()`` (1e-7 unless set); ``mean`` and
  ``variance`` are given, or learnt from data by ``adapt(data)``, which averages over every
  other axis. Adapted statistics are non-trainable weights, saved with the model;
- ``UnitNormalization(axis=-1)``: ``y = x / sqrt(max(sum_axis x^2, 1e-12))``;
- ``Identity``: ``y = x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.base import ShapePreservingLayer
from dendrite.layers.registry import register_layer


@register_layer
class Rescaling(ShapePreservingLayer):
    """``y = x * scale + offset`` (see the module docstring)."""

    example = {"kwargs": {"scale": 1.0 / 255, "offset": -0.5}, "input_shape": (2, 4, 4, 3)}

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        scale = np.asarray(self.scale, dtype=self.dtype)
        offset = np.asarray(self.offset, dtype=self.dtype)
        return x * Tensor._make(scale) + Tensor._make(offset)

    def get_config(self) -> dict:
        def plain(value: Any) -> Any:
            return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


@register_layer
class Normalization(ShapePreservingLayer):
    """Feature-wise standardisation with given or adapted statistics (see the module
    docstring).

    Args:
        axis: the feature axis or axes (kept); the statistics average over the others.
            None: one mean and variance for everything.
        mean, variance: the statistics (broadcastable to the kept axes); both or neither.
        invert: undo the normalisation instead.
    """

    example = {
        "kwargs": {"mean": [0.5, -1.0, 2.0], "variance": [1.0, 4.0, 0.25]},
        "input_shape": (4, 3),
    }

    def __init__(
        self,
        axis: Any = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if axis is None:
            self.axis: tuple = ()
        elif isinstance(axis, int):
            self.axis = (axis,)
        else:
            self.axis = tuple(int(a) for a in axis)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self._stats: tuple | None = None

    def _kept_axes(self, ndim: int) -> tuple:
        axes = tuple(a % ndim for a in self.axis)
        if any(a == 0 for a in axes) and ndim > 1:
            raise ValueError(
                f"Layer '{self.name}' (Normalization): axis {self.axis} includes the batch "
                f"axis; the statistics are per feature, with the batch averaged over."
            )
        return axes

    def _stat_shape(self, input_shape: tuple) -> tuple:
        ndim = len(input_shape)
        kept = self._kept_axes(ndim)
        for a in kept:
            if input_shape[a] is None:
                raise ValueError(
                    f"Layer '{self.name}' (Normalization) needs the size of axis {a} to be "
                    f"known; received input shape {tuple(input_shape)}."
                )
        return tuple(input_shape[a] if a in kept else 1 for a in range(ndim))

    def build(self, input_shape: tuple) -> None:
        shape = self._stat_shape(tuple(input_shape))
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, self.dtype), shape)
            variance = np.broadcast_to(np.asarray(self.input_variance, self.dtype), shape)
            self._stats = (np.array(mean), np.array(variance))
        else:
            self.mean = self.add_weight(shape, initializer="zeros", trainable=False, name="mean")
            self.variance = self.add_weight(
                shape, initializer="ones", trainable=False, name="variance"
            )
            # Keras' third statistic: how many samples adapt saw (files written before it
            # existed still load).
            self.count = self.add_weight(
                (), "zeros", "int32", trainable=False, name="count", added_later=True
            )
        self.built = True

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Set the mean and variance from ``data`` (an array of samples, batch first):
        averaged over every axis but the kept ones."""
        if self.input_mean is not None:
            raise ValueError(
                f"Layer '{self.name}' (Normalization) was given its mean and variance; it "
                f"cannot adapt."
            )
        array = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=np.float64)
        if array.ndim == 0 or array.shape[0] == 0:
            raise ValueError(
                f"Layer '{self.name}' (Normalization).adapt needs a non-empty batch of "
                f"samples; received data of shape {array.shape}."
            )
        if not self.built:
            self._maybe_build((None, *array.shape[1:]))
        shape = tuple(self.mean.shape)
        if array.ndim != len(shape) or any(
            s != 1 and s != d for s, d in zip(shape[1:], array.shape[1:])
        ):
            raise ValueError(
                f"Layer '{self.name}' (Normalization) was built for inputs of shape "
                f"{shape} per kept axis; adapt received data of shape {array.shape}."
            )
        reduce = tuple(a for a in range(array.ndim) if shape[a] == 1)
        self.mean.assign(array.mean(axis=reduce, keepdims=True).astype(self.dtype))
        self.variance.assign(array.var(axis=reduce, keepdims=True).astype(self.dtype))
        self.count.assign(np.asarray(array.shape[0], dtype=np.int32))

    def _statistics(self) -> tuple:
        if self._stats is not None:
            return self._stats
        return self.mean.data, self.variance.data

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        mean, variance = self._statistics()
        if len(x.shape) != mean.ndim or any(
            m != 1 and m != d for m, d in zip(mean.shape[1:], x.shape[1:])
        ):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: its "
                f"statistics have shape {mean.shape} (1 on the averaged axes), but it "
                f"received an input of shape {tuple(x.shape)}."
            )
        scale = np.maximum(np.sqrt(variance), np.asarray(_settings.epsilon(), variance.dtype))
        if self.invert:
            return Tensor._make(mean) + x * Tensor._make(scale)
        return (x - Tensor._make(mean)) / Tensor._make(scale)

    def get_config(self) -> dict:
        def plain(value: Any) -> Any:
            return np.asarray(value).tolist() if value is not None else None

        return {
            **super().get_config(),
            "axis": self.axis[0] if len(self.axis) == 1 else (list(self.axis) or None),
            "mean": plain(self.input_mean),
            "variance": plain(self.input_variance),
            "invert": self.invert,
        }


@register_layer
class UnitNormalization(ShapePreservingLayer):
    """Scales each slice along ``axis`` to unit L2 norm."""

    example = {"kwargs": {"axis": -1}, "input_shape": (3, 4)}

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        square_sum = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        return x * ops.rsqrt(ops.maximum(square_sum, 1e-12))

    def get_config(self) -> dict:
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {**super().get_config(), "axis": axis}


@register_layer
class Identity(ShapePreservingLayer):
    """Returns its input unchanged (a placeholder in a stack)."""

    example = {"kwargs": {}, "input_shape": (3, 4)}

    def call(self, inputs: Tensor) -> Tensor:
        return inputs
