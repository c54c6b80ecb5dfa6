"""Atomic file writes: a crash mid-write never leaves a half-written file in place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Any, payload: bytes, overwrite: bool = True) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same directory, flushed
    to disk, then renamed over the target (``os.replace`` is atomic on POSIX and Windows)."""
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists and overwrite=False.")
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
