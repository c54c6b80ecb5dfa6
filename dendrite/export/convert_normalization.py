"""Converters of the normalization layers (inference form).

BatchNormalization: y = (x - moving_mean) / sqrt(moving_var + eps) gamma + beta, folded
into y = x a + c with a = gamma / sqrt(moving_var + eps), c = beta - moving_mean a.
LayerNormalization: y = (x - mean) / sqrt(var + eps) gamma + beta over its axes
(rms_scaling, as Keras computes it: y = x / sqrt(var + eps) gamma). RMSNormalization:
y = x / sqrt(mean(x^2) + eps) scale. GroupNormalization: the channels split into groups
(a reshape), the same normalization over each group's axes, reshaped back, then gamma and
beta per channel.
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


def _variance(ctx: Any, x: str, axes: list[int]) -> tuple[str, str]:
    """(x - mean, the variance) over ``axes``."""
    b = ctx.b
    centered = b.op("Sub", [x, b.reduce("ReduceMean", x, axes)])
    return centered, b.reduce("ReduceMean", b.op("Mul", [centered, centered]), axes)


def _divided(ctx: Any, layer: Any, x: str, spread: str) -> str:
    """x / sqrt(spread + eps)."""
    b = ctx.b
    eps = b.const(np.float32(layer.epsilon))
    return b.op("Div", [x, b.op("Sqrt", [b.op("Add", [spread, eps])])])


def _times(ctx: Any, layer: Any, y: str, weight: Any, shape: tuple, name: str) -> str:
    """y times the layer's ``weight`` reshaped to ``shape`` (unchanged when None)."""
    if weight is None:
        return y
    return ctx.b.op("Mul", [y, ctx.b.const(array(weight).reshape(shape), f"{layer.name}/{name}")])


def _normalize(ctx: Any, layer: Any, x: str, axes: list[int], shape: tuple) -> str:
    centered, var = _variance(ctx, x, axes)
    y = _times(ctx, layer, _divided(ctx, layer, centered, var), layer.gamma, shape, "gamma")
    if layer.beta is not None:
        beta = ctx.b.const(array(layer.beta).reshape(shape), f"{layer.name}/beta")
        y = ctx.b.op("Add", [y, beta])
    return y


@converts(normalization.LayerNormalization)
def layer_norm(ctx: Any, layer: Any, args: dict) -> str:
    """y = (x - mean) / sqrt(var + eps) gamma + beta (rms_scaling: x / sqrt(var + eps) gamma)."""
    x = as_float(ctx.b, first(args))
    axes = list(layer._axes)
    if layer.rms_scaling:
        y = _divided(ctx, layer, x, _variance(ctx, x, axes)[1])
        return _times(ctx, layer, y, layer.gamma, layer._param_shape, "gamma")
    return _normalize(ctx, layer, x, axes, layer._param_shape)


@converts(normalization.RMSNormalization)
def rms_norm(ctx: Any, layer: Any, args: dict) -> str:
    """y = x / sqrt(mean(x^2) + eps) scale."""
    b = ctx.b
    x = as_float(b, first(args))
    square_mean = b.reduce("ReduceMean", b.op("Mul", [x, x]), list(layer._axes))
    y = _divided(ctx, layer, x, square_mean)
    return _times(ctx, layer, y, layer.scale, layer._param_shape, "scale")


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
