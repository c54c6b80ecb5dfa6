"""Atomic file writes: a crash mid-write never leaves a half-written file in place.

The bytes go to a temporary file beside the target (same directory, so the same file
system), are flushed and fsync'ed, and the temporary file is then renamed over the target
with ``os.replace`` (atomic on POSIX and Windows); the directory is fsync'ed too, so the
rename itself survives a power cut.

The temporary file is ``.<name>.<host>-<pid>.<8 random>.tmp``: ``<host>`` is a short hash
of the machine's name and ``<pid>`` the writing process. A process killed mid-write
leaves, at worst, such a file; every later write to the same target (and
``remove_stale_temporaries``) deletes the ones whose writer is gone: same machine and no
such process, or older than ``STALE_AFTER_S``. A temporary of a live writer (another
process or thread, or another machine sharing the directory) is never touched, nor any
file not named exactly so for that target.

The saved file gets the mode any file the user creates gets (``0666`` less the umask: the
temporary is created with that mode, the kernel applies the umask), and an overwrite keeps
the existing file's mode.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# A temporary whose writer cannot be checked (another machine, an older dendrite's name
# without a writer) is stale only after this long untouched.
STALE_AFTER_S = 3600.0
_HOST = f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"
# What follows ``.<name>.`` in a temporary's name: ``<host>-<pid>.<random>`` (this module)
# or ``<random>`` alone (tempfile.mkstemp, dendrite before the writer was named).
_MIDDLE = re.compile(r"(?:([0-9a-f]{8})-([0-9]{1,10})\.)?[a-z0-9_]{8}")


def _temporary_name(target: Path) -> str:
    return f".{target.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _create_temporary(target: Path, directory: Path) -> tuple[int, Path]:
    """A new temporary beside ``target``, opened for writing, created with mode 0666 (the
    kernel applies the umask, as for any file the user creates)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = directory / _temporary_name(target)
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"Cannot create a temporary file beside {target}.")


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError, ValueError):
        return True  # exists (another user's), or cannot tell: keep it
    return True


def _is_stale(name: str, prefix: str, directory: Path) -> bool:
    if not (name.startswith(prefix) and name.endswith(".tmp")):
        return False
    match = _MIDDLE.fullmatch(name[len(prefix) : -len(".tmp")])
    if match is None:
        return False
    try:
        status = os.lstat(directory / name)
    except OSError:
        return False
    if not stat.S_ISREG(status.st_mode):
        return False
    host, pid = match.group(1), match.group(2)
    if host == _HOST and not _writer_alive(int(pid)):
        return True
    return time.time() - status.st_mtime > STALE_AFTER_S


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
    remove_stale_temporaries(target)
    handle, temporary = _create_temporary(target, directory)
    with contextlib.suppress(OSError):  # no target yet, or a file system without modes
        mode = stat.S_IMODE(os.stat(target).st_mode)  # an overwrite keeps the file's mode
        os.chmod(handle if os.chmod in os.supports_fd else temporary, mode)
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
    """Delete the temporary files that killed writes to ``path`` left beside it (see the
    module docstring: only regular files named as this module names them for ``path``,
    whose writer is gone); returns how many were removed."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    try:
        names = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return 0
    removed = 0
    for name in names:
        if _is_stale(name, prefix, directory):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
                removed += 1
    return removed
