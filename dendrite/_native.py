"""The optional C kernels (``csrc/``, built by ``setup.py`` as the extension
``dendrite._kernels``) and when a NumPy path may hand its work to them.

A NumPy path is always the reference: a kernel does the same operations in one pass over
memory (sharing large jobs with one helper thread) and gives the same bits, which the
tests check. The kernels are used when they were built (a C compiler was there at
install time), ``DENDRITE_NO_KERNELS`` is not set, and every array is C-contiguous, the
float ones float32 or float64 of one dtype.

Under an MPI launcher (``mpiexec``) whose ranks on this host leave each one core, the
kernels start without their helper thread (``kernel_threads`` is then 1), so N ranks do
not oversubscribe the machine; ``DENDRITE_NUM_THREADS`` overrides.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

# Set by MPI launchers in every rank: how many ranks of the job run on this host.
LOCAL_RANKS_ENV = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")
# The C kernels start no helper thread when one of these is "1" (csrc/parallel.c).
THREAD_LIMITS_ENV = ("DENDRITE_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def launcher_local_ranks() -> int:
    """Ranks on this host as the MPI launcher says (1 when not under mpiexec)."""
    for name in LOCAL_RANKS_ENV:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def _helper_limited() -> bool:
    """Whether ranks of an MPI job on this host leave this one a single core: then the
    kernels start no helper thread (``DENDRITE_NUM_THREADS``, when set, decides)."""
    if os.environ.get("DENDRITE_NUM_THREADS"):
        return False
    return (os.cpu_count() or 1) // launcher_local_ranks() < 2


def _load() -> tuple[ModuleType | None, int]:
    """The kernels and their threads (1, or 2 with the helper), as csrc/parallel.c
    decides when the module loads."""
    if os.environ.get("DENDRITE_NO_KERNELS"):
        return None, 0
    limited = _helper_limited()
    if limited:  # read once by parallel_init() while the module loads
        os.environ["DENDRITE_NUM_THREADS"] = "1"
    try:
        from dendrite import _kernels
    except ImportError:
        return None, 0
    finally:
        if limited:
            del os.environ["DENDRITE_NUM_THREADS"]
    one = limited or any(os.environ.get(name) == "1" for name in THREAD_LIMITS_ENV)
    return _kernels, 1 if one or (os.cpu_count() or 1) < 2 else 2


kernels, kernel_threads = _load()

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# The direct convolutions (csrc/depthwise.c's conv_parse_geometry) refuse any size, stride,
# dilation or padding above this: such a layer takes its NumPy path.
GEOMETRY_LIMIT = 1 << 24


def geometry_fits(sizes: tuple, steps: tuple) -> bool:
    """Whether a direct convolution's sizes (n, h, w, c, m, kh, kw, oh, ow) and steps (sh,
    sw, dh, dw, pt, pl) are inside ``GEOMETRY_LIMIT`` (sizes and strides at least 1)."""
    *strides, pt, pl = steps
    return all(1 <= v <= GEOMETRY_LIMIT for v in (*sizes, *strides)) and (
        0 <= pt <= GEOMETRY_LIMIT and 0 <= pl <= GEOMETRY_LIMIT
    )


def usable(*floats: np.ndarray, written: tuple = (), indices: tuple = ()) -> bool:
    """Whether a kernel may read ``floats``, update ``written`` in place and read the uint8
    ``indices`` (pooling winners): all C-contiguous, the float ones (``floats`` and
    ``written``) float32 or float64 of one dtype, the ``written`` ones writeable. Arrays a
    caller allocates for a kernel's output need no check."""
    if kernels is None:
        return False
    arrays = floats + written
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for array in arrays:
        if array.dtype != dtype or not array.flags.c_contiguous:
            return False
    for array in written:
        if not array.flags.writeable:
            return False
    for array in indices:
        if array.dtype != np.uint8 or not array.flags.c_contiguous:
            return False
    return True
