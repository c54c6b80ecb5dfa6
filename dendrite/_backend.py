"""The array module and global numeric settings.

Everything numeric in dendrite goes through ``xp`` (NumPy today; CuPy could stand in later),
the default float type ``floatx()`` (float32, as in Keras) and one explicit random generator.
"""

from __future__ import annotations

import random

import numpy as np

xp = np

_FLOATX = "float32"
_rng = np.random.default_rng()


def floatx() -> str:
    """The default float dtype name ('float32' unless changed with ``set_floatx``)."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Set the default float dtype: 'float16', 'float32' or 'float64'."""
    global _FLOATX
    if dtype not in ("float16", "float32", "float64"):
        raise ValueError(
            f"Unknown floatx {dtype!r}: expected one of 'float16', 'float32', 'float64'."
        )
    _FLOATX = dtype


def rng() -> np.random.Generator:
    """The generator behind every random draw in dendrite (initializers, dropout, shuffling)."""
    return _rng


def set_seed(seed: int) -> None:
    """Seed dendrite's generator, NumPy's global one and Python's ``random``."""
    global _rng
    _rng = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
