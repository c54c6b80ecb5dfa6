"""Converters of the normalization layers (inference form).

BatchNormalization: y = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta, folded
into y = x a + c with a = gamma / sqrt(moving_var + eps), c = beta - moving_mean a.
LayerNormalization: y = (x - mean) / sqrt(var + eps) gamma + beta over its axes
(rms_scaling: y = x / sqrt(mean(x^2) + eps) gamma). GroupNormalization: the channels split
into groups (a reshape), the same normalization over each group's axes, reshaped back,
then gamma and beta per channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.common import array, as_float, first
from dendrite.export.registry import converts
from dendrite.layers import batch_normalization, normalization


@converts(batch_normalization.BatchNormalization)
def batch_norm(ctx: Any, layer: Any, args: dict) -> str:
    """y = x a + c, a = gamma / sqrt(var + eps), c = beta - mean a."""
    b = ctx.b
    x = as_float(b, first(args))
    shape = layer._param_shape
    var = array(layer.moving_variance).astype(np.float64)
    mean = array(layer.moving_mean).astype(np.float64)
    gamma = array(layer.gamma).astype(np.float64) if layer.gamma is not None else 1.0
    beta = array(layer.beta).astype(np.float64) if layer.beta is not None else 0.0
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    a = b.const(np.reshape(scale, shape).astype(np.float32), f"{layer.name}/scale")
    c = b.const(np.reshape(shift, shape).astype(np.float32), f"{layer.name}/shift")
    return b.op("Add", [b.op("Mul", [x, a]), c])


def _normalize(ctx: Any, layer: Any, x: str, axes: list[int], shape: tuple) -> str:
    b = ctx.b
    mean = b.reduce("ReduceMean", x, axes)
    centered = b.op("Sub", [x, mean])
    square = b.op("Mul", [centered, centered])
    var = b.reduce("ReduceMean", square, axes)
    denom = b.op("Sqrt", [b.op("Add", [var, b.const(np.float32(layer.epsilon))])])
    y = b.op("Div", [centered, denom])
    if layer.gamma is not None:
        y = b.op("Mul", [y, b.const(array(layer.gamma).reshape(shape), f"{layer.name}/gamma")])
    if layer.beta is not None:
        y = b.op("Add", [y, b.const(array(layer.beta).reshape(shape), f"{layer.name}/beta")])
    return y


@converts(normalization.LayerNormalization)
def layer_norm(ctx: Any, layer: Any, args: dict) -> str:
    """y = (x - mean) / sqrt(var + eps) gamma + beta (or the RMS form)."""
    b = ctx.b
    x = as_float(b, first(args))
    axes = list(layer._axes)
    if layer.rms_scaling:
        sq = b.op("Mul", [x, x])
        ms = b.reduce("ReduceMean", sq, axes)
        y = b.op("Div", [x, b.op("Sqrt", [b.op("Add", [ms, b.const(np.float32(layer.epsilon))])])])
        gamma = array(layer.gamma).reshape(layer._param_shape)
        return b.op("Mul", [y, b.const(gamma, f"{layer.name}/gamma")])
    return _normalize(ctx, layer, x, axes, layer._param_shape)


@converts(normalization.GroupNormalization)
def group_norm(ctx: Any, layer: Any, args: dict) -> str:
    """Channels in groups; y = (x - mean_g) / sqrt(var_g + eps) gamma_c + beta_c."""
    b = ctx.b
    value = first(args)
    x = as_float(b, value)
    shape = list(value.shape)
    axis = layer._channel_axis
    grouped = [0, *shape[1:axis], layer.groups, shape[axis] // layer.groups, *shape[axis + 1 :]]
    y = b.op("Reshape", [x, b.ints(grouped)])
    y = _normalize(ctx, layer, y, list(layer._axes), layer._param_shape)
    return b.op("Reshape", [y, b.op("Shape", [x])])
