"""The optional C kernels (``csrc/``, built by ``setup.py`` as the extension
``dendrite._kernels``) and when a NumPy path may hand its work to them.

A NumPy path is always the reference: a kernel does the same operations in one pass over
memory (sharing large jobs with one helper thread) and gives the same bits, which the
tests check. The kernels are used when they were built (a C compiler was there at
install time), ``DENDRITE_NO_KERNELS`` is not set, and every array is C-contiguous, the
float ones float32 or float64 of one dtype.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np


def _load() -> ModuleType | None:
    if os.environ.get("DENDRITE_NO_KERNELS"):
        return None
    try:
        from dendrite import _kernels
    except ImportError:
        return None
    return _kernels


kernels: ModuleType | None = _load()

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


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
