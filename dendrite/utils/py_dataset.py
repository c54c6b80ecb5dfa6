"""``keras.utils.PyDataset``: a dataset written in Python, read batch by batch.

A subclass defines ``__len__`` (the number of batches) and ``__getitem__(index)`` (batch
``index``: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``), and may define
``on_epoch_begin`` / ``on_epoch_end`` (shuffle its files between epochs, say). ``fit``,
``evaluate`` and ``predict`` take it as ``x``; with ``workers > 1`` or
``use_multiprocessing=True`` its batches are prepared ahead of the training step by
background threads or processes (``dendrite.training.data_adapters.py_dataset_adapter``),
and handed over in order.

This is a plain class: it imports nothing from training, so ``utils`` stays below it.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["PyDataset"]


class PyDataset:
    """Base class for datasets prepared in Python, batch by batch (Keras 3's ``PyDataset``).

    Args:
        workers: how many threads (or processes) prepare batches ahead; 1 (the default)
            prepares each batch in the main thread when it is needed, as in Keras.
        use_multiprocessing: prepare batches in worker processes instead of threads (for
            work that holds the GIL); the dataset must then be safe to fork.
        max_queue_size: how many batches may wait, prepared, ahead of the step (10).
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        if not hasattr(self, "_workers"):
            warnings.warn(
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its "
                "constructor. `**kwargs` can include `workers`, `use_multiprocessing`, "
                "`max_queue_size`. Do not pass these arguments to `fit()`, as they will be "
                "ignored.",
                stacklevel=2,
            )
            self._workers = 1
            self._use_multiprocessing = False
            self._max_queue_size = 10

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """Batch ``index``: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
        raise NotImplementedError

    @property
    def num_batches(self) -> int | None:
        """The number of batches of one epoch: ``len(self)``, or None for an endless
        dataset (then ``steps_per_epoch`` says where an epoch ends)."""
        if hasattr(self, "__len__"):
            return len(self)
        return None

    def on_epoch_begin(self) -> None:
        """Called before each epoch's first batch is requested."""

    def on_epoch_end(self) -> None:
        """Called after each epoch, once every batch of it was handed over."""
