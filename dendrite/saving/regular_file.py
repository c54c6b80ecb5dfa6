"""Opening a file a stranger named: only a regular file, and never more than its size.

A path can name (directly or through a symlink) ``/dev/zero`` or ``/dev/urandom``, which
never end, a FIFO, whose ``open`` waits forever for a writer, a socket or a directory.
Every loader opens what it reads through ``open_regular``: the path is ``stat``'ed after
resolving symlinks and refused unless it is a regular file, then opened without blocking
and checked again on the open descriptor (so a swap between the two cannot slip a device
in), and ``read_regular`` reads at most the size the file had when it was checked.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from typing import IO, Any

from dendrite.saving.errors import ModelLoadError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a ``st_mode`` names, in words (``"a regular file"``, ``"a FIFO"``, ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def _refuse(path: Any, what: str, mode: int, error: type[ModelLoadError]) -> ModelLoadError:
    resolved = os.path.realpath(path)
    through = f" (through a link to {resolved})" if resolved != os.path.abspath(path) else ""
    return error(
        f"{what} is {kind_of(mode)}{through}, not a regular file: only regular files are loaded."
    )


@contextlib.contextmanager
def open_regular(
    path: Any, what: str | None = None, error: type[ModelLoadError] = ModelLoadError
) -> Iterator[tuple[IO[bytes], int]]:
    """``(binary stream, size in bytes)`` of the regular file at ``path`` (symlinks
    followed); ``error`` naming the path and what it is for anything else."""
    what = what or str(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as failure:
        raise error(f"Cannot read {what}: {failure.strerror or failure}.") from None
    if not stat.S_ISREG(mode):
        raise _refuse(path, what, mode, error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as failure:
        raise error(f"Cannot read {what}: {failure.strerror or failure}.") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise _refuse(path, what, status.st_mode, error)
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        stream = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with stream:
        yield stream, status.st_size


def read_regular(
    path: Any, what: str | None = None, error: type[ModelLoadError] = ModelLoadError
) -> bytes:
    """The bytes of the regular file at ``path``: at most its size when checked, and
    exactly that many (a file that shrinks while being read is refused)."""
    what = what or str(path)
    with open_regular(path, what, error) as (stream, size):
        try:
            payload = stream.read(size)
        except OSError as failure:
            raise error(f"Cannot read {what}: {failure.strerror or failure}.") from None
    if len(payload) != size:
        raise error(f"{what} changed while it was read ({len(payload)} of {size} bytes).")
    return payload
