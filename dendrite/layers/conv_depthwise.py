"""Depthwise and separable convolution layers: DepthwiseConv1D/2D, SeparableConv1D/2D.

A depthwise convolution convolves each input channel ``c`` with its own
``depth_multiplier`` filters: ``y[..., c M + m] = b[c M + m] + sum_i x_pad[..., p s + i d, c]
K[i, c, m]`` (kernel (*kernel_size, C, M), Keras' layout); it is a grouped convolution with
one group per channel. A separable convolution follows it with a pointwise (1x1) one:
``y = act(pointwise(depthwise(x)) + b)``, ``depthwise_kernel`` (*kernel_size, C, M),
``pointwise_kernel`` (1, ..., C M, filters). Both run on the fused ``Conv`` primitive.
"""

from __future__ import annotations

from typing import Any

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.conv import BaseConv, _positive
from dendrite.layers.registry import register_layer
from dendrite.ops.conv import fused_conv


class DepthwiseConv(BaseConv):
    """N-D depthwise convolution: each input channel ``c`` convolved with its own
    ``depth_multiplier`` filters, ``y[..., c M + m] = sum_i x[..., c] K[i, c, m]``."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
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
        self.depth_multiplier = _positive(depth_multiplier, "depth_multiplier", type(self).__name__)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def _build_kernels(self, channels: int) -> None:
        self.kernel = self.add_weight(
            (*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
            name="kernel",
        )

    def _output_channels(self, channels: int) -> int:
        return channels * self.depth_multiplier

    def _convolve(self, x: Tensor) -> Tensor:
        *spatial, channels, mult = self.kernel.shape
        grouped = ops.reshape(self.kernel, (*spatial, 1, channels * mult))
        return fused_conv(
            x,
            grouped,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=channels,
            relu=self._fuse_relu,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
        }


@register_layer
class DepthwiseConv1D(DepthwiseConv):
    """1-D depthwise convolution over (batch, steps, channels). See ``DepthwiseConv``."""

    rank = 1
    example = {
        "kwargs": {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
        "input_shape": (2, 6, 3),
    }


@register_layer
class DepthwiseConv2D(DepthwiseConv):
    """2-D depthwise convolution; kernel (kh, kw, C, depth_multiplier). See
    ``DepthwiseConv``."""

    rank = 2
    example = {
        "kwargs": {"kernel_size": 3, "depth_multiplier": 2, "activation": "tanh"},
        "input_shape": (2, 5, 5, 3),
    }


class SeparableConv(BaseConv):
    """N-D separable convolution: a depthwise convolution (``depthwise_kernel``, with the
    strides, padding and dilation) followed by a pointwise one (``pointwise_kernel``, 1x1),
    then bias and activation: ``y = act(pointwise(depthwise(x)) + b)``."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
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
        self.depth_multiplier = _positive(depth_multiplier, "depth_multiplier", cls)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def _build_kernels(self, channels: int) -> None:
        self.depthwise_kernel = self.add_weight(
            (*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
            name="depthwise_kernel",
        )
        self.pointwise_kernel = self.add_weight(
            (*(1,) * self.rank, channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
            name="pointwise_kernel",
        )

    def _output_channels(self, channels: int) -> int:
        return self.filters

    def _convolve(self, x: Tensor) -> Tensor:
        *spatial, channels, mult = self.depthwise_kernel.shape
        grouped = ops.reshape(self.depthwise_kernel, (*spatial, 1, channels * mult))
        depthwise = fused_conv(
            x,
            grouped,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=channels,
        )
        return fused_conv(depthwise, self.pointwise_kernel, self.bias, relu=self._fuse_relu)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
        }


@register_layer
class SeparableConv1D(SeparableConv):
    """1-D separable convolution over (batch, steps, channels). See ``SeparableConv``."""

    rank = 1
    example = {
        "kwargs": {"filters": 4, "kernel_size": 3, "depth_multiplier": 2},
        "input_shape": (2, 7, 3),
    }


@register_layer
class SeparableConv2D(SeparableConv):
    """2-D separable convolution. See ``SeparableConv``."""

    rank = 2
    example = {
        "kwargs": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "tanh"},
        "input_shape": (2, 5, 5, 3),
    }
