"""Converters of the integer-category layers (``layers/categorical.py``).

Discretization: the bin of ``x`` is the number of boundaries at or below it,
``sum_i [x >= b_i]`` (a comparison with the boundaries on a new last axis, summed).
The encodings of ids ``i`` in ``[0, depth)``: one_hot is ONNX's OneHot (a trailing axis of
size 1 dropped first); multi_hot and count are OneHot then ReduceMax or ReduceSum over the
sample's axis (the last of a rank-2 input, axis 1 of a higher one, as the layer does). An
id outside ``[0, depth)`` gives a row of zeros here, where the layer raises an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.common import first
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import categorical


def _encode(ctx: Any, layer: Any, ids: str, shape: tuple, mode: str, depth: int) -> str:
    b, rank = ctx.b, len(shape)
    if mode == "one_hot" and rank > 1 and shape[-1] == 1:
        ids = b.op("Squeeze", [ids, b.ints([-1])])  # (..., 1) ids: the layer drops that axis
    values = b.const(np.asarray([0.0, 1.0], np.float32), f"{layer.name}/off_on")
    hot = b.op("OneHot", [ids, b.ints([depth]), values], axis=-1)
    if mode == "one_hot":
        return hot
    reduce = "ReduceMax" if mode == "multi_hot" else "ReduceSum"
    return b.reduce(reduce, hot, [1 if rank > 1 else 0], keepdims=0)


@converts(categorical.CategoryEncoding)
def category_encoding(ctx: Any, layer: Any, args: dict) -> str:
    """The ids' one-hot, multi-hot or count vectors (see the module docstring)."""
    x = first(args)
    ids = ctx.b.op("Cast", [x.name], to=7)  # int64, as OneHot takes them
    return _encode(ctx, layer, ids, tuple(x.shape), layer.output_mode, layer.num_tokens)


@converts(categorical.Discretization)
def discretization(ctx: Any, layer: Any, args: dict) -> Any:
    """Bin ids ``sum_i [x >= b_i]``, then the encoding of ``output_mode``."""
    b, x = ctx.b, first(args)
    bounds = b.const(np.asarray(layer.bin_boundaries, np.float32), f"{layer.name}/boundaries")
    value = b.op("Cast", [x.name], to=1)
    above = b.op("GreaterOrEqual", [b.op("Unsqueeze", [value, b.ints([-1])]), bounds])
    ids = b.reduce("ReduceSum", b.op("Cast", [above], to=7), [-1], keepdims=0)
    if layer.output_mode == "int":
        out = b.op("Cast", [ids], to=6)  # int32, as the layer returns
        return Value(out, tuple(layer.compute_output_shape(x.shape)), np.int32, x.mask)
    depth = len(layer.bin_boundaries) + 1
    return _encode(ctx, layer, ids, tuple(x.shape), layer.output_mode, depth)
