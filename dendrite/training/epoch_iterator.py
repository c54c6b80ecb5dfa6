"""One epoch iterator for ``fit``, ``evaluate`` and ``predict`` (Keras 3's ``EpochIterator``).

The loops never touch the user's data directly: a *data adapter* turns it into batches,
and the ``EpochIterator`` numbers them and stops after ``steps_per_epoch``. Each batch is
packed as Keras packs it, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, which is what
``train_step(data)``, ``test_step(data)`` and ``predict_step(data)`` receive.

``ArrayDataAdapter`` (here) serves ndarrays, Tensors, lists and dicts of them, already
checked by ``training.data``; ``training.data_adapters`` serves a ``PyDataset`` (with its
background workers) and generators or iterables of batches, with the same members:
``num_batches`` (None when unknown) and ``batches(steps)``. ``enumerate_epoch`` is a
generator: the trainer closes it, which shuts down the workers of a ``PyDataset`` even
when a step raises or Ctrl-C interrupts it.
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
        adapter: an adapter of batched data (``training.data_adapters``) to use instead of
            arrays; then x, y, sample_weight and batch_size are not used.
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: int = 32,
        steps_per_epoch: int | None = None,
        shuffle: bool = False,
        adapter: Any = None,
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
        if adapter is None:
            adapter = ArrayDataAdapter(x, y, sample_weight, batch_size, shuffle)
        self.adapter = adapter
        total = adapter.num_batches
        if steps_per_epoch is None:
            self.num_batches = total
        else:
            steps = int(steps_per_epoch)
            self.num_batches = steps if total is None else min(steps, total)

    @property
    def ran_out(self) -> bool:
        """Whether a generator ran out of batches (training then stops, as in Keras)."""
        return getattr(self.adapter, "ran_out", False)

    def enumerate_epoch(self) -> _Epoch:
        """``(step, data)`` for each batch of one epoch; use it in a ``with`` block (or call
        ``close()``) so that a ``PyDataset``'s workers stop whatever happens."""
        return _Epoch(self.adapter.batches(self.num_batches))


class _Epoch:
    """One epoch's numbered batches: iterable once, and closable (closing the adapter's
    generator shuts down its workers)."""

    __slots__ = ("batches", "numbered")

    def __init__(self, batches: Iterator[tuple]) -> None:
        self.batches = batches
        self.numbered = enumerate(batches)

    def __iter__(self) -> Iterator[tuple[int, tuple]]:
        return self.numbered

    def __next__(self) -> tuple[int, tuple]:
        return next(self.numbered)

    def close(self) -> None:
        self.batches.close()

    def __enter__(self) -> _Epoch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.batches.close()
