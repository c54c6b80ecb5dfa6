"""Converters of the core layers: Dense, activations, identities at inference, Flatten,
Reshape, Embedding, Masking and the preprocessing layers with an inference form.

Dense: y = act(x W + b) (MatMul broadcasts over leading axes). ReLU layer:
y = min(x >= t ? x : slope (x - t), max_value). LeakyReLU, ELU, Softmax(axis): the ONNX
operators of the same maths; a masked Softmax adds -1e9 where the mask is False and
multiplies the result by the mask. PReLU: y = relu(x) - alpha relu(-x). Dropout, noise,
ActivityRegularization, Identity, SpatialDropout and the Random* augmentation layers are
the identity at inference. Flatten: (N, ...) -> (N, prod); Reshape: (N, *target) with N
copied (Reshape's 0). Embedding: Gather(E, ids) and, with mask_zero, the mask ids != 0.
ReversibleEmbedding: as Embedding forward; reverse=True: z = h E^T (or h R), then
c tanh(z / c) with a logit soft cap c (computed in float32 whatever reverse_dtype).
Masking: keep = any(x != v, -1), y = x * keep, mask = keep. Rescaling: y = x scale + offset.
Normalization: y = (x - mean) / max(sqrt(var), eps) (invert: mean + x max(...)).
UnitNormalization: y = x / sqrt(max(sum x^2, 1e-12)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.export import activations
from dendrite.export.common import array, as_float, first
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import activation_layers as act
from dendrite.layers import (
    augmentation,
    augmentation_color,
    core,
    einsum_dense,
    embedding,
    preprocessing,
    regularization,
    reversible_embedding,
)


def apply_activation(ctx: Any, layer: Any, x: str, fn: Any) -> str:
    """``fn(x)``, or a refusal naming the layer when ``fn`` is a custom activation."""
    try:
        return activations.emit(ctx.b, x, fn)
    except KeyError as error:
        raise refuse(layer, f"{error.args[0]}; only built-in activations export.") from None


@converts(core.Dense)
def dense(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(x W + b)."""
    b, x = ctx.b, first(args)
    y = b.op("MatMul", [as_float(b, x), b.const(array(layer.kernel), f"{layer.name}/kernel")])
    if layer.use_bias:
        y = b.op("Add", [y, b.const(array(layer.bias), f"{layer.name}/bias")])
    return apply_activation(ctx, layer, y, layer.activation)


@converts(einsum_dense.EinsumDense)
def einsum_dense_layer(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(einsum(equation, x, W) + b): ONNX's Einsum takes the layer's equation."""
    b, x = ctx.b, first(args)
    kernel = b.const(array(layer.kernel), f"{layer.name}/kernel")
    y = b.op("Einsum", [as_float(b, x), kernel], equation=layer.equation)
    if layer.bias is not None:
        y = b.op("Add", [y, b.const(array(layer.bias), f"{layer.name}/bias")])
    return apply_activation(ctx, layer, y, layer.activation)


@converts(core.Activation)
def activation(ctx: Any, layer: Any, args: dict) -> str:
    """y = act(x)."""
    return apply_activation(ctx, layer, as_float(ctx.b, first(args)), layer.activation)


@converts(act.ReLU)
def relu(ctx: Any, layer: Any, args: dict) -> str:
    """y = min(x >= t ? x : slope (x - t), max_value) (plain Relu when t = slope = 0)."""
    b, x = ctx.b, as_float(ctx.b, first(args))
    if layer.threshold == 0.0 and layer.negative_slope == 0.0:
        y = b.op("Relu", [x])
    else:
        t = b.const(np.float32(layer.threshold))
        above = b.op("Cast", [b.op("GreaterOrEqual", [x, t])], to=1)
        below = b.op("Sub", [b.const(np.float32(1.0)), above])
        y = b.op("Mul", [above, x])
        if layer.negative_slope:
            shifted = b.op("Mul", [b.op("Sub", [x, t]), b.const(np.float32(layer.negative_slope))])
            y = b.op("Add", [y, b.op("Mul", [below, shifted])])
    if layer.max_value is not None:
        y = b.op("Min", [y, b.const(np.float32(layer.max_value))])
    return y


@converts(act.LeakyReLU)
def leaky_relu(ctx: Any, layer: Any, args: dict) -> str:
    """y = x if x > 0 else slope x."""
    return ctx.b.op("LeakyRelu", [as_float(ctx.b, first(args))], alpha=layer.negative_slope)


@converts(act.ELU)
def elu(ctx: Any, layer: Any, args: dict) -> str:
    """y = x if x > 0 else alpha (e^x - 1)."""
    return ctx.b.op("Elu", [as_float(ctx.b, first(args))], alpha=layer.alpha)


@converts(act.PReLU)
def prelu(ctx: Any, layer: Any, args: dict) -> str:
    """y = relu(x) - alpha relu(-x) (alpha broadcast over the shared axes)."""
    b, x = ctx.b, as_float(ctx.b, first(args))
    alpha = b.const(array(layer.alpha), f"{layer.name}/alpha")
    negative = b.op("Relu", [b.op("Neg", [x])])
    return b.op("Sub", [b.op("Relu", [x]), b.op("Mul", [alpha, negative])])


@converts(act.Softmax)
def softmax(ctx: Any, layer: Any, args: dict) -> str:
    """softmax(x, axis); with a mask m: softmax(x - 1e9 (1 - m)) m."""
    b, value = ctx.b, first(args)
    x = as_float(b, value)
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    mask = args.get("mask")
    mask = mask.name if isinstance(mask, Value) else value.mask
    keep = None
    if mask is not None:
        keep = b.op("Cast", [mask], to=1)
        for _ in range(value.rank - 2):
            keep = b.op("Unsqueeze", [keep, b.ints([-1])])
        penalty = b.op(
            "Mul", [b.op("Sub", [b.const(np.float32(1.0)), keep]), b.const(np.float32(-1e9))]
        )
        x = b.op("Add", [x, penalty])
    if len(axes) == 1:
        y = b.op("Softmax", [x], axis=int(axes[0]))
    else:
        shifted = b.op("Sub", [x, b.reduce("ReduceMax", x, axes, 1)])
        e = b.op("Exp", [shifted])
        y = b.op("Div", [e, b.reduce("ReduceSum", e, axes, 1)])
    return b.op("Mul", [y, keep]) if keep is not None else y


IDENTITIES = (
    core.Dropout,
    regularization.SpatialDropout1D,
    regularization.SpatialDropout2D,
    regularization.SpatialDropout3D,
    regularization.GaussianNoise,
    regularization.GaussianDropout,
    regularization.AlphaDropout,
    regularization.ActivityRegularization,
    preprocessing.Identity,
    augmentation.RandomFlip,
    augmentation.RandomRotation,
    augmentation.RandomTranslation,
    augmentation.RandomZoom,
    augmentation_color.RandomContrast,
    augmentation_color.RandomBrightness,
)


@converts(*IDENTITIES)
def identity(ctx: Any, layer: Any, args: dict) -> Value:
    """y = x: dropout, noise and augmentation act only in training."""
    x = first(args)
    return Value(ctx.b.op("Identity", [x.name]), x.shape, x.dtype, x.mask)


@converts(core.Flatten)
def flatten(ctx: Any, layer: Any, args: dict) -> str:
    """(N, d1, ..., dk) -> (N, d1 ... dk) (channels_first: channels moved last first)."""
    b, x = ctx.b, first(args)
    name = x.name
    if layer.data_format == "channels_first" and x.rank > 2:
        name = b.op("Transpose", [name], perm=[0, *range(2, x.rank), 1])
    return b.op("Flatten", [name], axis=1)


@converts(core.Reshape)
def reshape(ctx: Any, layer: Any, args: dict) -> str:
    """(N, ...) -> (N, *target_shape); the batch copied, one -1 inferred."""
    return ctx.b.op("Reshape", [first(args).name, ctx.b.ints([0, *layer.target_shape])])


@converts(embedding.Embedding)
def embedding_lookup(ctx: Any, layer: Any, args: dict) -> Value:
    """y = E[ids] (Gather on axis 0); mask_zero: mask = ids != 0."""
    b, x = ctx.b, first(args)
    ids = x.name if np.dtype(x.dtype) == np.int64 else b.op("Cast", [x.name], to=7)
    y = b.op("Gather", [b.const(array(layer.embeddings), f"{layer.name}/embeddings"), ids])
    mask = None
    if layer.mask_zero:
        mask = b.op("Not", [b.op("Equal", [ids, b.const(np.int64(0))])])
    return Value(y, (), np.float32, mask)


@converts(reversible_embedding.ReversibleEmbedding)
def reversible_embedding_call(ctx: Any, layer: Any, args: dict) -> Any:
    """Forward: Gather(E, ids); reverse: z = h E^T (or h R), capped as c tanh(z / c)."""
    if not args.get("reverse"):
        return embedding_lookup(ctx, layer, args)
    b = ctx.b
    h = as_float(b, first(args))
    weight = array(layer.embeddings).T if layer.tie_weights else array(layer.reverse_embeddings)
    z = b.op("MatMul", [h, b.const(np.ascontiguousarray(weight), f"{layer.name}/reverse")])
    if layer.logit_soft_cap is not None:
        cap = b.const(np.float32(layer.logit_soft_cap))
        z = b.op("Mul", [b.op("Tanh", [b.op("Div", [z, cap])]), cap])
    return z


@converts(embedding.Masking)
def masking(ctx: Any, layer: Any, args: dict) -> Value:
    """keep = any_f(x != v); y = x keep; the mask is keep."""
    b, x = ctx.b, first(args)
    xf = as_float(b, x)
    different = b.op("Not", [b.op("Equal", [xf, b.const(np.float32(layer.mask_value))])])
    keep = b.op("Cast", [b.reduce("ReduceMax", b.op("Cast", [different], to=1), [-1], 0)], to=9)
    factor = b.op("Unsqueeze", [b.op("Cast", [keep], to=1), b.ints([-1])])
    return Value(b.op("Mul", [xf, factor]), (), np.float32, keep)


@converts(preprocessing.Rescaling)
def rescaling(ctx: Any, layer: Any, args: dict) -> str:
    """y = x scale + offset."""
    b = ctx.b
    x = as_float(b, first(args))
    y = b.op("Mul", [x, b.const(np.asarray(layer.scale, np.float32))])
    return b.op("Add", [y, b.const(np.asarray(layer.offset, np.float32))])


@converts(preprocessing.Normalization)
def normalization(ctx: Any, layer: Any, args: dict) -> str:
    """y = (x - mean) / max(sqrt(var), eps); invert: y = mean + x max(sqrt(var), eps)."""
    b = ctx.b
    x = as_float(b, first(args))
    mean, variance = (np.asarray(v, np.float32) for v in layer._statistics())
    scale = np.maximum(np.sqrt(variance), np.float32(_settings.epsilon()))
    m, s = b.const(mean, f"{layer.name}/mean"), b.const(scale, f"{layer.name}/scale")
    if layer.invert:
        return b.op("Add", [m, b.op("Mul", [x, s])])
    return b.op("Div", [b.op("Sub", [x, m]), s])


@converts(preprocessing.UnitNormalization)
def unit_normalization(ctx: Any, layer: Any, args: dict) -> str:
    """y = x / sqrt(max(sum_axis x^2, 1e-12))."""
    b = ctx.b
    x = as_float(b, first(args))
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    total = b.reduce("ReduceSum", b.op("Mul", [x, x]), axes, 1)
    norm = b.op("Sqrt", [b.op("Max", [total, b.const(np.float32(1e-12))])])
    return b.op("Div", [x, norm])
