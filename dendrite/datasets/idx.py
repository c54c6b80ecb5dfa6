"""A strict reader for the IDX format (the file format of MNIST and Fashion-MNIST).

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then exactly ``prod(dims) * itemsize`` bytes of big-endian data in C order. The
reader checks every one of those facts, accepts gzip-compressed files (recognised by their
magic bytes ``1f 8b``, not by their name), and never allocates memory on the word of a header
alone: the payload grows only as real bytes arrive, and headers claiming more than
``max_bytes`` are refused before any payload is read.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["IDXFormatError", "MAX_IDX_BYTES", "read_idx"]

#: Largest payload (in bytes) a header may claim; MNIST's biggest file holds 47 MB.
MAX_IDX_BYTES = 2 * 1024**3

# IDX type code -> big-endian dtype of the payload.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file (or does not hold what a dataset needs)."""


class _Prepended(io.RawIOBase):
    """A read-only stream that yields ``head`` and then the rest of ``stream``.

    Lets the reader sniff the gzip magic on a stream that cannot seek back.
    """

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of file."""
    parts = []
    while n > 0:
        part = stream.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _parse(stream: BinaryIO, name: str, max_bytes: int) -> np.ndarray:
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise IDXFormatError(
            f"{name}: truncated header: expected a 4-byte magic number, got {len(magic)} bytes"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{name}: bad magic number 0x{magic.hex()}: expected two zero bytes first, "
            f"got 0x{magic[:2].hex()} (is this an IDX file?)"
        )
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _DTYPES)
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X}: expected one of {known}")
    if not 1 <= ndim <= 4:
        raise IDXFormatError(f"{name}: bad number of dimensions: expected 1 to 4, got {ndim}")
    raw_dims = _read_exactly(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IDXFormatError(
            f"{name}: truncated header: expected {4 * ndim} bytes of dimensions, "
            f"got {len(raw_dims)}"
        )
    dims = tuple(int.from_bytes(raw_dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = _DTYPES[code]
    # Python ints: the product of four uint32 cannot overflow here.
    expected = math.prod(dims) * dtype.itemsize
    if expected > max_bytes:
        raise IDXFormatError(
            f"{name}: header claims shape {dims} of {dtype.name} = {expected} bytes, more than "
            f"the limit of {max_bytes} bytes; refusing to read it (pass max_bytes= to raise it)"
        )
    # Grow the buffer only as bytes really arrive, so a lying header costs nothing.
    payload = bytearray()
    while len(payload) < expected:
        part = stream.read(min(_CHUNK, expected - len(payload)))
        if not part:
            break
        payload += part
    if len(payload) < expected:
        raise IDXFormatError(
            f"{name}: truncated payload: shape {dims} of {dtype.name} needs {expected} bytes, "
            f"got {len(payload)}"
        )
    if stream.read(1):
        raise IDXFormatError(
            f"{name}: trailing bytes after the payload: expected exactly {expected} bytes "
            f"for shape {dims} of {dtype.name}, got more"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    return array


def read_idx(
    source: str | os.PathLike[str] | BinaryIO, *, max_bytes: int = MAX_IDX_BYTES
) -> np.ndarray:
    """Read one IDX file, raw or gzip-compressed, into a native-endian NumPy array.

    Args:
        source: a path, or a binary file object open for reading (read from its current
            position; it need not be seekable).
        max_bytes: the largest payload a header may claim; larger claims are refused before
            any payload is read.

    Returns:
        A writable array with the file's shape and dtype (uint8, int8, int16, int32, float32
        or float64), in native byte order.

    Raises:
        IDXFormatError: bad magic number, unknown type code, 0 or more than 4 dimensions, a
            payload shorter or longer than the header says, a header claiming more than
            ``max_bytes``, or a damaged gzip stream. The message names the file.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as file:
            return _read_stream(file, name, max_bytes)
    name = str(getattr(source, "name", "<file object>"))
    return _read_stream(source, name, max_bytes)


def _read_stream(file: BinaryIO, name: str, max_bytes: int) -> np.ndarray:
    head = _read_exactly(file, 2)
    if head != _GZIP_MAGIC:
        return _parse(io.BufferedReader(_Prepended(head, file)), name, max_bytes)
    try:
        with gzip.GzipFile(fileobj=_Prepended(head, file), mode="rb") as stream:
            return _parse(stream, name, max_bytes)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IDXFormatError(f"{name}: damaged gzip stream: {exc}") from exc
