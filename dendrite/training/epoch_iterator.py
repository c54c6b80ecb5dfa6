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
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.training import data as data_utils
from dendrite.training.data_adapters.generator_data_adapter import OUT_OF_DATA
from dendrite.utils import pack_x_y_sample_weight


class ArrayDataAdapter:
    """Batches of in-memory arrays: one shuffled order per pass over the data (when
    ``shuffle``), slices otherwise; the last partial batch is kept, as in Keras.

    An epoch of ``steps`` batches (``fit``'s ``steps_per_epoch``, ``validation_steps``)
    continues the pass the previous epoch left, as Keras' iterator does: 10 batches at 4
    steps an epoch give epochs of batches 0-3, 4-7, 8-9 (with Keras' "ran out of data"
    warning), then a new pass. Without ``steps`` every epoch is a whole new pass.

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
        # (order, next batch) of the pass an epoch of `steps` batches left unfinished
        self._unfinished: tuple[np.ndarray | None, int] | None = None

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def epoch_indices(
        self,
        steps: int | None = None,
        draw_order: Callable[[int], np.ndarray] | None = None,
    ) -> Iterator[Any]:
        """Index arrays (slices when not shuffling) of one epoch's batches: a new pass, or
        with ``steps`` the rest of the unfinished one, for at most ``steps`` batches.
        ``draw_order(n)`` gives a new pass' order of the samples (default: the global
        generator's permutation)."""
        if steps is None or self._unfinished is None:
            draw = draw_order or _settings.rng().permutation
            order, first = (draw(self.num_samples) if self.shuffle else None), 0
        else:
            order, first = self._unfinished
        self._unfinished = None
        total, size = self.num_batches, self.batch_size
        last = total if steps is None else min(total, first + steps)
        for step in range(first, last):
            # kept before the batch is used, so that an epoch stopped early resumes after it
            self._unfinished = (order, step + 1) if steps is not None and step + 1 < total else None
            start = step * size
            stop = min(start + size, self.num_samples)
            yield order[start:stop] if order is not None else slice(start, stop)
        if steps is not None and last - first < steps:
            warnings.warn(OUT_OF_DATA, stacklevel=2)

    def batches(self, steps: int | None = None) -> Iterator[tuple]:
        """The packed batches of one epoch (see ``epoch_indices``)."""
        x, y, sample_weight = self.x, self.y, self.sample_weight
        take = data_utils.take
        for index in self.epoch_indices(steps):
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
        cap = _settings.max_steps_per_epoch()  # keras.config.set_max_steps_per_epoch
        if cap and (not steps_per_epoch or cap < steps_per_epoch):
            warnings.warn(f"Limiting steps_per_epoch to {cap}", stacklevel=3)
            steps_per_epoch = cap
        if adapter is None:
            adapter = ArrayDataAdapter(x, y, sample_weight, batch_size, shuffle)
        self.adapter = adapter
        self.steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)
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
        if isinstance(self.adapter, ArrayDataAdapter):
            return _Epoch(self.adapter.batches(self.steps_per_epoch))
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
