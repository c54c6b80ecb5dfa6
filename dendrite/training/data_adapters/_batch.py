"""One batch from user code, checked and packed as a step receives it."""

from __future__ import annotations

from typing import Any

from dendrite.training import data as data_utils
from dendrite.utils import pack_x_y_sample_weight


def standardize_batch(item: Any, index: int, source: str, class_weight: dict | None = None):
    """``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` of ndarrays from what a dataset
    returned for batch ``index``; errors name the batch and where it came from."""
    if isinstance(item, list):
        item = tuple(item)
    if not isinstance(item, tuple):
        item = (item,)
    if not 1 <= len(item) <= 3:
        raise ValueError(
            f"{source} batch {index}: expected `x`, `(x,)`, `(x, y)` or "
            f"`(x, y, sample_weight)`, got a tuple of {len(item)} elements."
        )
    what = ("x", "y", "sample_weight")
    try:
        parts = [
            data_utils.to_arrays(part, f"{source} batch {index}: {what[i]}")
            for i, part in enumerate(item)
        ]
        x = parts[0]
        y = parts[1] if len(parts) > 1 else None
        sample_weight = parts[2] if len(parts) > 2 else None
        if x is None:
            raise ValueError(f"{source} batch {index}: x is None.")
        data_utils.num_samples(x, y, sample_weight)
        for part, name in zip(parts, what):
            data_utils.check_finite(part, f"{source} batch {index}: {name}")
    except ValueError as error:
        message = str(error)
        if f"batch {index}" not in message:
            message = f"{source} batch {index}: {message}"
        raise ValueError(message) from None
    if class_weight is not None and y is not None:
        weights = data_utils.class_weights_to_sample_weights(y, class_weight)
        sample_weight = weights if sample_weight is None else sample_weight * weights
    return pack_x_y_sample_weight(x, y, sample_weight)
