"""3-D convolution layers: Conv3D and Conv3DTranspose, on the bases of the 1-D and 2-D ones
(``conv.Conv``, ``conv_transpose.ConvTranspose``: arguments, shapes, weights, configs).

Conv3D, for ``x`` (batch, depth, height, width, C) zero-padded to ``xp``:

    y[n, p, q, r, f] = act(b[f] + sum_{i, j, l, c} xp[n, p s_d + i d_d, q s_h + j d_h,
                                                     r s_w + l d_w, c] K[i, j, l, c, f])

with Keras' kernel (kd, kh, kw, C / groups, filters). Conv3DTranspose is its adjoint with
respect to the input, every input voxel adding ``x[n, p, q, r, c] K[i, j, l, f, c]`` to
output voxel ``(p s_d + i d_d, q s_h + j d_h, r s_w + l d_w) - pad``, kernel (kd, kh, kw,
filters, C); output sizes as in 1-D and 2-D (Keras' formula).

Both run on the 2-D primitives over windows of the depth axis (``dendrite.ops.conv3d``):
the convolution unfolds each output depth's kd input slices into the channels and
convolves in 2-D; the transposed one runs the 2-D transposed convolution on every depth
slice, each depth tap as channels, and adds the taps into the output depths.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor
from dendrite.layers.conv import Conv
from dendrite.layers.conv_transpose import ConvTranspose
from dendrite.layers.registry import register_layer
from dendrite.ops.conv3d import fused_conv3d, fused_conv3d_transpose


@register_layer
class Conv3D(Conv):
    """3-D convolution over (batch, depth, height, width, channels); kernel (kd, kh, kw,
    channels / groups, filters), Keras' layout. See ``Conv`` and ``dendrite.ops.conv3d``.

    Example: ``Conv3D(8, 3, padding="same")`` maps (N, 16, 32, 32, 1) to
    (N, 16, 32, 32, 8).
    """

    rank = 3
    example = {
        "kwargs": {"filters": 4, "kernel_size": (2, 3, 2), "strides": (1, 2, 1), "groups": 2},
        "input_shape": (2, 3, 5, 4, 2),
    }

    def _convolve(self, x: Tensor) -> Tensor:
        return fused_conv3d(
            x,
            self.kernel,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            relu=self._fuse_relu,
        )


@register_layer
class Conv3DTranspose(ConvTranspose):
    """3-D transposed convolution over (batch, depth, height, width, channels); kernel
    (kd, kh, kw, filters, channels), Keras' layout. See ``ConvTranspose``.

    As in Keras, ``data_format`` comes before ``output_padding`` among the positional
    arguments here (Conv1DTranspose and Conv2DTranspose take them the other way round).

    Example: ``Conv3DTranspose(4, 3, strides=2, padding="same")`` maps (N, 4, 8, 8, C) to
    (N, 8, 16, 16, 4).
    """

    rank = 3
    example = {
        "kwargs": {"filters": 3, "kernel_size": (3, 2, 2), "strides": (2, 1, 2), "padding": "same"},
        "input_shape": (2, 3, 2, 3, 2),
    }

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        output_padding: Any = None,
        dilation_rate: Any = (1, 1, 1),
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
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )

    def _convolve(self, x: Tensor) -> Tensor:
        return fused_conv3d_transpose(
            x,
            self.kernel,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            relu=self._fuse_relu,
        )
