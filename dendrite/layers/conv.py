"""Convolution layers: Conv1D, Conv2D (and the base class of every convolution layer).

For an input ``x`` (channels_last: (batch, *spatial, C)) a convolution layer computes

    y[n, p, f] = activation(b[f] + sum_{offsets i, channels c} x_pad[n, p s + i d, c] K[i, c, f])

(a cross-correlation, as in Keras), with Keras' layouts: ``kernel`` (*kernel_size,
C / groups, filters) and ``bias`` (filters,). With ``groups`` > 1 the C input channels and
the filters split into that many blocks convolved independently.

It runs as one fused primitive (``dendrite.ops.conv.Conv``: im2col + one matrix product,
bias and ReLU in place). Depthwise, separable and transposed convolutions live in
``conv_depthwise.py`` and ``conv_transpose.py`` on the same base class; the 3-D ones in
``conv3d.py``.
``data_format='channels_first'`` inputs are transposed to channels_last and back. Padding:
'valid', 'same' (TensorFlow's: the odd pixel at the end) and, for 1-D, 'causal'
(``(k - 1) d`` zeros at the start).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.pooling import MaxPooling1D, MaxPooling2D
from dendrite.layers.registry import register_layer
from dendrite.layers.symbolic import KerasTensor
from dendrite.ops.conv import fused_conv
from dendrite.ops.conv_pool import MAX_PLACES, conv_max_pool
from dendrite.ops.windows import (
    conv_output_length,
    normalize_tuple,
    standardize_data_format,
    standardize_padding,
    to_channels_first,
    to_channels_last,
)


def _positive(value: Any, name: str, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}` of {cls}: expected a strictly positive "
            f"integer. Received {name}={value!r}."
        )
    return value


class BaseConv(Layer):
    """What every convolution layer shares: window geometry, data format, bias, activation.

    Subclasses set ``rank`` and implement ``_build_kernels(channels)``,
    ``_output_channels(channels)`` and ``_convolve(x)`` (channels_last, bias and the fused
    ReLU included).
    """

    rank = 2

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        bias_initializer: Any = "zeros",
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        rank = self.rank
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding, allow_causal=self._allow_causal())
        self.data_format = standardize_data_format(data_format)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"`strides > 1` not supported in conjunction with `dilation_rate > 1` in "
                f"{type(self).__name__}. Received: strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self._fuse_relu = self.activation is getattr(ops, "relu", None)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _allow_causal(self) -> bool:
        return False

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spatial(self, shape: tuple) -> tuple:
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def build(self, input_shape: tuple) -> None:
        input_shape = tuple(input_shape)
        cls = type(self).__name__
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self.rank + 2}, found ndim={len(input_shape)}. Full shape received: "
                f"{input_shape}"
            )
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the inputs to {cls} layer '{self.name}' should "
                f"be defined; received input shape {input_shape} "
                f"(data_format={self.data_format!r})."
            )
        self._check_output_size(input_shape)
        self._build_kernels(int(channels))
        self.bias = (
            self.add_weight(
                (self._output_channels(int(channels)),),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
            if self.use_bias
            else None
        )
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis: channels})
        self.built = True

    def _check_output_size(self, input_shape: tuple) -> None:
        spatial = self._spatial(input_shape)
        sizes = self._output_spatial(spatial)
        if any(s is not None and s <= 0 for s in sizes):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}): computed output size would be "
                f"{tuple(sizes)}, which is not positive. Received input shape "
                f"{input_shape}, kernel_size={self.kernel_size}, strides={self.strides}, "
                f"padding={self.padding!r}, dilation_rate={self.dilation_rate}."
            )

    def _output_spatial(self, spatial: tuple) -> list:
        return [
            conv_output_length(n, k, self.padding, s, d)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        ]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        input_shape = tuple(input_shape)
        channels = input_shape[self._channel_axis]
        filters = None if channels is None else self._output_channels(int(channels))
        sizes = tuple(self._output_spatial(self._spatial(input_shape)))
        if self.data_format == "channels_last":
            return (input_shape[0], *sizes, filters)
        return (input_shape[0], filters, *sizes)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        if x.data.dtype.kind != "f":
            x = ops.cast(x, self.dtype)
        channels_first = self.data_format == "channels_first"
        if channels_first:
            x = to_channels_last(x, self.rank)
        out = self._convolve(x)
        if channels_first:
            out = to_channels_first(out, self.rank)
        return out if self._fuse_relu else self.activation(out)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class Conv(BaseConv):
    """N-D convolution (see the module docstring); ``groups`` splits the input channels and
    the filters into that many independent convolutions."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            bias_initializer=bias_initializer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        cls = type(self).__name__
        self.filters = _positive(filters, "filters", cls)
        self.groups = _positive(groups, "groups", cls)
        if self.filters % self.groups:
            raise ValueError(
                f"The number of filters must be evenly divisible by the number of groups "
                f"in {cls}. Received: groups={self.groups}, filters={self.filters}."
            )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _build_kernels(self, channels: int) -> None:
        if channels % self.groups:
            raise ValueError(
                f"The number of input channels must be evenly divisible by the number of "
                f"groups in {type(self).__name__} layer '{self.name}'. Received "
                f"groups={self.groups}, but the input has {channels} channels."
            )
        self.kernel = self.add_weight(
            (*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )

    def _output_channels(self, channels: int) -> int:
        return self.filters

    def _convolve(self, x: Tensor) -> Tensor:
        return fused_conv(
            x,
            self.kernel,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            relu=self._fuse_relu,
        )

    # --- fusion with a following max pooling (one pass of models/plan.py asks) ---------
    def fuse(self, following: Layer) -> Callable[[Any], Tensor | None] | None:
        """``following(self(x))`` as one ``ops.conv_pool.ConvMaxPool`` node, when
        ``following`` is a MaxPooling of this rank whose windows tile this convolution's
        output: ``relu(maxpool(conv(x) + b))``, with the bias and ReLU applied to the pooled
        output (they commute with the maximum) and the pooling reading contiguous blocks of
        the convolution's product. Values and gradients equal the two calls (tested); the
        layers keep their weights, names and configs, like TensorFlow's Conv2D + BiasAdd +
        Relu remapping. None when the pair cannot fuse (see ``_fusable_with``)."""
        if not self._fusable_with(following):
            return None

        def conv_then_pool(inputs: Any) -> Tensor | None:
            if not self._fusable_with(following):  # a layer changed since the plan was made
                return None
            return self._pooled_call(following, inputs)

        return conv_then_pool

    def _fusable_with(self, pool: Layer) -> bool:
        """Both exactly the built-in classes (a subclass may override ``call``), built,
        channels_last, no groups, ReLU or no activation, no activity regularizer, and a
        'valid' pooling with strides equal to its pool size and at most ``MAX_PLACES``
        places a window (the op keeps each window's winner as a uint8)."""
        return (
            type(self) in _POOL_AFTER
            and _POOL_AFTER[type(self)] is type(pool)
            and self.built
            and pool.built
            and self.data_format == "channels_last"
            and pool.data_format == "channels_last"
            and self.groups == 1
            and (self._fuse_relu or self.activation is activations.linear)
            and self.activity_regularizer is None
            and pool.activity_regularizer is None
            and pool.padding == "valid"
            and pool.strides == pool.pool_size
            and math.prod(pool.pool_size) <= MAX_PLACES
        )

    def _pooled_call(self, pool: Layer, inputs: Any) -> Tensor | None:
        """The fused node, or None when these inputs need the layers' own calls (a mask, a
        non-float dtype, or a shape the layers would reject with their own message)."""
        if isinstance(inputs, KerasTensor):
            return None
        x = self._convert(inputs)
        if not isinstance(x, Tensor) or x._keras_mask is not None or x.data.dtype.kind != "f":
            return None
        if self.input_spec is not None:
            self._check_input_spec(x)
        sizes = self.compute_output_shape(x.shape)[1:-1]
        if any(size is None or size < p for size, p in zip(sizes, pool.pool_size)):
            return None
        return conv_max_pool(
            x,
            self.kernel,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            pool_size=pool.pool_size,
            relu=self._fuse_relu,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
        }


@register_layer
class Conv1D(Conv):
    """1-D convolution over (batch, steps, channels); padding may also be 'causal'
    (``output[t]`` sees only ``input[:t + 1]``). See ``Conv``."""

    rank = 1
    example = {
        "kwargs": {"filters": 3, "kernel_size": 3, "padding": "causal", "activation": "tanh"},
        "input_shape": (2, 6, 2),
    }

    def _allow_causal(self) -> bool:
        return True


@register_layer
class Conv2D(Conv):
    """2-D convolution over (batch, height, width, channels). See ``Conv``.

    Example: ``Conv2D(32, 3, activation="relu")`` maps (N, 28, 28, 1) to (N, 26, 26, 32)
    with a kernel of shape (3, 3, 1, 32).
    """

    rank = 2
    example = {
        "kwargs": {"filters": 3, "kernel_size": 2, "strides": 2, "padding": "same"},
        "input_shape": (2, 5, 5, 2),
    }


# The pooling each convolution rank fuses with (``Conv.fuse``).
_POOL_AFTER = {Conv1D: MaxPooling1D, Conv2D: MaxPooling2D}
