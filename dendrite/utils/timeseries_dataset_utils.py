"""``keras.utils.timeseries_dataset_from_array``: sliding windows over an array.

Returns a ``TimeseriesDataset`` (a ``PyDataset``): batch ``i`` gathers its windows from the
array when asked, so no copy of every window is ever made.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite.utils.py_dataset import PyDataset

__all__ = ["TimeseriesDataset", "timeseries_dataset_from_array"]


class TimeseriesDataset(PyDataset):
    """Windows ``data[start + k * sampling_rate]`` for ``k < sequence_length``, one per
    start index, in batches (with ``targets[start]`` when targets are given)."""

    def __init__(self, data, targets, starts, sequence_length, sampling_rate, batch_size):
        super().__init__()
        self.data, self.targets = data, targets
        self.starts = starts
        self.offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = batch_size

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.starts)
        return math.ceil(len(self.starts) / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        size = 1 if self.batch_size is None else self.batch_size
        starts = self.starts[index * size : (index + 1) * size]
        x = self.data[starts[:, None] + self.offsets]
        y = None if self.targets is None else self.targets[starts]
        if self.batch_size is None:
            x, y = x[0], (None if y is None else y[0])
        return x if y is None else (x, y)

    def __iter__(self) -> Any:
        for index in range(len(self)):
            yield self[index]


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Windows of ``sequence_length`` time steps over ``data`` (Keras 3's arguments).

    ``targets[i]`` goes with the window that starts at ``data[i]``; ``targets=None`` yields
    windows alone. Windows start every ``sequence_stride`` steps from ``start_index`` and
    take every ``sampling_rate``-th step; none reaches past ``end_index``.
    """
    if start_index:
        if start_index < 0:
            raise ValueError(
                f"`start_index` must be 0 or greater. Received: start_index={start_index}"
            )
        if start_index >= len(data):
            raise ValueError(
                "`start_index` must be lower than the length of the data. "
                f"Received: start_index={start_index}, for data of length {len(data)}"
            )
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(
                "`end_index` must be higher than `start_index`. "
                f"Received: start_index={start_index}, and end_index={end_index} "
            )
        if end_index >= len(data):
            raise ValueError(
                "`end_index` must be lower than the length of the data. "
                f"Received: end_index={end_index}, for data of length {len(data)}"
            )
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    for name, value in (
        ("sampling_rate", sampling_rate),
        ("sequence_stride", sequence_stride),
        ("sequence_length", sequence_length),
    ):
        if value <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
        if value >= len(data) and name != "sequence_length":
            raise ValueError(
                f"`{name}` must be lower than the length of the data. "
                f"Received: {name}={value}, for data of length {len(data)}"
            )
    data = np.asarray(data)
    if targets is not None:
        targets = np.asarray(targets)  # may be shorter: windows stop at its end
    start_index = start_index or 0
    end_index = len(data) if end_index is None else end_index
    last = end_index - (sequence_length - 1) * sampling_rate
    starts = np.arange(start_index, max(last, start_index), sequence_stride, dtype=np.int64)
    if targets is not None:
        starts = starts[starts < len(targets)]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1_000_000)
        np.random.RandomState(seed).shuffle(starts)
    return TimeseriesDataset(data, targets, starts, sequence_length, sampling_rate, batch_size)
