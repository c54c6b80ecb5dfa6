"""The optional compiled kernels (``_kernels.c``) and when an update may use them.

An optimizer's NumPy passes are the reference; a fused kernel does the same operations in
one pass over memory, bit for bit (tested). It is used when it was built (``setup.py``
compiles it when a C compiler is there), ``DENDRITE_NO_KERNELS`` is not set, and every
array of the update is C-contiguous float32 or float64 of one dtype. A large update is
shared with one helper thread (see the C file), which changes no result.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np


def _load() -> ModuleType | None:
    if os.environ.get("DENDRITE_NO_KERNELS"):
        return None
    try:
        from dendrite.optimizers import _kernels
    except ImportError:
        return None
    return _kernels


kernels: ModuleType | None = _load()

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def fusable(variable_data: np.ndarray, *arrays: np.ndarray) -> bool:
    """Whether a kernel may update ``variable_data`` in place from ``arrays``."""
    if kernels is None or variable_data.dtype not in _FLOATS:
        return False
    if not (variable_data.flags.c_contiguous and variable_data.flags.writeable):
        return False
    dtype = variable_data.dtype
    return all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)
