"""One epoch iterator for ``fit``, ``evaluate`` and ``predict`` (Keras 3's ``EpochIterator``).

The loops never touch the user's data directly: a *data adapter* turns it into batches,
and the ``EpochIterator`` numbers them and stops after ``steps_per_epoch``. Each batch is
packed as Keras packs it, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, which is what
``train_step(data)``, ``test_step(data)`` and ``predict_step(data)`` receive.

Today the one adapter is ``ArrayDataAdapter`` (ndarrays, Tensors, lists and dicts of them,
already checked by ``training.data``); generators and ``PyDataset`` plug in as more
adapters with the same two members: ``num_batches`` and ``batches()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from dendrite.training import data as data_utils
from dendrite.utils import pack_x_y_sample_weight


class ArrayDataAdapter:
    """Batches of in-memory arrays: one shuffled index per epoch (when ``shuffle``), slices
    otherwise; the last partial batch is kept, as in Keras.

    Args:
        x, y, sample_weight: checked ndarrays (or lists / dicts of them); y and
            sample_weight may be None.
        batch_size: samples per batch.
        shuffle: draw a new order of the samples at each epoch (``_settings.rng()``).
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: int = 32,
        shuffle: bool = False,
    ) -> None:
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.num_samples = data_utils.num_samples(x, y, sample_weight)
        self.batch_size = batch_size
        self.shuffle = shuffle

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def batches(self, steps: int | None = None) -> Iterator[tuple]:
        """The packed batches of one epoch (at most ``steps`` of them)."""
        x, y, sample_weight = self.x, self.y, self.sample_weight
        take = data_utils.take
        for index in data_utils.batch_indices(
            self.num_samples, self.batch_size, self.shuffle, steps
        ):
            yield pack_x_y_sample_weight(take(x, index), take(y, index), take(sample_weight, index))


class EpochIterator:
    """Numbered batches of one epoch, as many times as there are epochs.

    Args:
        x, y, sample_weight: the data (see ``ArrayDataAdapter``).
        batch_size: samples per batch (Keras' default 32).
        steps_per_epoch: stop each epoch after this many batches (None: all of them).
        shuffle: reshuffle at each epoch.
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: int = 32,
        steps_per_epoch: int | None = None,
        shuffle: bool = False,
    ) -> None:
        if steps_per_epoch is not None and (
            isinstance(steps_per_epoch, bool)
            or not isinstance(steps_per_epoch, (int, np.integer))
            or steps_per_epoch < 1
        ):
            raise ValueError(
                f"steps must be a positive integer (or None for every batch), got "
                f"{steps_per_epoch!r}."
            )
        self.adapter = ArrayDataAdapter(x, y, sample_weight, batch_size, shuffle)
        total = self.adapter.num_batches
        self.num_batches = total if steps_per_epoch is None else min(int(steps_per_epoch), total)

    def enumerate_epoch(self) -> Iterator[tuple[int, tuple]]:
        """``(step, data)`` for each batch of one epoch."""
        return enumerate(self.adapter.batches(self.num_batches))
