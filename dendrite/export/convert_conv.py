"""Converters of the convolutions: Conv1D/2D/3D (strides, dilation, groups, valid/same/causal
padding), DepthwiseConv1D/2D, SeparableConv1D/2D and Conv1D/2D/3DTranspose.

The input moves to ONNX's (N, C, *spatial) layout, one ONNX Conv (or ConvTranspose) runs,
and the output moves back. Conv: y[n, o, p] = b_o + sum_{c, k} W[o, c, k] x[n, g(o) c,
s p + d k - pad]; Keras' kernel (k..., C/groups, O) is transposed to ONNX's (O, C/groups,
k...). 'same' is SAME_UPPER (the extra padding after), 'causal' pads (k - 1) d before.
Depthwise: a grouped Conv with groups = C and kernel (C m, 1, k...) (output channel
c m + j as in Keras). Separable: depthwise, then a 1x1 Conv (pointwise) with the bias.
Transposed: y = ConvTranspose(x, W) with W (C, O, k...) from Keras' (k..., O, C), explicit
pads from the known output size: total = s (in - 1) + (k - 1) d + 1 - out, split floor
before, the rest after; a negative total becomes output_padding. Activation last.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.common import array, as_float, first, to_channels_first, to_channels_last
from dendrite.export.convert_core import apply_activation
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import conv, conv3d, conv_depthwise, conv_transpose


def conv_padding(layer: Any, kernel: tuple, dilation: tuple, padding: str | None = None) -> dict:
    """The ONNX Conv padding attributes of Keras' ``padding`` (the layer's by default)."""
    padding = layer.padding if padding is None else padding
    if padding == "valid":
        return {"pads": [0] * (2 * len(kernel))}
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "causal":
        before = [(k - 1) * d for k, d in zip(kernel, dilation)]
        return {"pads": before + [0] * len(kernel)}
    raise refuse(layer, f"padding {padding!r} has no ONNX form.")


def _spatial_rank(layer: Any) -> int:
    return len(layer.kernel_size)


def enter_channels_first(ctx: Any, layer: Any, x: Value) -> str:
    """``x`` as float32 in ONNX's (N, C, *spatial) layout (moved when the layer is
    channels_last)."""
    name = as_float(ctx.b, x)
    if layer.data_format == "channels_last":
        name = to_channels_first(ctx.b, name, x.rank)
    return name


def _leave(ctx: Any, layer: Any, y: str, rank: int) -> str:
    if layer.data_format == "channels_last":
        y = to_channels_last(ctx.b, y, rank)
    return apply_activation(ctx, layer, y, layer.activation)


def conv_node(ctx: Any, layer: Any, x: str, weight: np.ndarray, bias: Any, group: int) -> str:
    """One ONNX Conv of channels-first ``x`` with the layer's strides, dilation and padding;
    ``weight`` is in ONNX's (O, C/groups, k...) layout, ``bias`` a weight or None."""
    b = ctx.b
    inputs = [x, b.const(weight, f"{layer.name}/kernel")]
    if bias is not None:
        inputs.append(b.const(array(bias), f"{layer.name}/bias"))
    return b.op(
        "Conv",
        inputs,
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        group=group,
        **conv_padding(layer, layer.kernel_size, layer.dilation_rate),
    )


def kernel_to_onnx(kernel: np.ndarray) -> np.ndarray:
    """(k..., in, out) -> (out, in, k...)."""
    r = kernel.ndim - 2
    return np.ascontiguousarray(np.transpose(kernel, (r + 1, r, *range(r))))


@converts(conv.Conv1D, conv.Conv2D, conv3d.Conv3D)
def convolution(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(conv(x, W, strides, dilation, groups) + b)."""
    x = first(args)
    y = conv_node(
        ctx,
        layer,
        enter_channels_first(ctx, layer, x),
        kernel_to_onnx(array(layer.kernel)),
        layer.bias if layer.use_bias else None,
        layer.groups,
    )
    return _leave(ctx, layer, y, x.rank)


def _depthwise_weight(kernel: np.ndarray) -> np.ndarray:
    """(k..., C, m) -> (C m, 1, k...)."""
    r = kernel.ndim - 2
    flat = kernel.reshape(*kernel.shape[:r], -1)
    return np.ascontiguousarray(np.transpose(flat, (r, *range(r)))[:, None])


@converts(conv_depthwise.DepthwiseConv1D, conv_depthwise.DepthwiseConv2D)
def depthwise(ctx: Any, layer: Any, args: dict) -> str:
    """y[.., c m + j] = act(sum_k W[k, c, j] x[.., s p + d k, c] + b)."""
    x = first(args)
    kernel = array(layer.kernel)
    y = conv_node(
        ctx,
        layer,
        enter_channels_first(ctx, layer, x),
        _depthwise_weight(kernel),
        layer.bias if layer.use_bias else None,
        kernel.shape[-2],
    )
    return _leave(ctx, layer, y, x.rank)


@converts(conv_depthwise.SeparableConv1D, conv_depthwise.SeparableConv2D)
def separable(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(pointwise(depthwise(x)) + b)."""
    b, x = ctx.b, first(args)
    depth = array(layer.depthwise_kernel)
    h = conv_node(
        ctx,
        layer,
        enter_channels_first(ctx, layer, x),
        _depthwise_weight(depth),
        None,
        depth.shape[-2],
    )
    inputs = [h, b.const(kernel_to_onnx(array(layer.pointwise_kernel)), f"{layer.name}/pointwise")]
    if layer.use_bias:
        inputs.append(b.const(array(layer.bias), f"{layer.name}/bias"))
    y = b.op("Conv", inputs)
    return _leave(ctx, layer, y, x.rank)


@converts(conv_transpose.Conv1DTranspose, conv_transpose.Conv2DTranspose, conv3d.Conv3DTranspose)
def transposed(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(conv_transpose(x, W, strides, dilation) + b), sizes as dendrite's."""
    b, x = ctx.b, first(args)
    r = _spatial_rank(layer)
    kernel = array(layer.kernel)  # (k..., out, in)
    weight = np.ascontiguousarray(np.transpose(kernel, (r + 1, r, *range(r))))
    axes = range(1, 1 + r) if layer.data_format == "channels_last" else range(2, 2 + r)
    outs = [args["__out_shape__"][a] for a in axes] if "__out_shape__" in args else None
    ins = [x.shape[a] for a in axes]
    if outs is None or None in outs or None in ins:
        raise refuse(layer, "the spatial sizes must be known to export a transposed conv.")
    before, after, extra = [], [], []
    for i, o, k, s, d in zip(ins, outs, layer.kernel_size, layer.strides, layer.dilation_rate):
        total = s * (i - 1) + (k - 1) * d + 1 - o
        pad_extra = max(-total, 0)
        total = max(total, 0)
        before.append(total // 2)
        after.append(total - total // 2)
        extra.append(pad_extra)
    inputs = [enter_channels_first(ctx, layer, x), b.const(weight, f"{layer.name}/kernel")]
    if layer.use_bias:
        inputs.append(b.const(array(layer.bias), f"{layer.name}/bias"))
    y = b.op(
        "ConvTranspose",
        inputs,
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=before + after,
        output_padding=extra if any(extra) else None,
    )
    return _leave(ctx, layer, y, x.rank)
