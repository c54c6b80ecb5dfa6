"""``PyDatasetAdapter``: a ``keras.utils.PyDataset`` read by background workers, in order.

With ``workers > 1`` or ``use_multiprocessing=True`` each epoch starts a pool (threads, or
processes forked from this one) that prepares up to ``max_queue_size`` batches ahead of
the training step; the batches are handed over in index order whatever order the workers
finish in. A new pool per epoch means a process worker sees what ``on_epoch_end`` changed
(a reshuffled file list). An error in a worker is raised again in the main process, of the
same type where it can be, naming the batch index; the pool is shut down whenever the
epoch's generator is closed: at the end of the epoch, after ``steps_per_epoch`` batches,
or when the training step raises (Ctrl-C included), since the trainer closes it.

Process workers ignore SIGINT (Ctrl-C reaches the main process, which terminates them)
and send batches back through ``multiprocessing``'s pipes (pickled in memory, never read
from a file).
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import signal
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dendrite import _settings
from dendrite.training.data_adapters._batch import standardize_batch
from dendrite.training.data_adapters.generator_data_adapter import OUT_OF_DATA
from dendrite.utils.py_dataset import PyDataset

__all__ = ["PyDatasetAdapter", "ordered_map"]

# The dataset of this worker process (set by the pool's initializer).
_WORKER_DATASET: Any = None


def _init_worker(dataset: Any) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _get_item(index: int) -> Any:
    return _WORKER_DATASET[index]


def _batch_error(error: BaseException, index: int, source: str) -> BaseException:
    message = f"Error while preparing batch {index} of {source}: {error}"
    try:
        again = type(error)(message)
    except Exception:  # an exception type with another constructor
        again = RuntimeError(message)
    return again


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def ordered_map(
    dataset: Any,
    indices: Iterator[int],
    workers: int,
    use_multiprocessing: bool,
    max_queue_size: int,
    source: str,
) -> Iterator[tuple[int, Any]]:
    """``(index, dataset[index])`` for each index in order, computed ahead by ``workers``
    threads or processes, at most ``max_queue_size`` (at least ``workers``) in flight.

    A generator: closing it (or an exception in its consumer that closes it) cancels what
    is pending and shuts the workers down.
    """
    ahead = max(int(max_queue_size or 1), int(workers), 1)
    submit: Callable[[int], Any]
    if use_multiprocessing:
        pool = _context().Pool(max(int(workers), 1), initializer=_init_worker, initargs=(dataset,))

        def submit(index: int) -> Any:
            return pool.apply_async(_get_item, (index,))

        def result(future: Any) -> Any:
            return future.get()

        def close() -> None:
            pool.terminate()
            pool.join()
    else:
        executor = ThreadPoolExecutor(int(workers), thread_name_prefix="dendrite-pydataset")

        def submit(index: int) -> Any:
            return executor.submit(dataset.__getitem__, index)

        def result(future: Any) -> Any:
            return future.result()

        def close() -> None:
            executor.shutdown(wait=True, cancel_futures=True)

    pending: collections.deque = collections.deque()
    try:
        for index in itertools.islice(indices, ahead):
            pending.append((index, submit(index)))
        while pending:
            index, future = pending.popleft()
            try:
                item = result(future)
            except Exception as error:
                raise _batch_error(error, index, source) from error
            for following in itertools.islice(indices, 1):
                pending.append((following, submit(following)))
            yield index, item
    finally:
        pending.clear()
        close()


class PyDatasetAdapter:
    """One epoch of a ``PyDataset``'s batches, in order (shuffled order of batch indices
    when ``shuffle``, as Keras), prepared ahead by the dataset's workers."""

    def __init__(
        self, dataset: PyDataset, class_weight: dict | None = None, shuffle: bool = False
    ) -> None:
        self.dataset = dataset
        self.class_weight = class_weight
        self.shuffle = shuffle
        self.source = f"the PyDataset {type(dataset).__name__}"
        num = dataset.num_batches
        self.num_batches = None if num is None else int(num)
        self.num_samples = None
        self.ran_out = False
        # (order, next position) of the pass an epoch of `steps` batches left unfinished
        self._unfinished: tuple[list[int] | None, int] | None = None

    def first_batch(self) -> tuple:
        """Batch 0, read in this thread, to build and check the model on."""
        if self.num_batches == 0:
            raise ValueError(f"{self.source} has no batches (its len() is 0).")
        try:
            item = self.dataset[0]
        except Exception as error:
            raise _batch_error(error, 0, self.source) from error
        return standardize_batch(item, 0, self.source, self.class_weight)

    def _epoch_plan(self, steps: int | None) -> tuple[list[int] | None, int, int | None]:
        """``(order, first, stop)``: this epoch takes ``order[first:stop]`` (batch numbers
        ``first, first + 1, ...`` when the length is unknown: ``order`` None, ``stop`` None
        until the dataset says stop). A new pass, or with ``steps`` the rest of the pass
        the previous epoch left (Keras' iterator continues across epochs of
        ``steps_per_epoch``), for at most ``steps`` batches."""
        if steps is None or self._unfinished is None:
            order = None
            if self.num_batches is not None:
                order = list(range(self.num_batches))
                if self.shuffle:
                    order = _settings.rng().permutation(self.num_batches).tolist()
            first = 0
        else:
            order, first = self._unfinished
        self._unfinished = None
        if order is None:
            return None, first, None if steps is None else first + steps
        stop = len(order) if steps is None else min(len(order), first + steps)
        if steps is not None and stop - first < steps:
            warnings.warn(OUT_OF_DATA, stacklevel=4)
        return order, first, stop

    def batches(self, steps: int | None = None) -> Iterator[tuple]:
        """The packed batches of one epoch (at most ``steps`` of them, see
        ``_epoch_plan``)."""
        dataset = self.dataset
        dataset.on_epoch_begin()
        order, first, stop = self._epoch_plan(steps)
        if order is None:
            numbers = itertools.count(first)
            indices: Iterator[int] = (
                numbers if stop is None else itertools.islice(numbers, stop - first)
            )
        else:
            indices = iter(order[first:stop])
        workers, multi = dataset.workers, dataset.use_multiprocessing
        if workers > 1 or (multi and workers > 0):
            items: Iterator = ordered_map(
                dataset, indices, workers, multi, dataset.max_queue_size, self.source
            )
        else:
            items = self._in_this_thread(indices)
        with _closing(items):
            for done, (index, item) in enumerate(items, start=first + 1):
                if steps is not None and (order is None or done < len(order)):
                    # kept before the batch is used, so that an epoch stopped early
                    # resumes after it
                    self._unfinished = (order, done)
                else:
                    self._unfinished = None
                yield standardize_batch(item, index, self.source, self.class_weight)
        dataset.on_epoch_end()

    def _in_this_thread(self, indices: Iterator[int]) -> Iterator[tuple[int, Any]]:
        for index in indices:
            try:
                item = self.dataset[index]
            except Exception as error:
                raise _batch_error(error, index, self.source) from error
            yield index, item


class _closing:
    """``contextlib.closing`` for a generator, without importing contextlib per epoch."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def __enter__(self) -> Any:
        return self.generator

    def __exit__(self, *exc: Any) -> None:
        self.generator.close()
