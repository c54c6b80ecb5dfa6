"""Small helpers the converters share: weights as arrays, casts, zero states, the layout
moves between Keras' channels_last and ONNX's channels_first, and axes made positive."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.errors import onnx_module
from dendrite.export.graph import GraphBuilder, Value


def array(weight: Any) -> np.ndarray:
    """A Variable's (or Tensor's, or array's) current value as a float32/int array."""
    data = weight.numpy() if hasattr(weight, "numpy") else np.asarray(weight)
    data = np.asarray(data)
    return data.astype(np.float32) if data.dtype.kind == "f" else data


def first(args: dict) -> Any:
    """The first call argument (``inputs``, ``sequences``, ``query`` ...)."""
    return args["inputs"]


def as_float(b: GraphBuilder, x: Value) -> str:
    """``x`` cast to float32 when it is not already a float tensor."""
    if np.dtype(x.dtype) == np.float32:
        return x.name
    return b.op("Cast", [x.name], to=1)


def batch_zeros(b: GraphBuilder, like: str, dims: list[int]) -> str:
    """float32 zeros of shape (batch of ``like``, *dims): a recurrent layer's zero state."""
    batch = b.op("Slice", [b.op("Shape", [like]), b.ints([0]), b.ints([1])])
    shape = b.op("Concat", [batch, b.ints(dims)], axis=0)
    zero = onnx_module().helper.make_tensor("z", 1, [1], [0.0])
    return b.op("ConstantOfShape", [shape], value=zero)


def to_channels_first(b: GraphBuilder, x: str, rank: int) -> str:
    """(N, *spatial, C) -> (N, C, *spatial)."""
    return b.op("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)])


def to_channels_last(b: GraphBuilder, x: str, rank: int) -> str:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return b.op("Transpose", [x], perm=[0, *range(2, rank), 1])


def positive_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
