"""Occlusion sensitivity (Zeiler and Fergus, 2014): cover part of the input and watch the
score fall. Gradient-free, so it works on any model, differentiable or not.

A window of shape ``window`` slides over the sample's axes with step ``stride``; at each
place the covered features are set to ``fill`` and the score drop
``d = s(x) - s(x with the window filled)`` is credited to every covered feature, each
feature's sensitivity being the average drop over the windows that covered it (features
no window covers get 0). For a linear score ``s = w . x + b``, a window covering only
feature ``j`` (window 1, stride 1) with ``fill = 0`` drops the score by exactly ``w_j x_j``,
which is gradient x input: the two methods agree on linear models (tested).

The window covers the sample's leading axes; remaining axes (an image's channels) are
covered whole unless ``window`` names them too. Occluded copies are run in batches of
``batch_size``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dendrite.explain._common import as_batch, chunks, fixed_target, score_values


def _per_axis(value: Any, rank: int, name: str) -> tuple[int, ...]:
    values = (value,) * rank if np.isscalar(value) else tuple(int(v) for v in value)
    if any(v < 1 for v in values):
        raise ValueError(f"occlusion: {name} must be positive, got {value!r}.")
    return values


def occlusion(
    model: Any,
    x: Any,
    target: Any = None,
    window: Any = 4,
    stride: Any = None,
    fill: float = 0.0,
    batch_size: int = 256,
) -> np.ndarray:
    """The average score drop when each feature is covered, shaped like ``x``.

    Args:
        window: the window's size, an int for every leading axis of a sample (all but the
            last when a sample has 3 or more axes: height and width of an image), or one
            size per axis covered.
        stride: the window's step, the same forms (default: the window, no overlap).
        fill: the value covering the window.
        batch_size: how many occluded copies one forward pass takes.
    """
    batch = as_batch(x)
    n, shape = batch.shape[0], batch.shape[1:]
    if np.isscalar(window):
        rank = len(shape) - 1 if len(shape) >= 3 else len(shape)
    else:
        rank = len(window)
    if rank > len(shape):
        raise ValueError(f"occlusion: window {window!r} has more axes than a sample {shape}.")
    window = _per_axis(window, rank, "window")
    stride = window if stride is None else _per_axis(stride, rank, "stride")
    target = fixed_target(model, batch, target)
    reference = score_values(model, batch, target)
    starts = [
        sorted(set(list(range(0, max(size - w, 0) + 1, s)) + [max(size - w, 0)]))
        for size, w, s in zip(shape[:rank], window, stride)
    ]
    places = list(itertools.product(*starts))
    drops = np.zeros(batch.shape, dtype=np.float64)
    counts = np.zeros(shape, dtype=np.float64)
    per_chunk = max(1, batch_size // n)
    for part in chunks(len(places), per_chunk):
        chosen = places[part]
        copies = np.repeat(batch[None], len(chosen), axis=0)
        regions = []
        for k, corner in enumerate(chosen):
            region = tuple(slice(c, c + w) for c, w in zip(corner, window))
            copies[(k, slice(None)) + region] = fill
            regions.append(region)
        units = target if callable(target) or target is None else np.tile(target, len(chosen))
        values = score_values(model, copies.reshape((-1,) + shape), units).reshape(-1, n)
        for k, region in enumerate(regions):
            drop = (reference - values[k]).reshape((n,) + (1,) * len(shape))
            drops[(slice(None),) + region] += drop
            counts[region] += 1
    sensitivity = np.divide(drops, counts[None], out=np.zeros_like(drops), where=counts[None] > 0)
    return sensitivity.astype(batch.dtype)
