"""The model file container: a zip of named members, written atomically, read with care.

Reading checks the archive before inflating anything: only expected member names, each at
most once, no encryption, only stored or deflated members, each member's declared size
under its limit, and a compression ratio no zip bomb gets past. A safetensors member's
header is then read from the start of its stream (``Archive.header``) and checked against
the member's declared size, so a caller can check the tensors against the model before
any data is inflated. Members are streamed in chunks with a hard cap of their declared
size (``Archive.read``), and zipfile's CRC check catches a member that lies about it.
Only a regular file is opened (``regular_file.open_regular``): never a device or a FIFO.
A member recorded as a symbolic link is refused. Layers' assets (``assets/<layer
path>/<file>``) are allowed only where the caller asks for them, with their own bounds
(``layer_state``).
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from typing import Any

from dendrite._atomic import atomic_writer
from dendrite.saving import layer_state
from dendrite.saving.errors import ModelLoadError
from dendrite.saving.regular_file import open_regular
from dendrite.saving.safetensors_io import MAX_HEADER_BYTES, TensorInfo, parse_header

MAX_MEMBERS = 16
MAX_COMPRESSION_RATIO = 100
# Ceiling for any single member; the real bound is the ratio to the file's own size.
MAX_MEMBER_BYTES = 1 << 40
CHUNK_BYTES = 1 << 20
TENSOR_SUFFIX = ".safetensors"


def write_archive(path: Any, members: dict[str, bytes], overwrite: bool = True) -> None:
    """Write ``members`` (name -> bytes) as one zip, atomically. JSON members are
    deflated; tensor members are stored, so they can be read without inflating."""
    with atomic_writer(path, overwrite=overwrite) as stream:
        with zipfile.ZipFile(stream, "w") as archive:
            for name, payload in members.items():
                deflate = name.endswith(".json") or name.startswith(layer_state.ASSETS_PREFIX)
                method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                archive.writestr(info, payload)


def _invalid(what: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"{what} is not a valid dendrite file (a zip archive): {type(error).__name__}: {error}"
    )


class Archive:
    """An open, checked zip: ``archive[name]`` streams a member (capped at its declared
    size), ``archive.header(name)`` reads only a safetensors member's header."""

    def __init__(self, archive: zipfile.ZipFile, infos: list, what: str) -> None:
        self._archive = archive
        self._infos = {info.filename: info for info in infos}
        self._headers: dict[str, tuple[dict[str, TensorInfo], dict[str, str]]] = {}
        self.what = what

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def asset_names(self) -> list[str]:
        """The checked asset members (``assets/...`` files), in the zip's order."""
        return [name for name in self._infos if name.startswith(layer_state.ASSETS_PREFIX)]

    def header(self, name: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
        """The checked header of the safetensors member ``name``, read from the first
        ``8 + header length`` bytes of its stream; the tensors must tile exactly the
        member's declared size. No more of the member is inflated."""
        if name not in self._headers:
            info = self._infos[name]
            what = f"{self.what} ({name})"
            with self._guard(), self._archive.open(info) as stream:
                prefix = _read_capped(stream, min(8, info.file_size), what, name)
                length = int.from_bytes(prefix, "little") if len(prefix) == 8 else 0
                if len(prefix) == 8 and length <= min(MAX_HEADER_BYTES, info.file_size - 8):
                    prefix += _read_capped(stream, length, what, name)
            self._headers[name] = parse_header(prefix, what, declared_size=info.file_size)
        return self._headers[name]

    def __getitem__(self, name: str) -> bytes:
        """The bytes of member ``name``: exactly its declared size, read in chunks, never
        past it (a tensor member's header is checked first)."""
        info = self._infos[name]
        if name.endswith(TENSOR_SUFFIX):
            self.header(name)
        with self._guard(), self._archive.open(info) as stream:
            payload = _read_capped(stream, info.file_size, self.what, name, exact=True)
        return payload

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except ModelLoadError:
            raise
        except Exception as error:  # BadZipFile, EOFError, zlib.error, OSError
            raise _invalid(self.what, error) from None


def _read_capped(stream: Any, size: int, what: str, name: str, exact: bool = False) -> bytes:
    """Exactly ``size`` bytes from ``stream`` in chunks of at most ``CHUNK_BYTES``; with
    ``exact``, the stream must end there (one more byte is refused, never read on)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        chunk = stream.read(min(CHUNK_BYTES, size - got))
        if not chunk:
            break
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    view.release()
    if got != size or (exact and stream.read(1)):
        more = "more than" if got == size else f"{got} bytes, not"
        raise ModelLoadError(f"{what}: the member {name!r} holds {more} the {size} it declares.")
    return bytes(buffer)


@contextlib.contextmanager
def open_archive(
    path: Any,
    limits: dict[str, int],
    required: tuple[str, ...],
    what: str | None = None,
    assets: bool = False,
) -> Iterator[Archive]:
    """The zip at ``path``, open, its directory checked (see ``read_archive``); members are
    inflated only when asked for. With ``assets``, layers' files under ``assets/`` are
    allowed too (``layer_state.check_asset_name``: plain relative paths, at most
    ``MAX_ASSET_FILES`` of them and ``MAX_ASSET_BYTES`` together); directory entries there
    are skipped."""
    what = what or str(path)
    with open_regular(path, what) as (stream, file_size):
        try:
            archive = zipfile.ZipFile(stream)
        except Exception as error:  # BadZipFile, EOFError, NotImplementedError, OSError
            raise _invalid(what, error) from None
        with archive:
            infos = archive.infolist()
            infos = _check_infos(infos, limits, required, file_size, what, assets)
            yield Archive(archive, infos, what)


def read_archive(
    path: Any, limits: dict[str, int], required: tuple[str, ...], what: str | None = None
) -> dict[str, bytes]:
    """The members of the zip at ``path``, every one checked: the directory first, then
    every safetensors header, and only then any member's data.

    Args:
        limits: allowed member name -> maximum uncompressed size in bytes.
        required: names that must be present.
        what: how to name the file in errors (default: its path).
    """
    with open_archive(path, limits, required, what) as archive:
        for name in archive:
            if name.endswith(TENSOR_SUFFIX):
                archive.header(name)
        return {name: archive[name] for name in archive}


def _check_infos(
    infos: list,
    limits: dict[str, int],
    required: tuple[str, ...],
    file_size: int,
    what: str,
    assets: bool = False,
) -> list:
    """Check the zip directory (see the module docstring); returns the members to use
    (the directory entries under ``assets/`` left out)."""

    def is_asset(name: str) -> bool:
        return assets and name.startswith(layer_state.ASSETS_PREFIX)

    asset_infos = [info for info in infos if is_asset(info.filename)]
    others = len(infos) - len(asset_infos)
    if others > MAX_MEMBERS:
        raise ModelLoadError(f"{what} holds {others} members; at most {MAX_MEMBERS} expected.")
    if len(asset_infos) > layer_state.MAX_ASSET_FILES:
        raise ModelLoadError(
            f"{what} holds {len(asset_infos)} assets; at most {layer_state.MAX_ASSET_FILES} "
            f"are read."
        )
    asset_bytes = sum(info.file_size for info in asset_infos)
    if asset_bytes > layer_state.MAX_ASSET_BYTES:
        raise ModelLoadError(
            f"{what}: its assets declare {asset_bytes} bytes; the limit is "
            f"{layer_state.MAX_ASSET_BYTES}."
        )
    seen: set[str] = set()
    kept = []
    for info in infos:
        name = info.filename
        if name in seen:
            raise ModelLoadError(f"{what}: the member {name!r} appears twice.")
        seen.add(name)
        if layer_state.is_link(info):
            raise ModelLoadError(f"{what}: the member {name!r} is a symbolic link.")
        if is_asset(name) and name.endswith("/") and info.file_size == 0:
            if name != layer_state.ASSETS_PREFIX:
                layer_state.check_asset_name(name[:-1], what)
            continue  # a directory entry
        if is_asset(name):
            layer_state.check_asset_name(name, what)
        elif name not in limits:
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
        limit = min(limits.get(name, layer_state.MAX_ASSET_BYTES), MAX_MEMBER_BYTES)
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
        kept.append(info)
    missing = [name for name in required if name not in seen]
    if missing:
        raise ModelLoadError(f"{what} lacks {', '.join(missing)}: not a complete dendrite file.")
    return kept
