"""Transposed convolution layers: Conv1DTranspose, Conv2DTranspose.

A transposed convolution is the gradient of a convolution with respect to its input, run
forwards: every input pixel ``x[n, p, c]`` adds ``x[n, p, c] K[i, f, c]`` to output
position ``p s + i d - pad`` (then ``+ b[f]`` and the activation). Kernel (*kernel_size,
filters, C), Keras' layout. Output length (Keras' formula, ``k' = (k - 1) d + 1``):

- 'valid': ``(n - 1) s + k' + output_padding`` (output_padding defaults to
  ``max(k', s) - k'``);
- 'same': ``n s`` (or ``(n - 1) s + k' mod 2 + output_padding``),

with the padding that TensorFlow's matching convolution would use. Runs on the fused
``ConvTranspose`` primitive (one matrix product + col2im; the VJP is an im2col convolution).
Conv3DTranspose is in ``conv3d.py``.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.conv import BaseConv, _positive
from dendrite.layers.registry import register_layer
from dendrite.ops.conv import fused_conv_transpose
from dendrite.ops.windows import normalize_tuple, transpose_output_length


class ConvTranspose(BaseConv):
    """N-D transposed convolution (see the module docstring).

    Args (beyond the convolution ones): filters, the output channels; output_padding, an
    int or one per axis (< strides), the extra rows/columns at the end of the output.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = 1,
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
        self.filters = _positive(filters, "filters", type(self).__name__)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(
                output_padding, self.rank, "output_padding", allow_zero=True
            )
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"`output_padding` must be < `strides` in {type(self).__name__}. "
                    f"Received output_padding={self.output_padding}, strides={self.strides}"
                )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _build_kernels(self, channels: int) -> None:
        self.kernel = self.add_weight(
            (*self.kernel_size, self.filters, channels),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )

    def _output_channels(self, channels: int) -> int:
        return self.filters

    def _output_spatial(self, spatial: tuple) -> list:
        extra = self.output_padding or (None,) * self.rank
        return [
            transpose_output_length(n, k, self.padding, s, p, d)
            for n, k, s, p, d in zip(
                spatial, self.kernel_size, self.strides, extra, self.dilation_rate
            )
        ]

    def _convolve(self, x: Tensor) -> Tensor:
        return fused_conv_transpose(
            x,
            self.kernel,
            self.bias,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            relu=self._fuse_relu,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": self.output_padding,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
        }


@register_layer
class Conv1DTranspose(ConvTranspose):
    """1-D transposed convolution over (batch, steps, channels). See ``ConvTranspose``."""

    rank = 1
    example = {
        "kwargs": {"filters": 3, "kernel_size": 3, "strides": 2},
        "input_shape": (2, 4, 2),
    }


@register_layer
class Conv2DTranspose(ConvTranspose):
    """2-D transposed convolution; kernel (kh, kw, filters, C). See ``ConvTranspose``.

    Example: ``Conv2DTranspose(8, 3, strides=2, padding="same")`` maps (N, 7, 7, C) to
    (N, 14, 14, 8).
    """

    rank = 2
    example = {
        "kwargs": {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        "input_shape": (2, 3, 4, 2),
    }
