"""The MPI communicator: the few collectives data parallelism needs, over ``mpi4py``.

dendrite has no communication layer of its own: every byte moves through MPI (``mpi4py``
and, with the ``dendrite[mpi]`` extra, the ``mpich`` wheel that brings ``mpiexec``). This
module is the only one that imports ``mpi4py``; the others talk to a ``Communicator``.

A rank that raises an uncaught exception aborts the whole job (``MPI_Abort``), so the
other ranks stop within seconds instead of waiting forever in a collective; ``mpiexec``
likewise ends the job when a rank is killed.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any

import numpy as np

INSTALL_HINT = (
    "Data parallelism runs over MPI and needs mpi4py and an MPI library: "
    "pip install 'dendrite[mpi]' (installs mpi4py and the mpich wheel, which brings "
    "mpiexec)."
)


def import_mpi() -> Any:
    """``mpi4py.MPI``, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:  # no mpi4py, or no MPI library under it
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return MPI


class Communicator:
    """One MPI communicator (``MPI.COMM_WORLD`` by default) and its collectives."""

    def __init__(self, comm: Any = None) -> None:
        mpi = import_mpi()
        self.MPI = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.allreduce_calls = 0  # flat-buffer allreduces so far (tests count them)
        self.allreduce_seconds = 0.0  # time inside allreduce_sum, with timing on

    def time_allreduce(self, on: bool = True) -> None:
        """Opt-in timer (benchmarks): with it on, ``allreduce_seconds`` accumulates the
        wall time spent in ``allreduce_sum``, waiting for the slowest rank included. Off
        (the default), the plain method runs: no cost at all."""
        if not on:
            self.__dict__.pop("allreduce_sum", None)
            return
        untimed = type(self).allreduce_sum.__get__(self)
        clock = time.perf_counter

        def timed(buffer: np.ndarray) -> np.ndarray:
            start = clock()
            try:
                return untimed(buffer)
            finally:
                self.allreduce_seconds += clock() - start

        self.allreduce_sum = timed  # type: ignore[method-assign]

    # --- buffers ----------------------------------------------------------------------
    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        """Sum one contiguous buffer over every rank, in place; returns it."""
        self.allreduce_calls += 1
        if self.size > 1:
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return buffer

    def broadcast_array(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Rank ``root``'s values of a contiguous array, in place on every rank."""
        if self.size > 1:
            self.comm.Bcast(array, root=root)
        return array

    # --- Python objects (small, rare: checks, epochs, predictions) ----------------------
    def broadcast_object(self, value: Any, root: int = 0) -> Any:
        return self.comm.bcast(value, root=root) if self.size > 1 else value

    def allgather_object(self, value: Any) -> list:
        return self.comm.allgather(value) if self.size > 1 else [value]

    def allreduce_max(self, value: int) -> int:
        return self.comm.allreduce(value, op=self.MPI.MAX) if self.size > 1 else value

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


_HOOKED = False


def abort_on_uncaught_exception(comm: Communicator) -> None:
    """Make an uncaught exception on any rank end the whole job (``MPI_Abort``) after
    printing its traceback, as ``python -m mpi4py`` does, so no rank hangs in a collective
    waiting for a rank that is gone."""
    global _HOOKED
    if _HOOKED or comm.size == 1:
        return
    previous = sys.excepthook

    def hook(kind: type, value: BaseException, tb: Any) -> None:
        try:
            previous(kind, value, tb)
        except Exception:  # pragma: no cover - a broken hook must not stop the abort
            traceback.print_exception(kind, value, tb)
        sys.stderr.write(f"dendrite: rank {comm.rank} failed; aborting all ranks.\n")
        sys.stderr.flush()
        time.sleep(0.5)  # let mpiexec forward this rank's traceback before the abort
        comm.abort(1)

    sys.excepthook = hook
    _HOOKED = True
