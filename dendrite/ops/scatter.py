"""Scatters, slices and index queries with Keras 3's names.

One primitive, ``scatter`` (the transpose of a gather): ``y = zeros(shape)`` with
``y[indices[i]] += values[i]`` (repeated indices add up); its VJP gathers,
``dL/dvalues[i] = g[indices[i]]``. On it and on existing ops:

- scatter_update(inputs, indices, updates): inputs with those positions replaced (the last
  of repeated indices wins; the others get no gradient) or, with ``reduction="add"``,
  added to; gradient g to inputs outside the replaced positions, gathered g to updates;
- slice(inputs, start_indices, shape): a ``getitem`` of one box;
  slice_update(inputs, start_indices, updates): inputs with that box replaced
  (``where`` of inputs and the zero-padded updates);
- select(condlist, choicelist, default): the first choice whose condition holds (``where``).

Plain (integer or boolean) results, no gradient: searchsorted, digitize, bincount, unique,
unravel_index, nonzero, argpartition, in_top_k, multi_hot.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add
from dendrite.ops.comparison import where
from dendrite.ops.creation import _dtype, cast
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import pad
from dendrite.ops.movement import reshape


def _index_array(indices: Any, shape: tuple[int, ...], op: str) -> tuple[np.ndarray, ...]:
    """Keras' (N, k) index rows as NumPy's tuple of k index arrays, checked against shape."""
    idx = np.asarray(raw(indices))
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{op}: indices must be integers, got dtype {idx.dtype}.")
    if idx.ndim == 1:
        idx = idx[:, None]
    k = idx.shape[-1]
    if k > len(shape):
        raise ValueError(f"{op}: index rows of length {k} for a tensor of rank {len(shape)}.")
    idx = idx.reshape(-1, k)
    for axis in range(k):
        if idx.size and (idx[:, axis].min() < -shape[axis] or idx[:, axis].max() >= shape[axis]):
            raise IndexError(
                f"{op}: an index on axis {axis} is out of range for shape {tuple(shape)}."
            )
    return tuple(idx[:, axis] for axis in range(k))


@register("scatter")
class Scatter(Function):
    """y = zeros(shape), y[index] += values; dL/dvalues = g[index]."""

    def forward(self, values: np.ndarray, index: Any = None, shape: Any = None) -> np.ndarray:
        self.saved = (index, values.shape)
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, index, values)
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        index, shape = self.saved
        return g[index].reshape(shape)


def scatter(indices: Any, values: Any, shape: Any) -> Tensor:
    """A tensor of ``shape``, zero except at ``indices`` (rows of k coordinates), where
    ``values`` are added (repeated indices add up)."""
    shape = tuple(int(s) for s in shape)
    index = _index_array(indices, shape, "scatter")
    if not isinstance(values, Tensor):
        values = Tensor._make(raw(values))
    expected = (len(index[0]),) + shape[len(index) :]
    if int(np.prod(values.shape)) != int(np.prod(expected)):
        raise ValueError(
            f"scatter: values of shape {values.shape} do not fit {len(index[0])} indices into "
            f"shape {shape} (expected {expected})."
        )
    return Scatter.apply(reshape(values, expected), index=index, shape=shape)


def scatter_update(inputs: Any, indices: Any, updates: Any, reduction: str | None = None) -> Tensor:
    """``inputs`` with ``updates`` written at ``indices`` (``reduction=None``: replaced,
    the last of repeated indices winning) or added there (``reduction="add"``)."""
    shape = tuple(np.shape(raw(inputs)))
    index = _index_array(indices, shape, "scatter_update")
    updates = updates if isinstance(updates, Tensor) else Tensor._make(raw(updates))
    if updates.dtype != raw(inputs).dtype:
        updates = cast(updates, raw(inputs).dtype)
    if reduction == "add":
        return add(inputs, scatter(np.stack(index, -1), updates, shape))
    if reduction is not None:
        raise ValueError(
            f"scatter_update: reduction must be None or 'add', got {reduction!r} ('max', "
            f"'min' and 'mul' are not supported)."
        )
    n = len(index[0])
    flat = np.ravel_multi_index(index, shape[: len(index)]) if n else np.zeros(0, np.intp)
    # Keep the last write to each position: the first occurrence in the reversed order.
    _, first_reversed = np.unique(flat[::-1], return_index=True)
    keep = np.sort(n - 1 - first_reversed)
    rows = reshape(updates, (n,) + shape[len(index) :])
    kept = getitem(rows, keep)
    written = np.zeros(shape, dtype=bool)
    written[index] = True
    placed = scatter(np.stack([i[keep] for i in index], -1), kept, shape)
    return where(written, placed, inputs)


def slice(inputs: Any, start_indices: Any, shape: Any) -> Tensor:  # noqa: A001 (Keras' name)
    """The box of ``shape`` starting at ``start_indices`` (one per axis)."""
    starts = [int(s) for s in np.ravel(raw(start_indices))]
    sizes = [int(s) for s in shape]
    full = np.shape(raw(inputs))
    if len(starts) != len(full) or len(sizes) != len(full):
        raise ValueError(
            f"slice: start_indices {starts} and shape {sizes} need one entry per axis of "
            f"the input (shape {full})."
        )
    if any(s < 0 or n < 0 or s + n > d for s, n, d in zip(starts, sizes, full)):
        raise ValueError(f"slice: a box of shape {sizes} at {starts} does not fit in {full}.")
    index = tuple(builtins.slice(s, s + n) for s, n in zip(starts, sizes))
    return getitem(inputs, index)


def slice_update(inputs: Any, start_indices: Any, updates: Any) -> Tensor:
    """``inputs`` with the box starting at ``start_indices`` replaced by ``updates``."""
    full = np.shape(raw(inputs))
    starts = [int(s) for s in np.ravel(raw(start_indices))]
    sizes = np.shape(raw(updates))
    if len(starts) != len(full) or len(sizes) != len(full):
        raise ValueError(
            f"slice_update: start_indices {starts} and updates of shape {sizes} need one "
            f"entry per axis of the input (shape {full})."
        )
    if any(s < 0 or s + n > d for s, n, d in zip(starts, sizes, full)):
        raise ValueError(
            f"slice_update: updates of shape {sizes} at {starts} do not fit in shape {full}."
        )
    widths = [(s, d - s - n) for s, n, d in zip(starts, sizes, full)]
    mask = np.zeros(full, dtype=bool)
    mask[tuple(builtins.slice(s, s + n) for s, n in zip(starts, sizes))] = True
    updates = updates if isinstance(updates, Tensor) else Tensor._make(raw(updates))
    if updates.dtype != raw(inputs).dtype:
        updates = cast(updates, raw(inputs).dtype)
    return where(mask, pad(updates, widths) if full else updates, inputs)


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Tensor:
    """Element-wise, the choice of the first condition that holds (``default`` where none
    does), broadcasting; differentiable in the choices and the default."""
    if len(condlist) != len(choicelist):
        raise ValueError(
            f"select: condlist and choicelist differ in length ({len(condlist)} and "
            f"{len(choicelist)})."
        )
    if not condlist:
        raise ValueError("select: condlist must not be empty.")
    out = default
    if not isinstance(out, Tensor):
        out = np.asarray(out, dtype=np.result_type(*[raw(c) for c in choicelist]))
    for condition, choice in zip(reversed(condlist), reversed(choicelist)):
        out = where(raw(condition).astype(bool), choice, out)
    return out


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left") -> Tensor:
    """Where each value would go in the 1-D ``sorted_sequence`` to keep it sorted; int32."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}.")
    sequence = raw(sorted_sequence)
    if sequence.ndim != 1:
        raise ValueError(f"searchsorted: sorted_sequence must be 1-D, got {sequence.shape}.")
    return Tensor._make(np.searchsorted(sequence, raw(values), side=side).astype(np.int32))


def digitize(x: Any, bins: Any) -> Tensor:
    """The index of the bin each value of x falls in (``bins[i-1] <= x < bins[i]``); int32."""
    return Tensor._make(np.digitize(raw(x), raw(bins)).astype(np.int32))


def bincount(x: Any, weights: Any = None, minlength: int = 0, sparse: bool = False) -> Tensor:
    """How often each non-negative integer occurs in the 1-D (or 2-D, row by row) x, or
    the sum of its ``weights``; int32 counts, or the weights' dtype."""
    if sparse:
        raise ValueError("bincount: sparse outputs are not supported.")
    data = raw(x)
    if not np.issubdtype(data.dtype, np.integer) or (data.size and data.min() < 0):
        raise ValueError("bincount: x must hold non-negative integers.")
    w = None if weights is None else raw(weights)
    length = builtins.max(int(minlength), int(data.max()) + 1 if data.size else 0)
    if data.ndim == 2:
        rows = [np.bincount(r, None if w is None else w[i], length) for i, r in enumerate(data)]
        out = np.stack(rows) if rows else np.zeros((0, length))
    elif data.ndim == 1:
        out = np.bincount(data, w, length)
    else:
        raise ValueError(f"bincount: x must be 1-D or 2-D, got shape {data.shape}.")
    return Tensor._make(out.astype(np.int32 if w is None else w.dtype))


def unique(
    x: Any,
    sorted: bool = True,  # noqa: A002 (Keras' name)
    return_index: bool = False,
    return_inverse: bool = False,
    return_counts: bool = False,
    axis: int | None = None,
    size: int | None = None,
    fill_value: Any = None,
) -> Any:
    """The distinct values of x (of the flattened x, or the distinct slices along
    ``axis``), sorted; with ``return_*`` also their first indices, the inverse map and the
    counts (int32), NumPy's order. ``size`` pads (with ``fill_value``, default the smallest
    value) or cuts the result to that length, for static shapes. Plain results."""
    data = raw(x)
    results = np.unique(
        data,
        return_index=True,
        return_inverse=True,
        return_counts=True,
        axis=axis,
    )
    values, first, inverse, counts = results
    if not sorted:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    if size is not None:
        n = values.shape[0 if axis is None else axis]
        if n >= size:
            taken = np.arange(size)
        else:
            taken = np.concatenate([np.arange(n), np.full(size - n, -1)])
        fill = values.min() if fill_value is None and values.size else (fill_value or 0)
        along = 0 if axis is None else axis
        padded = np.take(values, np.maximum(taken, 0), axis=along)
        if n < size:
            fill_index = [builtins.slice(None)] * padded.ndim
            fill_index[along] = builtins.slice(n, None)
            padded[tuple(fill_index)] = fill
        values = padded
        first = np.where(taken >= 0, np.take(first, np.maximum(taken, 0)), 0)
        counts = np.where(taken >= 0, np.take(counts, np.maximum(taken, 0)), 0)
    out = [Tensor._make(values)]
    if return_index:
        out.append(Tensor._make(first.astype(np.int32)))
    if return_inverse:
        out.append(
            Tensor._make(inverse.reshape(-1 if axis is not None else data.shape).astype(np.int32))
        )
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int32)))
    return out[0] if len(out) == 1 else tuple(out)


def unravel_index(indices: Any, shape: Any) -> tuple[Tensor, ...]:
    """The coordinates in ``shape`` of flat ``indices``: one int32 tensor per axis."""
    coordinates = np.unravel_index(raw(indices), tuple(int(s) for s in shape))
    return tuple(Tensor._make(np.asarray(c).astype(np.int32)) for c in coordinates)


def nonzero(x: Any) -> tuple[Tensor, ...]:
    """The indices of the non-zero elements of x: one int32 tensor per axis."""
    return tuple(Tensor._make(i.astype(np.int32)) for i in np.nonzero(raw(x)))


def argpartition(x: Any, kth: Any, axis: int = -1) -> Tensor:
    """Indices that put the kth element of x along ``axis`` where sorting would, smaller
    ones before it and larger ones after (in no set order); int32."""
    return Tensor._make(np.argpartition(raw(x), kth, axis=axis).astype(np.int32))


def in_top_k(targets: Any, predictions: Any, k: int) -> Tensor:
    """Whether each target class is among the k largest predictions of its row (a tie
    with the k-th largest counts as inside); a plain boolean tensor."""
    scores = raw(predictions)
    labels = np.asarray(raw(targets)).astype(np.intp)
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"in_top_k: predictions must be (batch, classes) and targets (batch,); got "
            f"{scores.shape} and {labels.shape}."
        )
    target_scores = np.take_along_axis(scores, labels[:, None], axis=1)
    larger = np.sum(scores > target_scores, axis=1)
    return Tensor._make(larger < k)


def multi_hot(
    inputs: Any,
    num_classes: int | None = None,
    axis: int = -1,
    dtype: Any = None,
    sparse: bool = False,
    **kwargs: Any,
) -> Tensor:
    """A 0/1 encoding of the class indices in each row of ``inputs`` (a 1-D input is one
    row), ``floatx`` unless ``dtype``. Keras' formula: ``one_hot`` along ``axis``, then the
    maximum over axis 1 (axis 0 for a 1-D input); indices outside [0, num_classes) give no
    1."""
    if "num_tokens" in kwargs:  # Keras' deprecated name
        num_classes = kwargs.pop("num_tokens")
    if kwargs:
        raise TypeError(f"multi_hot: unexpected arguments {sorted(kwargs)}.")
    if num_classes is None:
        raise ValueError("multi_hot: num_classes is required.")
    if sparse:
        raise ValueError("multi_hot: sparse outputs are not supported.")
    labels = np.asarray(raw(inputs)).astype(np.intp)
    # Keras' formula: one-hot along ``axis``, then the maximum over axis 1 (0 for 1-D).
    hot = labels[..., None] == np.arange(num_classes)
    if axis != -1:
        hot = np.moveaxis(hot, -1, axis)
    out = np.max(hot, axis=1 if labels.ndim > 1 else 0).astype(_dtype(dtype))
    return Tensor._make(out)
