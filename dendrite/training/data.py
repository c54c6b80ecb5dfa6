"""Turning ``fit``/``evaluate``/``predict`` arguments into checked arrays and batches.

Inputs may be an ndarray, a Tensor, a list of them (several inputs or outputs) or a dict.
Every check that can fail (lengths, NaN/inf, types) runs here, before any weight changes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor


def to_arrays(data: Any, what: str) -> Any:
    """ndarrays in the same structure as ``data`` (lists of numbers become one array)."""
    if data is None:
        return None
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, dict):
        return {k: to_arrays(v, f"{what}[{k!r}]") for k, v in data.items()}
    if isinstance(data, (list, tuple)) and any(
        isinstance(v, (np.ndarray, Tensor)) for v in data
    ):  # one array per input or output; None for an output without a loss (Keras)
        return [to_arrays(v, f"{what}[{i}]") for i, v in enumerate(data)]
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as error:
        raise TypeError(f"Could not convert {what} to an array: {error}") from None
    if array.dtype == object:
        raise TypeError(f"{what} has an unsupported type or ragged shape: {type(data).__name__}.")
    if array.dtype == np.float64:
        array = array.astype(_settings.floatx())
    return array


def leaves(data: Any) -> list[np.ndarray]:
    if data is None:
        return []
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in leaves(v)]
    if isinstance(data, (list, tuple)):
        return [leaf for v in data for leaf in leaves(v)]
    return [data]


def num_samples(x: Any, y: Any = None, sample_weight: Any = None) -> int:
    """The common first-axis length of every array, or a Keras-worded error."""
    sizes = {
        "x": [len(a) if a.ndim else 1 for a in leaves(x)],
        "y": [len(a) if a.ndim else 1 for a in leaves(y)],
        "sample_weight": [len(a) if a.ndim else 1 for a in leaves(sample_weight)],
    }
    every = {s for group in sizes.values() for s in group}
    if len(every) > 1:
        detail = "\n".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items() if v)
        raise ValueError(
            f"Data cardinality is ambiguous. Make sure all arrays contain the same number of "
            f"samples.\n{detail}"
        )
    if not every:
        raise ValueError("No data given: x is None.")
    return every.pop()


def check_batch_axis(x: Any, what: str = "x") -> None:
    """Raise for an input without a batch axis (a scalar), naming it."""
    for array in leaves(x):
        if array.ndim == 0:
            raise ValueError(
                f"{what} must hold a batch of samples (an array whose first axis counts them); "
                f"received a scalar ({array!r})."
            )


def check_finite(x: Any, what: str = "x") -> None:
    """Raise if a floating array (inputs, targets or sample weights) holds NaN or inf: it
    would poison every weight."""
    for array in leaves(x):
        if array.dtype.kind == "f" and not _all_finite(array):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(
                f"{what} contains NaN or inf values (first at index {bad}: "
                f"{float(array[bad])}). Clean or impute the data before training."
            )


def _all_finite(array: np.ndarray) -> bool:
    """Whether every value of a floating ``array`` is finite. Its sum first: NaN or an
    infinity makes it NaN or infinite, and summing makes no temporary, where ``isfinite``
    writes one boolean per value (Fashion-MNIST's 47 million: 7.5 ms against 26 ms, which
    every ``fit`` call paid). Only a sum that is not finite (a NaN, an infinity, or finite
    values whose sum overflows) is checked value by value."""
    accumulate = np.float32 if array.dtype == np.float16 else None  # float16 overflows at 65504
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(array, axis=None, dtype=accumulate)
    return bool(np.isfinite(total)) or bool(np.isfinite(array).all())


def take(data: Any, index: Any) -> Any:
    """Rows ``index`` of every array in ``data``."""
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: take(v, index) for k, v in data.items()}
    if isinstance(data, list):
        return [take(v, index) for v in data]
    if isinstance(index, slice):
        return data[index]
    return data.take(index, axis=0)


def split_validation(x: Any, y: Any, sw: Any, fraction: float) -> tuple:
    """Keras' ``validation_split``: the last ``fraction`` of the samples, before shuffling."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}.")
    n = num_samples(x, y, sw)
    cut = int(math.floor(n * (1.0 - fraction)))
    if cut == 0 or cut == n:
        raise ValueError(
            f"validation_split={fraction} leaves no samples for training or validation "
            f"(got {n} samples)."
        )
    head, tail = slice(0, cut), slice(cut, n)
    return (take(x, head), take(y, head), take(sw, head)), (
        take(x, tail),
        take(y, tail),
        take(sw, tail),
    )


def class_weights_to_sample_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    """Per-sample weights ``class_weight[label]`` (labels as ints or one-hot rows); a class
    the dict does not name weighs 1, as in Keras."""
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"class_weight must be a dict of class index -> weight, got "
            f"{type(class_weight).__name__}."
        )
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(
                f"class_weight keys must be class indices (integers >= 0); got {key!r}."
            )
        if not np.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"class_weight[{key}] must be a finite weight >= 0; got {value!r}.")
    labels = y
    if y.ndim > 1 and y.shape[-1] > 1:
        labels = np.argmax(y, axis=-1)
    elif y.ndim > 1:
        labels = y.reshape(len(y), -1)[:, 0]
        if labels.dtype.kind == "f":
            labels = np.rint(labels)
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(
            f"class_weight needs class indices as labels, but y holds the label "
            f"{int(labels.min())}."
        )
    table = np.ones(int(max(labels.max(initial=0) + 1, max(class_weight, default=0) + 1)))
    for key, value in class_weight.items():
        table[int(key)] = value
    return table[labels].astype(_settings.floatx())
