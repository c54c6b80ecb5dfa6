"""The global numeric settings: the default float type ``floatx()`` (float32, as in Keras),
the fuzz factor ``epsilon()`` (1e-7) and the one random generator behind every draw.

Arrays are NumPy arrays, made with ``np`` directly: there is no array-module indirection
(a GPU array library would enter as its own backend, not as an alias here).
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
from typing import Any

import numpy as np

_FLOATX = "float32"
_EPSILON = 1e-7
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


def epsilon() -> float:
    """The fuzz factor Keras uses in numeric expressions (1e-7): probabilities are clipped
    to ``[epsilon, 1 - epsilon]`` and denominators kept above it. Read at each use, so
    ``set_epsilon`` takes effect everywhere at once."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by ``epsilon()``."""
    global _EPSILON
    value = float(value)
    if not 0.0 < value < 0.5:
        raise ValueError(f"epsilon must be a small positive number below 0.5, got {value!r}.")
    _EPSILON = value


_IMAGE_DATA_FORMAT = "channels_last"


def image_data_format() -> str:
    """The layout convolution, pooling and reshaping layers assume when they are given no
    ``data_format``: 'channels_last' (Keras' default) or 'channels_first'."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Set the default image layout; layers created afterwards use it."""
    global _IMAGE_DATA_FORMAT
    value = str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            f"The `data_format` argument must be one of {{'channels_first', 'channels_last'}}. "
            f"Received: data_format={data_format!r}"
        )
    _IMAGE_DATA_FORMAT = value


_INTERACTIVE_LOGGING = True


def is_interactive_logging_enabled() -> bool:
    """Whether progress bars and epoch lines are written to stdout (True, the default) or
    sent to Python's ``logging`` at INFO level (False), as Keras' interactive logging."""
    return _INTERACTIVE_LOGGING


def set_interactive_logging(enabled: bool) -> None:
    global _INTERACTIVE_LOGGING
    _INTERACTIVE_LOGGING = bool(enabled)


def _limit_from_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer; received {value!r}.") from None


# Keras' debugging caps on fit's epochs and on the steps of every epoch of fit, evaluate
# and predict (None: no cap); also read from KERAS_MAX_EPOCHS / KERAS_MAX_STEPS_PER_EPOCH.
_MAX_EPOCHS: int | None = _limit_from_env("KERAS_MAX_EPOCHS")
_MAX_STEPS_PER_EPOCH: int | None = _limit_from_env("KERAS_MAX_STEPS_PER_EPOCH")


def max_epochs() -> int | None:
    """The cap on the epochs of any ``fit`` (None: none), Keras' debugging setting."""
    return _MAX_EPOCHS


def set_max_epochs(value: int | None) -> None:
    global _MAX_EPOCHS
    _MAX_EPOCHS = value


def max_steps_per_epoch() -> int | None:
    """The cap on the steps of one epoch of ``fit``, ``evaluate`` and ``predict``."""
    return _MAX_STEPS_PER_EPOCH


def set_max_steps_per_epoch(value: int | None) -> None:
    global _MAX_STEPS_PER_EPOCH
    _MAX_STEPS_PER_EPOCH = value


def rng() -> np.random.Generator:
    """The generator behind every random draw in dendrite (initializers, dropout, shuffling)."""
    return _rng


def set_seed(seed: int) -> None:
    """Seed dendrite's generator, NumPy's global one and Python's ``random``."""
    global _rng
    _rng = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


_KEEPS_FREED_MEMORY: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks up to 32 MiB in the heap (``mallopt``: mmap
    threshold 32 MiB, trim threshold 1 GiB) instead of handing them back to the kernel.

    Training allocates the same large temporaries every step; returned to the kernel, they
    are page-faulted in again at the next allocation (measured: ~3,700 faults and ~17 ms of
    kernel time per step of the Fashion-MNIST CNN, about 1,800 per LSTM step). Applied once
    when ``fit`` starts (never at import: it changes the allocator of the whole host
    process, so only a program that trains gets it), process-wide and once;
    ``DENDRITE_KEEP_FREED_MEMORY=0`` switches it off. Returns whether it applied (False
    off Linux/glibc).
    """
    global _KEEPS_FREED_MEMORY
    if _KEEPS_FREED_MEMORY is None:
        _KEEPS_FREED_MEMORY = _apply_malloc_options()
    return _KEEPS_FREED_MEMORY


def _apply_malloc_options() -> bool:
    if os.environ.get("DENDRITE_KEEP_FREED_MEMORY", "1") == "0" or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    mmap_ok = mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    trim_ok = mallopt(m_trim_threshold, 1 << 30)
    return bool(mmap_ok and trim_ok)


# One layer output may hold at most this many values per sample (64 Mi: 256 MiB in
# float32); ``DENDRITE_MAX_SAMPLE_ELEMENTS`` raises or lowers it.
DEFAULT_MAX_SAMPLE_ELEMENTS = 1 << 26


def max_sample_elements() -> int:
    """The bound on values per sample in any one layer output of a model (models refuse to
    run past it; building and loading never need it, being shape-only). Read at each use."""
    raw = os.environ.get("DENDRITE_MAX_SAMPLE_ELEMENTS")
    if raw is None:
        return DEFAULT_MAX_SAMPLE_ELEMENTS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"DENDRITE_MAX_SAMPLE_ELEMENTS must be a positive integer, got {raw!r}.")
    return value


# Float policies first (the only ones the global policy takes); then the dtypes of layers
# of other values (lookups, hashing, string inputs), as Keras' policies name them.
POLICY_NAMES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
)


class DTypePolicy:
    """The dtypes a layer computes in and keeps its weights in. dendrite computes in the
    dtype of its weights, so ``compute_dtype == variable_dtype`` always."""

    def __init__(self, name: str | None = None) -> None:
        name = floatx() if name is None else str(name)
        if name.startswith("mixed_"):
            raise ValueError(
                f"dendrite has no mixed precision: the dtype policy {name!r} is not supported. "
                f"Use a float policy ('float32', 'float64' or 'float16')."
            )
        if name not in POLICY_NAMES:
            raise ValueError(
                f"Invalid dtype policy {name!r}: expected 'float16', 'float32' or 'float64' "
                f"(or, for a layer of other values, {', '.join(POLICY_NAMES[3:])})."
            )
        self.name = name

    @property
    def compute_dtype(self) -> str:
        return self.name

    @property
    def variable_dtype(self) -> str:
        return self.name

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DTypePolicy:
        return cls(**config)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'
