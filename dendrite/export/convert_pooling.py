"""Converters of pooling and global pooling.

MaxPooling: y = max over each window; AveragePooling: the mean over the window's cells
inside the input (padding cells not counted, as in Keras). Windows of pool_size, strides,
'valid' or 'same' (SAME_UPPER) padding, on the (N, C, *spatial) layout. Global pooling:
ReduceMean / ReduceMax over the spatial axes (keepdims kept); GlobalAveragePooling1D with a
mask m: sum_t m_t x_t / sum_t m_t. Adaptive pooling: per spatial axis, each output's
adaptive window sliced and reduced.
"""

from __future__ import annotations

from typing import Any

from dendrite.export.common import as_float, first, to_channels_first, to_channels_last
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import adaptive_pooling, pooling


@converts(
    pooling.MaxPooling1D,
    pooling.MaxPooling2D,
    pooling.MaxPooling3D,
    pooling.AveragePooling1D,
    pooling.AveragePooling2D,
    pooling.AveragePooling3D,
)
def window_pooling(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, c, p] = max (or mean) of x[n, c, s p + k] over the window."""
    b, x = ctx.b, first(args)
    name = as_float(b, x)
    last = layer.data_format == "channels_last"
    if last:
        name = to_channels_first(b, name, x.rank)
    op = "MaxPool" if "Max" in type(layer).__name__ else "AveragePool"
    attrs = {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides)}
    if layer.padding == "same":
        attrs["auto_pad"] = "SAME_UPPER"
    if op == "AveragePool":
        attrs["count_include_pad"] = 0
    y = b.op(op, [name], **attrs)
    return to_channels_last(b, y, x.rank) if last else y


@converts(
    pooling.GlobalAveragePooling1D,
    pooling.GlobalAveragePooling2D,
    pooling.GlobalAveragePooling3D,
    pooling.GlobalMaxPooling1D,
    pooling.GlobalMaxPooling2D,
    pooling.GlobalMaxPooling3D,
)
def global_pooling(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, c] = mean (or max) over the spatial axes; masked mean for a 1-D mask."""
    b, x = ctx.b, first(args)
    name = as_float(b, x)
    axes = list(layer._axes())
    keep = 1 if layer.keepdims else 0
    mask = args.get("mask")
    mask = mask.name if isinstance(mask, Value) else x.mask
    if isinstance(layer, pooling.GlobalAveragePooling1D) and mask is not None:
        weights = b.op("Cast", [mask], to=1)
        channel = 2 if layer.data_format == "channels_last" else 1
        weights = b.op("Unsqueeze", [weights, b.ints([channel])])
        total = b.reduce("ReduceSum", b.op("Mul", [name, weights]), axes, keep)
        return b.op("Div", [total, b.reduce("ReduceSum", weights, axes, keep)])
    op = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    return b.reduce(op, name, axes, keep)


@converts(
    adaptive_pooling.AdaptiveAveragePooling1D,
    adaptive_pooling.AdaptiveAveragePooling2D,
    adaptive_pooling.AdaptiveAveragePooling3D,
    adaptive_pooling.AdaptiveMaxPooling1D,
    adaptive_pooling.AdaptiveMaxPooling2D,
    adaptive_pooling.AdaptiveMaxPooling3D,
)
def adaptive(ctx: Any, layer: Any, args: dict) -> str:
    """One spatial axis at a time: output i is the mean (or max) of the input's adaptive
    window ``[floor(i L / n), ceil((i + 1) L / n))``, a Slice and a Reduce each, joined by
    Concat (the windows depend on L, so the spatial sizes must be known)."""
    b, x = ctx.b, first(args)
    name = as_float(b, x)
    reduce = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    first_axis = 2 if layer.data_format == "channels_first" else 1
    for offset, size in enumerate(layer.output_size):
        axis = first_axis + offset
        length = x.shape[axis]
        if length is None:
            raise refuse(layer, "adaptive pooling needs known spatial sizes to export.")
        parts = [
            b.reduce(
                reduce,
                b.op("Slice", [name, b.ints([start]), b.ints([end]), b.ints([axis])]),
                [axis],
            )
            for start, end in adaptive_pooling.adaptive_windows(length, size)
        ]
        name = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=axis)
    return name
