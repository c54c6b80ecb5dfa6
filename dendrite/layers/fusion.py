"""Consecutive layers that a model may run as one primitive, because nothing can observe
the result in between: a ``Conv1D``/``Conv2D`` (ReLU or no activation) followed by a
``MaxPooling1D``/``MaxPooling2D`` whose windows tile the convolution's output.

``relu(maxpool(conv(x) + b))`` then runs as ``dendrite.ops.conv_pool.ConvMaxPool``: the
bias and ReLU are applied to the pooled output (they commute with the maximum), and the
pooling works on contiguous blocks of the convolution's product instead of strided views
of it. Values and gradients equal the two layers called one after the other (tested), and
the layers keep their weights, names and configs: only the call is fused, like
TensorFlow's Conv2D + BiasAdd + Relu remapping.

A pair is fused only when both layers are exactly these built-in classes (a subclass may
override ``call``), already built, channels_last, without groups, activity regularizers or
an input mask, and the pooling is 'valid' with strides equal to its pool size and a window
of at most 256 places (the op keeps each window's winner as a uint8).
"""

from __future__ import annotations

import math
from typing import Any

from dendrite.core import Tensor
from dendrite.layers import activations
from dendrite.layers.base import Layer
from dendrite.layers.conv import Conv1D, Conv2D
from dendrite.layers.pooling import MaxPooling1D, MaxPooling2D
from dendrite.layers.symbolic import KerasTensor
from dendrite.ops.conv_pool import MAX_PLACES, conv_max_pool

_POOL_AFTER = {Conv1D: MaxPooling1D, Conv2D: MaxPooling2D}


def fusable_conv_pool(conv: Layer, pool: Layer) -> bool:
    """Whether ``pool(conv(x))`` may run as one ``ConvMaxPool`` node (see the docstring)."""
    return (
        _POOL_AFTER.get(type(conv)) is type(pool)
        and conv.built
        and pool.built
        and conv.data_format == "channels_last"
        and pool.data_format == "channels_last"
        and conv.groups == 1
        and (conv._fuse_relu or conv.activation is activations.linear)
        and conv.activity_regularizer is None
        and pool.activity_regularizer is None
        and pool.padding == "valid"
        and pool.strides == pool.pool_size
        and math.prod(pool.pool_size) <= MAX_PLACES
    )


def call_conv_pool(conv: Layer, pool: Layer, inputs: Any) -> Tensor | None:
    """``pool(conv(inputs))`` as one node, or None when these inputs need the layers' own
    calls (a mask, a non-float dtype, or a shape the layers would reject with their own
    error message)."""
    if isinstance(inputs, KerasTensor):
        return None
    x = conv._convert(inputs)
    if not isinstance(x, Tensor) or x._keras_mask is not None or x.data.dtype.kind != "f":
        return None
    if conv.input_spec is not None:
        conv._check_input_spec(x)
    sizes = conv.compute_output_shape(x.shape)[1:-1]
    if any(size is None or size < p for size, p in zip(sizes, pool.pool_size)):
        return None
    return conv_max_pool(
        x,
        conv.kernel,
        conv.bias,
        strides=conv.strides,
        padding=conv.padding,
        dilation_rate=conv.dilation_rate,
        pool_size=pool.pool_size,
        relu=conv._fuse_relu,
    )
