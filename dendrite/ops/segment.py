"""Segment reductions with Keras 3's names: segment_sum, segment_max, segment_min,
segment_prod.

``out[s] = reduce{ data[i] : segment_ids[i] == s }`` over the first axis of ``data``, for
``s`` in ``range(num_segments)`` (``max(segment_ids) + 1`` when None); rows whose id is
negative or not below ``num_segments`` are dropped, as Keras' torch backend drops them.
An empty segment holds the reduction's identity: 0, 1, -inf for max and +inf for min
(the integer dtype's lowest / highest value for integer data).

One primitive, ``segment_reduce``, with the VJP of each reduction (g_s = dL/dout[s]; rows
that were dropped get 0):

- sum:      dL/ddata[i] = g_{s(i)};
- max, min: dL/ddata[i] = g_{s(i)} [data[i] == out[s(i)]] / (number of ties in s(i)),
  the gradient shared evenly among tied extremes, as PyTorch's scatter_reduce shares it;
- prod:     dL/ddata[i] = g_{s(i)} prod_{j in s(i), j != i} data[j], from the product of
  the segment's non-zero values and its count of zeros (exact with zeros present).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw

_REDUCTIONS = ("sum", "max", "min", "prod")


def _identity(kind: str, dtype: np.dtype) -> Any:
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if kind == "max" else info.max
    if dtype.kind == "b":
        return kind == "min"
    return -np.inf if kind == "max" else np.inf


_UFUNCS = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}


@register("segment_reduce")
class SegmentReduce(Function):
    """out[s] = reduce(data[i] for segment_ids[i] == s); see the module docstring."""

    def forward(
        self, data: np.ndarray, ids: Any = None, num_segments: int = 0, kind: str = "sum"
    ) -> np.ndarray:
        keep = (ids >= 0) & (ids < num_segments)
        rows = ids[keep]
        values = data[keep]
        out = np.full((num_segments,) + data.shape[1:], _identity(kind, data.dtype), data.dtype)
        _UFUNCS[kind].at(out, rows, values)
        self.saved = (data, keep, rows, out, kind)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        data, keep, rows, out, kind = self.saved
        grad = np.zeros(data.shape, dtype=g.dtype)
        picked = g[rows]
        if kind == "sum":
            grad[keep] = picked
        elif kind in ("max", "min"):
            values = data[keep]
            hit = (values == out[rows]).astype(g.dtype)
            ties = np.zeros(out.shape, dtype=g.dtype)
            np.add.at(ties, rows, hit)
            grad[keep] = picked * hit / np.maximum(ties[rows], 1)
        else:
            values = data[keep]
            zero = values == 0
            nonzero = np.ones(out.shape, dtype=g.dtype)
            np.multiply.at(nonzero, rows, np.where(zero, 1, values).astype(g.dtype))
            zeros = np.zeros(out.shape, dtype=np.int64)
            np.add.at(zeros, rows, zero.astype(np.int64))
            mine, count = nonzero[rows], zeros[rows]
            with np.errstate(divide="ignore", invalid="ignore"):
                others = np.where(
                    count == 0,
                    mine / np.where(zero, 1, values),
                    np.where((count == 1) & zero, mine, 0),
                )
            grad[keep] = picked * others
        return grad


def _segment(kind: str, data: Any, segment_ids: Any, num_segments: Any, op: str) -> Tensor:
    array = raw(data)
    ids = np.asarray(raw(segment_ids))
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: segment_ids must be integers, got dtype {ids.dtype}.")
    if ids.ndim != 1 or array.ndim == 0 or ids.shape[0] != array.shape[0]:
        raise ValueError(
            f"{op}: segment_ids must be 1-D with one id per row of data; got segment_ids of "
            f"shape {ids.shape} for data of shape {array.shape}."
        )
    if num_segments is None:
        num_segments = int(ids.max()) + 1 if ids.size else 0
    num_segments = int(raw(num_segments)) if not isinstance(num_segments, int) else num_segments
    if num_segments < 0:
        raise ValueError(f"{op}: num_segments must be >= 0, got {num_segments}.")
    return SegmentReduce.apply(data, ids=ids, num_segments=num_segments, kind=kind)


def segment_sum(
    data: Any,
    segment_ids: Any,
    num_segments: Any = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Sum of the rows of ``data`` in each segment (0 for an empty segment)."""
    return _segment("sum", data, segment_ids, num_segments, "segment_sum")


def segment_max(
    data: Any,
    segment_ids: Any,
    num_segments: Any = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Largest row values of each segment (-inf, or the dtype's lowest, when empty)."""
    return _segment("max", data, segment_ids, num_segments, "segment_max")


def segment_min(
    data: Any,
    segment_ids: Any,
    num_segments: Any = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Smallest row values of each segment (+inf, or the dtype's highest, when empty)."""
    return _segment("min", data, segment_ids, num_segments, "segment_min")


def segment_prod(
    data: Any,
    segment_ids: Any,
    num_segments: Any = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Product of the rows of ``data`` in each segment (1 for an empty segment)."""
    return _segment("prod", data, segment_ids, num_segments, "segment_prod")
