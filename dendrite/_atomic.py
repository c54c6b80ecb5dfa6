"""Atomic file writes: a crash mid-write never leaves a half-written file in place.

The bytes go to a temporary file beside the target (same directory, so the same file
system), are flushed and fsync'ed, and the temporary file is then renamed over the target
with ``os.replace`` (atomic on POSIX and Windows); the directory is fsync'ed too, so the
rename itself survives a power cut. A process killed mid-write leaves the previous file
intact and, at worst, a stray ``.<name>.*.tmp`` file, which ``remove_stale_temporaries``
clears.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Any, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary stream whose contents replace ``path`` atomically when the block ends
    without an exception (on an exception the target is left untouched)."""
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} exists and overwrite=False.")
    if target.is_dir():
        raise IsADirectoryError(f"Cannot write to {target}: it is a directory.")
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path: Any, payload: bytes, overwrite: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (see the module docstring)."""
    with atomic_writer(path, overwrite=overwrite) as stream:
        stream.write(payload)


def remove_stale_temporaries(path: Any) -> int:
    """Delete temporary files left beside ``path`` by writes that were killed; returns
    how many were removed."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    removed = 0
    if not directory.is_dir():
        return 0
    for leftover in directory.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed
