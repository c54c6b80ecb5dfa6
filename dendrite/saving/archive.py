"""The model file container: a zip of named members, written atomically, read with care.

Reading checks the archive before inflating anything: only expected member names, each at
most once, no encryption, only stored or deflated members, each member's declared size
under its limit, and a compression ratio no zip bomb gets past. Members are read with a
cap of their declared size, and zipfile's CRC check catches a member that lies about it.
Only a regular file is opened (``regular_file.open_regular``): never a device or a FIFO.
"""

from __future__ import annotations

import zipfile
from typing import Any

from dendrite._atomic import atomic_writer
from dendrite.saving.errors import ModelLoadError
from dendrite.saving.regular_file import open_regular

MAX_MEMBERS = 16
MAX_COMPRESSION_RATIO = 100
# Ceiling for any single member; the real bound is the ratio to the file's own size.
MAX_MEMBER_BYTES = 1 << 40


def write_archive(path: Any, members: dict[str, bytes], overwrite: bool = True) -> None:
    """Write ``members`` (name -> bytes) as one zip, atomically. JSON members are
    deflated; tensor members are stored, so they can be read without inflating."""
    with atomic_writer(path, overwrite=overwrite) as stream:
        with zipfile.ZipFile(stream, "w") as archive:
            for name, payload in members.items():
                method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                archive.writestr(info, payload)


def read_archive(
    path: Any, limits: dict[str, int], required: tuple[str, ...], what: str | None = None
) -> dict[str, bytes]:
    """The members of the zip at ``path``, every one checked.

    Args:
        limits: allowed member name -> maximum uncompressed size in bytes.
        required: names that must be present.
        what: how to name the file in errors (default: its path).
    """
    what = what or str(path)
    with open_regular(path, what) as (stream, file_size):
        try:
            with zipfile.ZipFile(stream) as archive:
                infos = archive.infolist()
                _check_infos(infos, limits, required, file_size, what)
                return {info.filename: _read_member(archive, info, what) for info in infos}
        except ModelLoadError:
            raise
        except Exception as error:  # BadZipFile, EOFError, zlib.error, NotImplementedError
            raise ModelLoadError(
                f"{what} is not a valid dendrite file (a zip archive): "
                f"{type(error).__name__}: {error}"
            ) from None


def _check_infos(
    infos: list, limits: dict[str, int], required: tuple[str, ...], file_size: int, what: str
) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ModelLoadError(f"{what} holds {len(infos)} members; at most {MAX_MEMBERS} expected.")
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if name in seen:
            raise ModelLoadError(f"{what}: the member {name!r} appears twice.")
        seen.add(name)
        if name not in limits:
            raise ModelLoadError(
                f"{what}: unexpected member {name!r}; a dendrite file holds only "
                f"{', '.join(sorted(limits))}."
            )
        if info.flag_bits & 0x1:
            raise ModelLoadError(f"{what}: the member {name!r} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelLoadError(
                f"{what}: the member {name!r} uses compression method {info.compress_type}; "
                f"only stored and deflated members are read."
            )
        limit = min(limits[name], MAX_MEMBER_BYTES)
        if info.file_size > limit:
            raise ModelLoadError(
                f"{what}: the member {name!r} declares {info.file_size} bytes; the limit is "
                f"{limit}."
            )
        if info.compress_size > file_size:
            raise ModelLoadError(
                f"{what}: the member {name!r} claims {info.compress_size} compressed bytes in "
                f"a {file_size}-byte file."
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ModelLoadError(f"{what}: the stored member {name!r} has inconsistent sizes.")
        if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) + 4096:
            raise ModelLoadError(
                f"{what}: the member {name!r} would inflate {info.compress_size} bytes to "
                f"{info.file_size} (more than {MAX_COMPRESSION_RATIO}x): refusing a zip bomb."
            )
    missing = [name for name in required if name not in seen]
    if missing:
        raise ModelLoadError(f"{what} lacks {', '.join(missing)}: not a complete dendrite file.")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    with archive.open(info) as stream:
        payload = stream.read(info.file_size + 1)
    if len(payload) != info.file_size:
        raise ModelLoadError(
            f"{what}: the member {info.filename!r} holds {len(payload)} bytes, not the "
            f"{info.file_size} it declares."
        )
    return payload
