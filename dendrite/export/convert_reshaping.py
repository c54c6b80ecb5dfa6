"""Converters of the reshaping layers: Permute, RepeatVector, ZeroPadding, Cropping,
UpSampling and Resizing.

Permute(dims): y = transpose(x, (0, *dims)). RepeatVector(n): (N, F) -> (N, n, F), y[:, t] = x.
ZeroPadding: Pad with zeros, (before, after) per spatial axis. Cropping: Slice
[a, size - b) per spatial axis (the end as a negative index, so any length works).
UpSampling1D/2D/3D nearest: each step repeated (Resize nearest with integer scales, asymmetric
coordinates, floor); UpSampling2D bilinear and Resizing: Resize linear with half-pixel
coordinates x_in = (x_out + 0.5) / s - 0.5, clamped at the edges (dendrite's maths).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.common import as_float, first, to_channels_first, to_channels_last
from dendrite.export.errors import refuse
from dendrite.export.registry import converts
from dendrite.layers import augmentation, reshaping


@converts(reshaping.Permute)
def permute(ctx: Any, layer: Any, args: dict) -> str:
    """y = transpose(x, (0, *dims))."""
    return ctx.b.op("Transpose", [first(args).name], perm=[0, *layer.dims])


@converts(reshaping.RepeatVector)
def repeat_vector(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, t, f] = x[n, f] for t < n_repeats."""
    b = ctx.b
    x = b.op("Unsqueeze", [first(args).name, b.ints([1])])
    return b.op("Tile", [x, b.ints([1, layer.n, 1])])


def _spatial_axes(layer: Any) -> list[int]:
    return list(layer._spatial_axes())


@converts(reshaping.ZeroPadding1D, reshaping.ZeroPadding2D, reshaping.ZeroPadding3D)
def zero_padding(ctx: Any, layer: Any, args: dict) -> str:
    """y = x with (before, after) zeros on each spatial axis."""
    x = first(args)
    before, after = [0] * x.rank, [0] * x.rank
    for axis, (a, c) in zip(_spatial_axes(layer), layer.padding):
        before[axis], after[axis] = a, c
    return ctx.b.op("Pad", [x.name, ctx.b.ints(before + after)], mode="constant")


@converts(reshaping.Cropping1D, reshaping.Cropping2D, reshaping.Cropping3D)
def cropping(ctx: Any, layer: Any, args: dict) -> str:
    """y = x[..., a : size - b, ...] on each spatial axis."""
    b, x = ctx.b, first(args)
    axes = _spatial_axes(layer)
    starts = [a for a, _ in layer.cropping]
    ends = [-c if c else np.iinfo(np.int64).max for _, c in layer.cropping]
    return b.op("Slice", [x.name, b.ints(starts), b.ints(ends), b.ints(axes)])


def _resize(ctx: Any, x: str, rank: int, scales: list[float], mode: str) -> str:
    """Resize a channels_last tensor by ``scales`` on its spatial axes."""
    b = ctx.b
    y = to_channels_first(b, x, rank)
    full = b.const(np.asarray([1.0, 1.0, *scales], np.float32), "scales")
    if mode == "nearest":
        y = b.op(
            "Resize",
            [y, "", full],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
    else:
        y = b.op(
            "Resize", [y, "", full], mode="linear", coordinate_transformation_mode="half_pixel"
        )
    return to_channels_last(b, y, rank)


@converts(reshaping.UpSampling1D)
def up_sampling_1d(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, t] = x[n, t // size]."""
    b = ctx.b
    x = first(args)
    y = b.op("Unsqueeze", [x.name, b.ints([2])])
    y = b.op("Tile", [y, b.ints([1, 1, layer.size, 1])])
    return b.op("Reshape", [y, b.ints([0, -1, x.shape[-1]])])


@converts(reshaping.UpSampling2D)
def up_sampling_2d(ctx: Any, layer: Any, args: dict) -> str:
    """nearest: y[n, i, j] = x[n, i // s0, j // s1]; bilinear: half-pixel linear."""
    x = first(args)
    if layer.interpolation not in ("nearest", "bilinear"):
        raise refuse(layer, f"interpolation {layer.interpolation!r} has no ONNX form here.")
    name = as_float(ctx.b, x)
    if layer.data_format == "channels_first":
        name = to_channels_last(ctx.b, name, 4)
    mode = "nearest" if layer.interpolation == "nearest" else "linear"
    y = _resize(ctx, name, 4, [float(s) for s in layer.size], mode)
    if layer.data_format == "channels_first":
        y = to_channels_first(ctx.b, y, 4)
    return y


@converts(reshaping.UpSampling3D)
def up_sampling_3d(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, i, j, k] = x[n, i // s0, j // s1, k // s2] (Resize nearest, integer scales)."""
    x = first(args)
    name = as_float(ctx.b, x)
    if layer.data_format == "channels_first":
        name = to_channels_last(ctx.b, name, 5)
    y = _resize(ctx, name, 5, [float(s) for s in layer.size], "nearest")
    if layer.data_format == "channels_first":
        y = to_channels_first(ctx.b, y, 5)
    return y


@converts(augmentation.Resizing)
def resizing(ctx: Any, layer: Any, args: dict) -> str:
    """y = resize(x, (height, width)), half-pixel coordinates (bilinear or nearest)."""
    x = first(args)
    if x.rank != 4 or x.shape[1] is None or x.shape[2] is None:
        raise refuse(layer, "only batched (N, H, W, C) inputs of known H and W export.")
    if layer.interpolation not in ("bilinear", "nearest"):
        raise refuse(layer, f"interpolation {layer.interpolation!r} has no ONNX form here.")
    b = ctx.b
    y = to_channels_first(b, as_float(b, x), 4)
    sizes = b.op(
        "Concat",
        [
            b.op("Slice", [b.op("Shape", [y]), b.ints([0]), b.ints([2])]),
            b.ints([layer.height, layer.width]),
        ],
        axis=0,
    )
    if layer.interpolation == "nearest":
        y = b.op(
            "Resize",
            [y, "", "", sizes],
            mode="nearest",
            coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_floor",
        )
    else:
        y = b.op(
            "Resize", [y, "", "", sizes], mode="linear", coordinate_transformation_mode="half_pixel"
        )
    return to_channels_last(b, y, 4)


@converts(augmentation.CenterCrop)
def center_crop(ctx: Any, layer: Any, args: dict) -> str:
    """y = the central (height, width) window: a Slice (images at least that large)."""
    x = first(args)
    axes = [1, 2] if layer.data_format == "channels_last" else [2, 3]
    sizes = [x.shape[a] for a in axes] if x.rank == 4 else [None, None]
    if None in sizes or sizes[0] < layer.height or sizes[1] < layer.width:
        raise refuse(
            layer,
            "only batched images of known height and width at least the window's export "
            "(smaller ones are resized first, which has no ONNX form here).",
        )
    starts = [(sizes[0] - layer.height) // 2, (sizes[1] - layer.width) // 2]
    ends = [starts[0] + layer.height, starts[1] + layer.width]
    b = ctx.b
    return b.op("Slice", [x.name, b.ints(starts), b.ints(ends), b.ints(axes)])
