"""Keras 3's ``keras.distribution`` names over MPI: ``DataParallel``, ``set_distribution``,
``distribution()``, ``list_devices``, ``initialize``.

One process per device, as PyTorch's DDP and Horovod: ``mpiexec -n 4 python train.py``
starts four ranks; ``set_distribution(DataParallel())`` makes ``fit``, ``evaluate`` and
``predict`` treat ``batch_size`` as the global batch, split across the ranks. With no
distribution set, the trainer does no extra work at all.

What a ``DataParallel`` fit does (the trainer calls the methods below):

- before the first step: the model is checked to be the same on every rank
  (``state_sync``), then rank 0's weights and optimizer state are broadcast;
- each step: the rank reads its shard of the batch (``sharding``), computes its gradient,
  and the gradients are averaged, weighted by shard size, in one allreduce over one flat
  buffer (``gradients``); every rank takes the same optimizer step;
- each epoch and each evaluation: the metrics' states are summed over the ranks
  (``metric_reduction``), so epoch logs and validation equal one process's; the per-batch
  logs during an epoch are this rank's running values;
- only rank 0 writes (checkpoints, backups, CSV logs, the progress bar): ``is_writer``.

Dropout and other random layers draw different numbers on each rank (their generators are
not synchronised), and ``BatchNormalization`` uses each rank's batch statistics, as Keras'
DataParallel does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from dendrite.distribution import gradients, metric_reduction, sharding, state_sync, threads
from dendrite.distribution.communicator import (
    Communicator,
    abort_on_uncaught_exception,
    import_mpi,
)

_CURRENT: Distribution | None = None

# Set by mpiexec / srun in every rank's environment: (rank, size) variables.
_LAUNCHER_ENV = (
    ("PMI_RANK", "PMI_SIZE"),  # MPICH (hydra), Intel MPI
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
    ("PMIX_RANK", "PMIX_SIZE"),
)


def launched_processes() -> int:
    """How many processes the MPI launcher started (1 when not under mpiexec); read from
    the environment, without importing MPI."""
    for _, size in _LAUNCHER_ENV:
        value = os.environ.get(size)
        if value and value.isdigit():
            return int(value)
    return 1


def list_devices(device_type: str | None = None) -> list[str]:
    """Keras' ``list_devices``: every device of the job, one CPU per rank (``"cpu:0"``,
    ``"cpu:1"``, ...); an empty list for ``"gpu"`` or ``"tpu"``."""
    if device_type is not None and device_type.lower() != "cpu":
        return []
    size = launched_processes()
    if size > 1:
        size = Communicator().size
    return [f"cpu:{i}" for i in range(size)]


def initialize(
    job_addresses: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Keras' ``initialize``: join the multi-process job. Under MPI the launcher
    (``mpiexec``) has already set the job up: this starts MPI and checks that
    ``num_processes`` and ``process_id``, when given, agree with it. ``job_addresses`` is
    for launchers without MPI and must be None here (use a hostfile with mpiexec). Each
    rank limits its BLAS threads to its share of its machine (``threads``)."""
    if job_addresses is not None:
        raise ValueError(
            "dendrite runs multi-process jobs over MPI: start them with mpiexec (with "
            "-hosts or a hostfile for several machines) instead of job_addresses."
        )
    comm = Communicator()
    threads.limit_threads(comm.comm, comm.MPI)
    if num_processes is not None and num_processes != comm.size:
        raise ValueError(f"num_processes={num_processes}, but mpiexec started {comm.size}.")
    if process_id is not None and process_id != comm.rank:
        raise ValueError(f"process_id={process_id}, but this is rank {comm.rank}.")


def distribution() -> Distribution | None:
    """The distribution set with ``set_distribution`` (None: one process)."""
    return _CURRENT


def set_distribution(value: Distribution | None) -> None:
    """Set the global distribution (None: back to one process)."""
    global _CURRENT
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"Expected a Distribution instance, got {type(value).__name__}.")
    _CURRENT = value


def is_writer() -> bool:
    """Whether this process writes files (checkpoints, logs, the progress bar): always
    with one process, only rank 0 under a distribution."""
    return _CURRENT is None or _CURRENT.process_id == 0


def average_gradients(grads_and_vars: Any, weight: float = 1.0) -> list[tuple[Any, Any]]:
    """For a custom loop (``GradientTape``): ``(gradient, variable)`` pairs averaged over
    the ranks in one allreduce, each rank weighted by ``weight`` (pass its shard's number
    of rows to get the global batch's gradient; 1 gives the plain mean). Every rank must
    pass the same variables in the same order; a gradient may be None. Then call
    ``optimizer.apply_gradients`` with the result. With no distribution set, the pairs are
    returned unchanged."""
    pairs = list(grads_and_vars)
    dist = _CURRENT
    if dist is None or not pairs:
        return pairs
    grads, variables = zip(*pairs)
    averager = gradients.GradientAverager(dist.communicator, variables)
    averaged = averager.average(grads, variables, weight)
    return [(g, v) for g, v in zip(averaged, variables) if g is not None]


class Distribution:
    """Keras' base class: how a program is laid out over devices."""

    def __init__(self, device_mesh: Any = None, batch_dim_name: str = "batch") -> None:
        self._device_mesh = device_mesh
        self._batch_dim_name = batch_dim_name

    @property
    def device_mesh(self) -> Any:
        return self._device_mesh

    @property
    def batch_dim_name(self) -> str:
        return self._batch_dim_name

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Make this the global distribution inside a ``with`` block."""
        previous = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(previous)

    def distribute_dataset(self, dataset: Any) -> Any:
        """Keras' hook for datasets; ``fit`` shards batches itself, so it is the identity."""
        return dataset


class DataParallel(Distribution):
    """Data parallelism over ``MPI.COMM_WORLD`` (or ``comm``): every rank holds the whole
    model and trains on its shard of each global batch.

    Args:
        device_mesh, devices: accepted for Keras' signature; one rank is one device.
        auto_shard_dataset: accepted for Keras' signature (batches are always sharded).
        comm: an ``mpi4py`` communicator to use instead of ``COMM_WORLD``.

    Each rank limits its BLAS threads to ``cores // ranks on its machine`` (``threads``,
    shown in the repr; ``DENDRITE_NUM_THREADS`` overrides): see ``threads``.

    Raises ImportError naming ``pip install 'dendrite[mpi]'`` without mpi4py.
    """

    def __init__(
        self,
        device_mesh: Any = None,
        devices: Any = None,
        auto_shard_dataset: bool = True,
        comm: Any = None,
    ) -> None:
        import_mpi()
        super().__init__(device_mesh, "batch")
        self.communicator = Communicator(comm)
        self._devices = devices
        self.auto_shard_dataset = auto_shard_dataset
        self._apply_hook: gradients.AveragingApply | None = None
        abort_on_uncaught_exception(self.communicator)
        # This rank's share of its machine's cores (DENDRITE_NUM_THREADS overrides).
        self.threads = threads.limit_threads(self.communicator.comm, self.communicator.MPI)

    @property
    def num_processes(self) -> int:
        return self.communicator.size

    @property
    def process_id(self) -> int:
        return self.communicator.rank

    def __repr__(self) -> str:
        return f"<DataParallel rank {self.process_id} of {self.num_processes}, {self.threads}>"

    # --- used by the trainer ----------------------------------------------------------
    def distribute_iterator(self, iterator: Any) -> sharding.ShardedIterator:
        """This rank's view of an ``EpochIterator``: its shard of every batch."""
        return sharding.ShardedIterator(iterator, self.communicator)

    def begin_fit(self, model: Any, initial_epoch: int) -> int:
        """Before the first step (after ``on_train_begin``, so a restored backup is what
        is broadcast): check the model, broadcast rank 0's state, install the gradient
        averaging; returns rank 0's initial epoch."""
        comm = self.communicator
        state_sync.check_same_model(comm, model)
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_weights)
        state_sync.broadcast_state(comm, model, optimizer)
        self._apply_hook = gradients.install(comm, optimizer)
        return comm.broadcast_object(initial_epoch)

    def end_fit(self, model: Any) -> None:
        gradients.uninstall(model.optimizer)
        self._apply_hook = None

    def wrap_step(self, step_function: Any, kind: str, model: Any) -> Any:
        """The step run on this rank's shard: it records the shard's size for the gradient
        weighting; an empty shard (a batch smaller than the number of ranks) skips the
        model and, when training, still joins the allreduce and takes the same step."""
        hook = self._apply_hook
        batch_length = sharding.batch_length

        def step(data: Any) -> Any:
            n = batch_length(data)
            if n == 0:
                if kind == "train" and hook is not None:
                    hook.empty_step()
                return model.get_metrics_result()
            if hook is not None:
                hook.shard_size = n
            return step_function(data)

        return step

    def reduce_logs(self, model: Any, logs: dict) -> dict:
        """Logs from the metrics' states summed over the ranks (what one process would
        report), keeping any other entry a custom step returned."""
        from numbers import Number

        metric_reduction.reduce_metric_states(self.communicator, model.metrics)
        logs = dict(logs)
        for key, value in model.get_metrics_result().items():
            logs[key] = float(value) if isinstance(value, Number) else value
        return logs

    def gather_predictions(self, outputs: list) -> list:
        return sharding.gather_predictions(self.communicator, outputs)
