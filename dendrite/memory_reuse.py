"""Reused memory for the arrays of dendrite's loops (fit, evaluate, predict).

Every training step allocates the same large temporaries again (a recurrence's gate and
state sequences, a kernel gradient, a convolution's windows), and the first write to each
page of a freshly allocated block is a page fault. On the benchmark's LSTM the step's
element-wise kernels ran 2-3 times slower in the loop than on reused arrays.

So while a loop runs, NumPy allocates through dendrite's allocator (csrc/reuse.c, NumPy's
NEP 49 handler): blocks of 128 KiB and more are kept when freed, by size class, and handed
out again, up to 1 GiB; when the last loop ends they go back to the system. The allocator
is set only in the loop's own context (a context variable of NumPy), so arrays the program
allocates elsewhere, or in other threads, use NumPy's own. Arrays are unchanged: only
where their memory comes from.

Off with ``DENDRITE_REUSE_MEMORY=0`` or ``set_enabled(False)``, and without the C kernels.

Beside it, ``_settings.keep_freed_memory()`` (glibc's ``mallopt``, process-wide, applied
when ``fit`` starts) keeps freed memory in the heap for everything else: blocks allocated
outside the loops (``train_on_batch``, a custom ``GradientTape`` loop), in other threads,
or without the C kernels. Inside a loop this allocator adds exact reuse by size class and
64-byte alignment: on top of it, the LSTM primitive ran 9% faster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from dendrite import _native

_enabled = os.environ.get("DENDRITE_REUSE_MEMORY", "1") != "0"


def available() -> bool:
    """Whether the allocator was built (it comes with the C kernels)."""
    return _native.kernels is not None and hasattr(_native.kernels, "reuse_begin")


def enabled() -> bool:
    """Whether loops reuse memory from now on."""
    return _enabled and available()


def set_enabled(flag: bool) -> None:
    """Turn the reuse of memory in loops on or off (for loops that start afterwards)."""
    global _enabled
    _enabled = bool(flag)


@contextlib.contextmanager
def reusing() -> Iterator[None]:
    """Arrays allocated in this context inside the block use the reusing allocator;
    nested blocks (a validation inside ``fit``) share the kept blocks."""
    if not enabled():
        yield
        return
    kernels = _native.kernels
    previous = None
    try:
        # Inside the try, so that an interrupt right after it cannot leave it unpaired.
        previous = kernels.reuse_begin()
        yield
    finally:
        if previous is not None:
            kernels.reuse_end(previous)


def stats() -> dict[str, int]:
    """Bytes kept now, allocations served from kept blocks, and allocations of a reusable
    size that found none (since the process started)."""
    if not available():
        return {"kept_bytes": 0, "reused": 0, "fresh": 0}
    kept, reused, fresh = _native.kernels.reuse_stats()
    return {"kept_bytes": kept, "reused": reused, "fresh": fresh}
