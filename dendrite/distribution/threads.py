"""Each rank's share of its machine's cores: BLAS and kernel threads under MPI.

N ranks on one machine, each running BLAS with as many threads as the machine has cores,
would run N x cores threads and slow each other down. So when a distribution starts
(``DataParallel()`` or ``initialize()``), each rank limits its threads to

    threads = max(1, cores // ranks_on_this_host)

where ``ranks_on_this_host`` comes from MPI's shared-memory split
(``COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)``) and ``cores`` is ``os.cpu_count()``.
``DENDRITE_NUM_THREADS`` overrides the share. With one rank on the host and no override,
nothing is changed.

- BLAS (OpenBLAS, MKL): their own ``set_num_threads``, found among the loaded libraries
  (``dendrite.cpu_threads``), which also times the steps and may use fewer threads when
  fewer are faster.
- dendrite's C kernels use at most one helper thread, decided when they load
  (``dendrite._native``, from the launcher's local rank count): ``kernels`` reports it.

``thread_limits()`` says what was chosen (also in the distribution's repr).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dendrite import cpu_threads
from dendrite.cpu_threads import blas_threads as blas_threads


@dataclass(frozen=True)
class ThreadLimits:
    """What one rank chose: ``threads`` (its share, or ``DENDRITE_NUM_THREADS``), the BLAS
    threads now in force (None when no BLAS library could be reached), the C kernels'
    threads (0 without kernels), the machine's cores and the ranks on it."""

    threads: int
    blas: int | None
    kernels: int
    cores: int
    ranks_on_host: int
    source: str  # "share", "DENDRITE_NUM_THREADS" or "unchanged" (one rank on the host)

    def __str__(self) -> str:
        blas = "?" if self.blas is None else self.blas
        return (
            f"{self.threads} thread(s) (BLAS {blas}, kernels {self.kernels}; "
            f"{self.cores} cores, {self.ranks_on_host} rank(s) on this host, {self.source})"
        )


_CHOSEN: ThreadLimits | None = None


def thread_limits() -> ThreadLimits | None:
    """What the distribution chose for this rank (None before one started)."""
    return _CHOSEN


def ranks_on_host(comm: Any, mpi: Any) -> int:
    """How many ranks of ``comm`` share this rank's memory (its machine)."""
    if comm.Get_size() == 1:
        return 1
    local = comm.Split_type(mpi.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def limit_threads(comm: Any, mpi: Any) -> ThreadLimits:
    """Limit this rank's BLAS threads to its share of the machine (see the module)."""
    global _CHOSEN
    from dendrite import _native

    cores = os.cpu_count() or 1
    local = ranks_on_host(comm, mpi)
    override = os.environ.get("DENDRITE_NUM_THREADS", "")
    if override.isdigit() and int(override) > 0:
        threads, source = int(override), "DENDRITE_NUM_THREADS"
    elif local > 1:
        threads, source = max(1, cores // local), "share"
    else:
        threads, source = 0, "unchanged"
    if threads:
        cpu_threads.set_ceiling(threads, source)
    blas = cpu_threads.blas_threads()
    threads = threads or blas or cores
    _CHOSEN = ThreadLimits(threads, blas, _native.kernel_threads, cores, local, source)
    return _CHOSEN
