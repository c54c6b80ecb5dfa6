"""Which rows of a global batch each rank reads (pure functions, no MPI).

``batch_size`` is the global batch, as in Keras' ``DataParallel`` and PyTorch's DDP: a
batch of ``n`` rows is cut into ``size`` contiguous shards whose lengths differ by at
most one (the first ``n % size`` ranks take one more row), so the last partial batch and
batches that do not divide evenly are handled, and the shards in rank order are the batch
in order. A shard may be empty when ``n < size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s rows in a batch of ``n`` rows."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard_sizes(n: int, size: int) -> list[int]:
    """The number of rows of each rank, in rank order (they sum to ``n``)."""
    return [stop - start for start, stop in (shard_bounds(n, r, size) for r in range(size))]


def _rows(data: Any, start: int, stop: int) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _rows(v, start, stop) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_rows(v, start, stop) for v in data)
    if np.ndim(data) == 0:
        return data
    return data[start:stop]


def batch_length(data: Any) -> int:
    """The rows of a packed batch ``(x, ...)``: the first input's length."""
    x = data[0] if isinstance(data, tuple) else data
    while isinstance(x, (dict, list, tuple)):
        if not x:
            return 0
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return len(x) if np.ndim(x) else 1


def shard_batch(data: tuple, rank: int, size: int) -> tuple:
    """Rank ``rank``'s contiguous rows of a packed batch ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` (every array sliced alike)."""
    start, stop = shard_bounds(batch_length(data), rank, size)
    return _rows(data, start, stop)


def shard_index(index: Any, rank: int, size: int) -> Any:
    """Rank ``rank``'s part of one batch's row index (a slice or an index array)."""
    if isinstance(index, slice):
        n = index.stop - index.start
        start, stop = shard_bounds(n, rank, size)
        return slice(index.start + start, index.start + stop)
    start, stop = shard_bounds(len(index), rank, size)
    return index[start:stop]


def _take(data: Any, index: Any) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _take(v, index) for k, v in data.items()}
    if isinstance(data, list):
        return [_take(v, index) for v in data]
    if isinstance(index, slice):
        return data[index]
    return data.take(index, axis=0)


def _pack(x: Any, y: Any, sample_weight: Any) -> tuple:
    if y is None and sample_weight is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


class ShardedIterator:
    """An ``EpochIterator`` seen by one rank: the same numbered batches, each cut down to
    this rank's shard. In-memory arrays are read only at this rank's rows; rank 0 draws
    each epoch's order (as one process would) and broadcasts it, so every rank shuffles
    alike. Batched data (generators, ``PyDataset``) is read whole and then cut."""

    def __init__(self, iterator: Any, comm: Any) -> None:
        self.iterator = iterator
        self.adapter = iterator.adapter
        self.num_batches = iterator.num_batches
        self.comm = comm

    @property
    def ran_out(self) -> bool:
        return self.iterator.ran_out

    def enumerate_epoch(self) -> _ShardedEpoch:
        adapter = self.adapter
        if all(hasattr(adapter, name) for name in ("x", "num_samples", "batch_size", "shuffle")):
            return _ShardedEpoch(enumerate(self._array_batches()), None)
        inner = self.iterator.enumerate_epoch()
        rank, size = self.comm.rank, self.comm.size
        shards = ((step, shard_batch(data, rank, size)) for step, data in inner)
        return _ShardedEpoch(shards, inner)

    def _array_batches(self) -> Any:
        from dendrite import _settings

        adapter, comm = self.adapter, self.comm

        def draw_order(n: int) -> np.ndarray:
            order = _settings.rng().permutation(n) if comm.rank == 0 else np.empty(n, np.int64)
            return comm.broadcast_array(np.ascontiguousarray(order, dtype=np.int64))

        steps = getattr(self.iterator, "steps_per_epoch", None)
        for index in adapter.epoch_indices(steps, draw_order):
            index = shard_index(index, comm.rank, comm.size)
            yield _pack(
                _take(adapter.x, index),
                _take(adapter.y, index),
                _take(adapter.sample_weight, index),
            )


class _ShardedEpoch:
    def __init__(self, numbered: Any, inner: Any) -> None:
        self.numbered = numbered
        self.inner = inner

    def __iter__(self) -> Any:
        return self.numbered

    def __next__(self) -> Any:
        return next(self.numbered)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def __enter__(self) -> _ShardedEpoch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _join(pieces: list) -> Any:
    first = pieces[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in pieces]) for k in first}
    if isinstance(first, (list, tuple)):
        return [np.concatenate([p[i] for p in pieces]) for i in range(len(first))]
    return np.concatenate(pieces)


def gather_predictions(comm: Any, outputs: list) -> list:
    """Every rank's per-batch outputs joined, batch by batch in rank order: the batches
    of the whole data, in order, on every rank."""
    everyone = comm.allgather_object(outputs)
    return [_join([rank_outputs[b] for rank_outputs in everyone]) for b in range(len(outputs))]
