"""Safe extraction of tar (plain, gzip, bzip2, xz) and zip archives, for ``get_file``.

An archive from the network is hostile until checked. Before anything is written, every
member is checked and the whole archive is refused (ValueError naming the member) when one

- has an absolute name, a drive letter, or a name whose ``..`` parts leave the target
  directory (zip-slip);
- is a symbolic link whose target, read from the link's own directory, leaves the target
  directory, or a hard link to a name outside it;
- is a device, a FIFO or another special file;
- would make the archive's declared total exceed ``max_bytes`` (default
  ``DENDRITE_MAX_EXTRACT_BYTES``, 64 GiB) or the free space on the target's disk, or the
  member count exceed ``MAX_MEMBERS``.

The members are then written into a fresh temporary directory beside the target, checking
each real path again as the disk now stands (a link extracted earlier may redirect a later
name), and streaming each file up to its declared size only; the temporary directory
replaces the target by a rename when every member is in. A refused or failed extraction
leaves the target as it was. Files get mode 0644 (0755 when executable), never setuid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from typing import Any

MAX_MEMBERS = 1_000_000
_CHUNK = 1 << 20


def max_extract_bytes() -> int:
    """The most bytes one archive may extract to (``DENDRITE_MAX_EXTRACT_BYTES``)."""
    raw = os.environ.get("DENDRITE_MAX_EXTRACT_BYTES", "")
    if not raw:
        return 64 << 30
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"DENDRITE_MAX_EXTRACT_BYTES must be a positive integer, got {raw!r}.")
    return value


def _inside(path: str, base: str) -> bool:
    try:
        return os.path.commonpath([path, base]) == base
    except ValueError:  # different drives
        return False


def _lexical_target(base: str, name: str) -> str | None:
    """``name`` joined to ``base`` and normalised, or None when it is absolute or leaves
    ``base``."""
    if not name or os.path.isabs(name) or os.path.splitdrive(name)[0] or name.startswith("\\"):
        return None
    target = os.path.normpath(os.path.join(base, name))
    return target if _inside(target, base) else None


def _refuse(archive_path: str, member: str, why: str) -> ValueError:
    return ValueError(f"Refusing to extract {archive_path!r}: member {member!r} {why}.")


def _check_sizes(archive_path: str, count: int, total: int, base: str, max_bytes: int) -> None:
    if count > MAX_MEMBERS:
        raise ValueError(
            f"Refusing to extract {archive_path!r}: {count} members is more than {MAX_MEMBERS}."
        )
    if total > max_bytes:
        raise ValueError(
            f"Refusing to extract {archive_path!r}: its members declare {total} bytes, more "
            f"than the limit of {max_bytes} (DENDRITE_MAX_EXTRACT_BYTES)."
        )
    free = shutil.disk_usage(base).free
    if total > free:
        raise ValueError(
            f"Refusing to extract {archive_path!r}: its members declare {total} bytes and "
            f"only {free} are free on the disk of {base!r}."
        )


def _check_tar(archive_path: str, members: list[tarfile.TarInfo], base: str) -> int:
    total = 0
    for m in members:
        target = _lexical_target(base, m.name)
        if target is None:
            raise _refuse(archive_path, m.name, "has a path outside the target directory")
        if m.issym():
            link = m.linkname
            if os.path.isabs(link) or not _inside(
                os.path.normpath(os.path.join(os.path.dirname(target), link)), base
            ):
                raise _refuse(archive_path, m.name, f"links outside the target ({link!r})")
        elif m.islnk():
            if _lexical_target(base, m.linkname) is None:
                raise _refuse(archive_path, m.name, f"links outside the target ({m.linkname!r})")
        elif not (m.isfile() or m.isdir()):
            raise _refuse(archive_path, m.name, "is a device, FIFO or other special file")
        total += max(int(m.size), 0) if m.isfile() else 0
    return total


def _real_target(archive_path: str, base: str, name: str) -> str:
    """Where ``name`` really lands now (following links already extracted)."""
    target = os.path.realpath(os.path.join(base, name))
    if not _inside(target, base):
        raise _refuse(archive_path, name, "resolves outside the target directory")
    return target


def _copy_stream(source: Any, destination: str, size: int, executable: bool) -> None:
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(destination, flags, 0o755 if executable else 0o644)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left > 0:
            chunk = source.read(min(_CHUNK, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)


def _extract_tar(archive_path: str, archive: tarfile.TarFile, base: str, max_bytes: int) -> None:
    members = archive.getmembers()
    _check_sizes(
        archive_path, len(members), _check_tar(archive_path, members, base), base, max_bytes
    )
    for m in members:
        target = _real_target(archive_path, base, m.name)
        if m.isdir():
            os.makedirs(target, exist_ok=True)
        elif m.issym():
            link_dir = os.path.dirname(target)
            if not _inside(os.path.realpath(os.path.join(link_dir, m.linkname)), base):
                raise _refuse(archive_path, m.name, f"links outside the target ({m.linkname!r})")
            os.makedirs(link_dir, exist_ok=True)
            os.symlink(m.linkname, target)
        elif m.islnk():
            source = _real_target(archive_path, base, m.linkname)
            if not os.path.isfile(source):
                raise _refuse(archive_path, m.name, f"links to a missing file ({m.linkname!r})")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
        else:
            stream = archive.extractfile(m)
            if stream is None:
                raise _refuse(archive_path, m.name, "has no data")
            with stream:
                _copy_stream(stream, target, int(m.size), bool(m.mode & 0o100))


def _extract_zip(archive_path: str, archive: zipfile.ZipFile, base: str, max_bytes: int) -> None:
    infos = archive.infolist()
    total = 0
    for info in infos:
        if _lexical_target(base, info.filename) is None:
            raise _refuse(archive_path, info.filename, "has a path outside the target directory")
        total += info.file_size
    _check_sizes(archive_path, len(infos), total, base, max_bytes)
    for info in infos:
        target = _real_target(archive_path, base, info.filename)
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        executable = bool((info.external_attr >> 16) & 0o100)
        # ZipExtFile yields at most file_size bytes and checks the CRC at the end.
        with archive.open(info) as stream:
            _copy_stream(stream, target, info.file_size, executable)


def extract_archive(
    file_path: Any, path: Any = ".", archive_format: Any = "auto", max_bytes: int | None = None
) -> bool:
    """Extract ``file_path`` into the directory ``path`` (see the module docstring).

    Args:
        file_path: the archive.
        path: the directory to fill; replaced as a whole when the extraction succeeds.
        archive_format: "auto" (tar, then zip), "tar", "zip", a list of those, or None.
        max_bytes: the most bytes the members may declare (default
            ``max_extract_bytes()``).

    Returns:
        True when the file was an archive of an allowed format and was extracted; False when
        it matched none (or ``archive_format`` is None or empty).

    Raises:
        ValueError: a hostile or oversized archive (nothing is written).
        NotImplementedError: an unknown format name.
    """
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else archive_format
    if isinstance(formats, str):
        formats = [formats]
    file_path, path = os.fspath(file_path), os.fspath(path)
    limit = max_extract_bytes() if max_bytes is None else int(max_bytes)
    for kind in formats:
        if kind == "tar":
            matches, opener = tarfile.is_tarfile(file_path), tarfile.open
        elif kind == "zip":
            matches, opener = zipfile.is_zipfile(file_path), zipfile.ZipFile
        else:
            raise NotImplementedError(
                f"Unknown archive format {kind!r}: expected 'tar', 'zip', 'auto' or None."
            )
        if matches:
            _extract_into(file_path, path, opener, limit)
            return True
    return False


def _extract_into(file_path: str, path: str, opener: Any, limit: int) -> None:
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(
        prefix=f".{os.path.basename(target)}.", suffix=".extracting", dir=parent
    )
    try:
        base = os.path.realpath(scratch)
        with opener(file_path) as archive:
            if isinstance(archive, zipfile.ZipFile):
                _extract_zip(file_path, archive, base, limit)
            else:
                _extract_tar(file_path, archive, base, limit)
        os.chmod(scratch, 0o755)
        old = None
        if os.path.lexists(target):
            old = tempfile.mkdtemp(
                prefix=f".{os.path.basename(target)}.", suffix=".old", dir=parent
            )
            os.rmdir(old)
            os.replace(target, old)
        os.replace(scratch, target)
        if old is not None:
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(old)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
