"""The strict IDX reader: good files of every type, and each way a file can be wrong."""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc

import numpy as np
import pytest

from dendrite.datasets import IDXFormatError, read_idx

CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """The IDX encoding of ``array`` (given a big-endian or single-byte dtype)."""
    code = CODES[array.dtype] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def sample(dtype: np.dtype, shape=(3, 4, 5)) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        values = rng.standard_normal(shape) * 1e3
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", list(CODES), ids=lambda d: d.name)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_round_trip_every_type(tmp_path, dtype, compress):
    expected = sample(dtype)
    data = idx_bytes(expected)
    file = tmp_path / "data.idx"
    file.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(file)
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=")
    assert got.dtype.isnative
    assert got.flags.writeable


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (2, 1, 3, 2), (0, 28, 28)])
def test_one_to_four_dimensions(tmp_path, shape):
    expected = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    file = tmp_path / "x"
    file.write_bytes(idx_bytes(expected))
    np.testing.assert_array_equal(read_idx(str(file)), expected)


def test_big_endian_values_are_decoded():
    data = header(0x0B, (2,)) + b"\x01\x02\xff\xfe"
    np.testing.assert_array_equal(read_idx(io.BytesIO(data)), [0x0102, -2])


def test_compression_is_detected_by_magic_not_name(tmp_path):
    expected = sample(np.dtype("u1"))
    gz_named_raw = tmp_path / "raw.gz"
    gz_named_raw.write_bytes(idx_bytes(expected))
    raw_named_gz = tmp_path / "compressed.idx"
    raw_named_gz.write_bytes(gzip.compress(idx_bytes(expected)))
    np.testing.assert_array_equal(read_idx(gz_named_raw), expected)
    np.testing.assert_array_equal(read_idx(raw_named_gz), expected)


class NonSeekable(io.RawIOBase):
    """A stream that hands out at most 3 bytes a read and cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(3, len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_file_objects_including_unseekable_short_reads(compress):
    expected = sample(np.dtype(">i4"), (4, 5))
    data = idx_bytes(expected)
    data = gzip.compress(data) if compress else data
    np.testing.assert_array_equal(read_idx(io.BytesIO(data)), expected)
    np.testing.assert_array_equal(read_idx(NonSeekable(data)), expected)


def check_error(tmp_path, data: bytes, *fragments: str, compress: bool = False) -> str:
    """Write ``data`` to a file, and check read_idx's error names it and says ``fragments``."""
    file = tmp_path / "broken-idx1-ubyte"
    file.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError) as info:
        read_idx(file)
    message = str(info.value)
    assert str(file) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_error_is_a_value_error():
    assert issubclass(IDXFormatError, ValueError)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_bad_magic(tmp_path, compress):
    data = b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00"
    check_error(tmp_path, data, "magic", "0x0100", compress=compress)


def test_text_file_is_rejected(tmp_path):
    check_error(tmp_path, b"hello, world\n", "magic")


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_bad_type_code(tmp_path, code):
    check_error(tmp_path, header(code, (1,)) + b"\x00" * 8, f"0x{code:02X}", "type code")


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_bad_number_of_dimensions(tmp_path, ndim):
    data = bytes([0, 0, 0x08, ndim]) + b"\x00\x00\x00\x01" * ndim + b"\x00"
    check_error(tmp_path, data, "dimensions", "1 to 4", f"got {ndim}")


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_truncated_payload(tmp_path, compress):
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-1]
    check_error(tmp_path, data, "truncated", "7840 bytes", "got 7839", compress=compress)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_truncated_header(tmp_path, compress):
    check_error(tmp_path, header(0x08, (10, 28, 28))[:-2], "truncated", compress=compress)
    check_error(tmp_path, b"\x00\x00", "truncated", compress=compress)
    check_error(tmp_path, b"", "truncated", compress=compress)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_trailing_bytes(tmp_path, compress):
    data = idx_bytes(np.zeros((10,), np.uint8)) + b"\x00"
    check_error(tmp_path, data, "trailing", "exactly 10 bytes", compress=compress)


def test_trailing_garbage_after_gzip_stream(tmp_path):
    file = tmp_path / "x.gz"
    file.write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))) + b"garbage")
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(file)


def test_damaged_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(sample(np.dtype("u1"), (20, 28, 28))))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match=str(cut)):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF  # inside the CRC-32 trailer
    bad_crc = tmp_path / "crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(bad_crc)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_huge_claim_is_refused_before_reading(tmp_path, compress):
    data = header(0x0E, (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)) + b"\x00" * 16
    check_error(tmp_path, data, "limit", "refusing", compress=compress)


def test_limit_is_configurable():
    data = idx_bytes(np.zeros((100,), np.uint8))
    with pytest.raises(IDXFormatError, match="100 bytes"):
        read_idx(io.BytesIO(data), max_bytes=99)
    assert read_idx(io.BytesIO(data), max_bytes=100).shape == (100,)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_lying_header_allocates_nothing_big(tmp_path, compress):
    # Claims 1.5 GB (under the 2 GiB limit) but holds 100 bytes.
    data = header(0x08, (1500, 1000, 1000)) + b"\x00" * 100
    file = tmp_path / "liar"
    file.write_bytes(gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="truncated"):
            read_idx(file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
