"""Converters of the merging layers.

Add: y = sum_i x_i; Subtract: y = x_0 - x_1; Multiply: y = prod_i x_i; Average:
y = (sum_i x_i) / n; Maximum / Minimum: elementwise max / min; Concatenate(axis): Concat.
Dot(axes, normalize): x_1 with its axis moved last, x_2 with its axis moved to 1, one
batched MatMul (N, r1, k) @ (N, k, r2), reshaped to (N, *rest_1, *rest_2); with normalize
each input is first x / sqrt(max(sum x^2, eps^2)) on its axis. A lower-rank input gets
size-1 axes after the batch axis (Keras' broadcasting rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.export.common import first, positive_axis
from dendrite.export.registry import converts
from dendrite.layers import merging, merging_axes


def _aligned(ctx: Any, values: list) -> list[str]:
    rank = max(v.rank for v in values)
    names = []
    for v in values:
        name = v.name
        if v.rank < rank:
            name = ctx.b.op("Unsqueeze", [name, ctx.b.ints(list(range(1, 1 + rank - v.rank)))])
        names.append(name)
    return names


def _chain(ctx: Any, op: str, names: list[str]) -> str:
    y = names[0]
    for name in names[1:]:
        y = ctx.b.op(op, [y, name])
    return y


@converts(merging.Add)
def add(ctx: Any, layer: Any, args: dict) -> str:
    """y = sum_i x_i."""
    return _chain(ctx, "Add", _aligned(ctx, first(args)))


@converts(merging.Subtract)
def subtract(ctx: Any, layer: Any, args: dict) -> str:
    """y = x_0 - x_1."""
    return _chain(ctx, "Sub", _aligned(ctx, first(args)))


@converts(merging.Multiply)
def multiply(ctx: Any, layer: Any, args: dict) -> str:
    """y = prod_i x_i."""
    return _chain(ctx, "Mul", _aligned(ctx, first(args)))


@converts(merging.Average)
def average(ctx: Any, layer: Any, args: dict) -> str:
    """y = (sum_i x_i) / n."""
    names = _aligned(ctx, first(args))
    total = _chain(ctx, "Add", names)
    return ctx.b.op("Div", [total, ctx.b.const(np.float32(len(names)))])


@converts(merging.Maximum)
def maximum(ctx: Any, layer: Any, args: dict) -> str:
    """y = max_i x_i."""
    return ctx.b.op("Max", _aligned(ctx, first(args)))


@converts(merging.Minimum)
def minimum(ctx: Any, layer: Any, args: dict) -> str:
    """y = min_i x_i."""
    return ctx.b.op("Min", _aligned(ctx, first(args)))


@converts(merging_axes.Concatenate)
def concatenate(ctx: Any, layer: Any, args: dict) -> str:
    """y = concat(x_i, axis)."""
    values = first(args)
    return ctx.b.op(
        "Concat", [v.name for v in values], axis=positive_axis(layer.axis, values[0].rank)
    )


def _l2_normalize(b: Any, x: str, axis: int) -> str:
    total = b.reduce("ReduceSum", b.op("Mul", [x, x]), [axis], 1)
    floor = b.const(np.float32(_settings.epsilon() ** 2))
    return b.op("Mul", [x, b.op("Reciprocal", [b.op("Sqrt", [b.op("Max", [total, floor])])])])


@converts(merging_axes.Dot)
def dot(ctx: Any, layer: Any, args: dict) -> str:
    """y = sum_k x1[.., k, ..] x2[.., k, ..] over the given axes, as one batched MatMul."""
    b = ctx.b
    v1, v2 = first(args)
    a1, a2 = layer._resolved_axes([v1.shape, v2.shape])
    x1, x2 = v1.name, v2.name
    if layer.normalize:
        x1, x2 = _l2_normalize(b, x1, a1), _l2_normalize(b, x2, a2)
    perm1 = [a for a in range(v1.rank) if a != a1] + [a1]
    perm2 = [0, a2] + [a for a in range(1, v2.rank) if a != a2]
    rest1 = [v1.shape[a] for a in perm1[1:-1]]
    rest2 = [v2.shape[a] for a in perm2[2:]]
    k = v1.shape[a1]
    x1 = b.op("Reshape", [b.op("Transpose", [x1], perm=perm1), b.ints([0, -1, k])])
    x2 = b.op("Reshape", [b.op("Transpose", [x2], perm=perm2), b.ints([0, k, -1])])
    out = b.op("MatMul", [x1, x2])
    shape = [0, *rest1, *rest2] or [0]
    if len(shape) == 1:
        shape = [0, 1]
    return b.op("Reshape", [out, b.ints(shape)])
