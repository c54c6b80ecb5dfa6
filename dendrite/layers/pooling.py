"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global poolings.

A pooling layer summarises each window of ``pool_size`` moved by ``strides`` (default:
``pool_size``) over the spatial axes, channel by channel:

- max: ``y[n, p, c] = max_{i in window} x[n, p s + i, c]`` (the gradient goes to the first
  maximum of each window);
- average: ``y[n, p, c] = (1 / |W_p|) sum_{i in W_p} x[n, p s + i, c]``, with ``W_p`` the
  window positions inside the input ('same' leaves the padding out of the count, as Keras
  does).

Global poolings reduce every spatial axis at once: ``y[n, c] = max_p x[n, p, c]`` or
``mean_p x[n, p, c]`` (``keepdims`` keeps the spatial axes with size 1).
GlobalAveragePooling1D honours a (batch, steps) mask: ``y = sum_t m_t x_t / sum_t m_t``.
The 3-D windowed poolings run as a 2-D pooling of every depth slice, then a pooling over
depth (``dendrite.ops.pooling3d``: both separate exactly).
"""

from __future__ import annotations

from typing import Any

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.ops.pooling import average_pool, max_pool
from dendrite.ops.pooling3d import average_pool3d, max_pool3d
from dendrite.ops.windows import (
    conv_output_length,
    normalize_tuple,
    standardize_data_format,
    standardize_padding,
)


class BasePooling(Layer):
    """Windowed pooling over ``rank`` spatial axes; subclasses set ``rank`` and ``_pool``.

    Args:
        pool_size: an int or one per spatial axis.
        strides: an int, one per axis, or None (= pool_size).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    rank = 2
    _pool = staticmethod(max_pool)

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = (
            self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides")
        )
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _spatial_axes(self) -> range:
        return (
            range(1, self.rank + 1)
            if self.data_format == "channels_last"
            else range(2, 2 + self.rank)
        )

    def _output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        for axis, k, s in zip(self._spatial_axes(), self.pool_size, self.strides):
            shape[axis] = conv_output_length(shape[axis], k, self.padding, s)
        return tuple(shape)

    def build(self, input_shape: tuple) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) == self.rank + 2:
            out = self._output_shape(input_shape)
            if any(out[a] is not None and out[a] <= 0 for a in self._spatial_axes()):
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}): pool_size={self.pool_size} "
                    f"does not fit the input of shape {input_shape} (padding="
                    f"{self.padding!r}); computed output shape {out}."
                )
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self._output_shape(tuple(input_shape))

    def call(self, inputs: Tensor) -> Tensor:
        return type(self)._pool(
            inputs, self.pool_size, self.strides, self.padding, self.data_format
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        }


@register_layer
class MaxPooling1D(BasePooling):
    """Max over windows of ``pool_size`` steps of (batch, steps, channels). See
    ``BasePooling``."""

    rank = 1
    _pool = staticmethod(max_pool)
    example = {"kwargs": {"pool_size": 2}, "input_shape": (2, 6, 3)}


@register_layer
class MaxPooling2D(BasePooling):
    """Max over (ph, pw) windows of (batch, height, width, channels). See ``BasePooling``.

    Example: ``MaxPooling2D()`` maps (N, 26, 26, 32) to (N, 13, 13, 32).
    """

    rank = 2
    _pool = staticmethod(max_pool)
    example = {"kwargs": {"pool_size": 2, "padding": "same"}, "input_shape": (2, 5, 5, 3)}


@register_layer
class AveragePooling1D(BasePooling):
    """Mean over windows of ``pool_size`` steps. See ``BasePooling``."""

    rank = 1
    _pool = staticmethod(average_pool)
    example = {"kwargs": {"pool_size": 3, "strides": 2}, "input_shape": (2, 7, 3)}


@register_layer
class AveragePooling2D(BasePooling):
    """Mean over (ph, pw) windows (padding excluded from the count). See
    ``BasePooling``."""

    rank = 2
    _pool = staticmethod(average_pool)
    example = {"kwargs": {"pool_size": 2, "padding": "same"}, "input_shape": (2, 5, 5, 3)}


@register_layer
class MaxPooling3D(BasePooling):
    """Max over (pd, ph, pw) windows of (batch, depth, height, width, channels). See
    ``BasePooling`` and ``dendrite.ops.pooling3d``.

    Example: ``MaxPooling3D()`` maps (N, 8, 16, 16, C) to (N, 4, 8, 8, C).
    """

    rank = 3
    _pool = staticmethod(max_pool3d)
    example = {
        "kwargs": {"pool_size": (2, 2, 1), "strides": 1, "padding": "same"},
        "input_shape": (2, 3, 4, 3, 2),
    }


@register_layer
class AveragePooling3D(BasePooling):
    """Mean over (pd, ph, pw) windows (padding excluded from the count). See
    ``BasePooling`` and ``dendrite.ops.pooling3d``."""

    rank = 3
    _pool = staticmethod(average_pool3d)
    example = {"kwargs": {"pool_size": 2, "padding": "same"}, "input_shape": (2, 3, 5, 4, 2)}


class GlobalPooling(Layer):
    """Reduce every spatial axis (max or mean) of a rank ``rank + 2`` input.

    Args:
        data_format: 'channels_last' (default) or 'channels_first'.
        keepdims: keep the spatial axes, with size 1.
    """

    rank = 2
    _reduce = staticmethod(ops.max)

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _axes(self) -> tuple:
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.rank))

    def call(self, inputs: Tensor) -> Tensor:
        return type(self)._reduce(inputs, axis=self._axes(), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        axes = self._axes()
        if self.keepdims:
            return tuple(1 if i in axes else s for i, s in enumerate(input_shape))
        return tuple(s for i, s in enumerate(input_shape) if i not in axes)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


@register_layer
class GlobalMaxPooling1D(GlobalPooling):
    """``y[n, c] = max_t x[n, t, c]``. See ``GlobalPooling``."""

    rank = 1
    _reduce = staticmethod(ops.max)
    example = {"kwargs": {}, "input_shape": (2, 5, 3)}


@register_layer
class GlobalMaxPooling2D(GlobalPooling):
    """``y[n, c] = max_{h, w} x[n, h, w, c]``. See ``GlobalPooling``."""

    rank = 2
    _reduce = staticmethod(ops.max)
    example = {"kwargs": {"keepdims": True}, "input_shape": (2, 3, 4, 3)}


@register_layer
class GlobalAveragePooling1D(GlobalPooling):
    """``y[n, c] = mean_t x[n, t, c]``; with a (batch, steps) mask, the mean over the
    unmasked steps only: ``sum_t m_t x_t / sum_t m_t``. See ``GlobalPooling``."""

    rank = 1
    _reduce = staticmethod(ops.mean)
    example = {"kwargs": {}, "input_shape": (2, 5, 3)}

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Tensor, mask: Any = None) -> Tensor:
        if mask is None:
            return ops.mean(inputs, axis=self._axes(), keepdims=self.keepdims)
        weights = ops.cast(mask, inputs.dtype)
        weights = ops.expand_dims(weights, 2 if self.data_format == "channels_last" else 1)
        axis = self._axes()
        total = ops.sum(inputs * weights, axis=axis, keepdims=self.keepdims)
        return total / ops.sum(weights, axis=axis, keepdims=self.keepdims)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None


@register_layer
class GlobalAveragePooling2D(GlobalPooling):
    """``y[n, c] = mean_{h, w} x[n, h, w, c]``. See ``GlobalPooling``."""

    rank = 2
    _reduce = staticmethod(ops.mean)
    example = {"kwargs": {"data_format": "channels_first"}, "input_shape": (2, 3, 4, 5)}


@register_layer
class GlobalMaxPooling3D(GlobalPooling):
    """``y[n, c] = max_{d, h, w} x[n, d, h, w, c]``. See ``GlobalPooling``."""

    rank = 3
    _reduce = staticmethod(ops.max)
    example = {"kwargs": {"keepdims": True}, "input_shape": (2, 3, 2, 4, 3)}


@register_layer
class GlobalAveragePooling3D(GlobalPooling):
    """``y[n, c] = mean_{d, h, w} x[n, d, h, w, c]``. See ``GlobalPooling``."""

    rank = 3
    _reduce = staticmethod(ops.mean)
    example = {"kwargs": {"data_format": "channels_first"}, "input_shape": (2, 3, 2, 4, 3)}
