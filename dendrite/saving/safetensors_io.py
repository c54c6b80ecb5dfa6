"""safetensors bytes, checked before any parser or allocation trusts them.

The format: 8 bytes (little-endian unsigned length ``n``), ``n`` bytes of JSON mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional
``"__metadata__"`` of strings), then the data. ``parse_header`` checks the length against
the payload, the JSON (size, depth, duplicate names), every dtype and shape, and that the
offsets tile the data exactly (no holes, no overlaps, nothing past the end, and
``end - begin == prod(shape) * itemsize``), so a 10 kB file can never claim 10 GB. Only
then are the bytes handed to the safetensors library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrite.saving.errors import ModelLoadError
from dendrite.saving.safe_json import loads_checked

DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}

MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_RANK = 32
MAX_NAME_LENGTH = 4096


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checked header: its name, dtype, shape and byte range."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_header(
    payload: bytes, what: str, declared_size: int | None = None
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """The tensors (in file order) and metadata of safetensors bytes, all checked.

    With ``declared_size`` (the size a zip directory declares for the whole member),
    ``payload`` may be only its start, 8 bytes and the header: the tensors must then tile
    exactly ``declared_size - 8 - header length`` bytes of data, so the member's size is
    checked against its header before any of its data is inflated.
    """
    total = len(payload) if declared_size is None else declared_size
    if total < 8:
        raise ModelLoadError(
            f"{what} is not a safetensors file: {total} bytes is shorter than the "
            f"8-byte header length."
        )
    length = int.from_bytes(payload[:8], "little")
    available = total - 8
    if length > available:
        raise ModelLoadError(
            f"{what}: the header claims {length} bytes but only {available} bytes follow; "
            f"the file is truncated or not a safetensors file."
        )
    if length > MAX_HEADER_BYTES:
        raise ModelLoadError(f"{what}: the header of {length} bytes exceeds {MAX_HEADER_BYTES}.")
    if len(payload) < 8 + length:
        raise ModelLoadError(
            f"{what}: the header claims {length} bytes but only {len(payload) - 8} could be "
            f"read; the file is truncated."
        )
    header = loads_checked(payload[8 : 8 + length], f"{what} (header)", max_depth=4)
    if not isinstance(header, dict):
        raise ModelLoadError(f"{what}: the header must be a JSON object, got {_kind(header)}.")
    data_length = available - length
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelLoadError(f"{what}: __metadata__ must map strings to strings.")
    tensors = {name: _tensor_info(name, entry, data_length, what) for name, entry in header.items()}
    position = 0
    for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if info.begin != position:
            problem = "overlaps another tensor" if info.begin < position else "leaves a gap"
            raise ModelLoadError(
                f"{what}: tensor {info.name!r} starts at byte {info.begin} and {problem} "
                f"(expected {position})."
            )
        position = info.end
    if position != data_length:
        raise ModelLoadError(
            f"{what}: the tensors cover {position} bytes of the {data_length}-byte data "
            f"section; the file has trailing or missing bytes."
        )
    return tensors, metadata


def _tensor_info(name: str, entry: Any, data_length: int, what: str) -> TensorInfo:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ModelLoadError(f"{what}: a tensor name is empty or longer than {MAX_NAME_LENGTH}.")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelLoadError(
            f"{what}: tensor {name!r} must be an object with exactly 'dtype', 'shape' and "
            f"'data_offsets'; got {_kind(entry)}."
        )
    dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise ModelLoadError(
            f"{what}: tensor {name!r} has dtype {entry['dtype']!r}; supported: {', '.join(DTYPES)}."
        )
    shape = entry["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(_is_int(s) and 0 <= s for s in shape)
    ):
        raise ModelLoadError(
            f"{what}: tensor {name!r} has shape {shape!r}; a shape is a list of at most "
            f"{MAX_RANK} non-negative integers."
        )
    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_int, offsets)):
        raise ModelLoadError(
            f"{what}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]."
        )
    begin, end = offsets
    if not 0 <= begin <= end <= data_length:
        raise ModelLoadError(
            f"{what}: tensor {name!r} claims bytes {begin}..{end} but the data section has "
            f"only {data_length} bytes."
        )
    needed = math.prod(shape) * dtype.itemsize
    if end - begin != needed:
        raise ModelLoadError(
            f"{what}: tensor {name!r} of shape {tuple(shape)} and dtype {entry['dtype']} "
            f"needs {needed} bytes but its offsets span {end - begin}."
        )
    return TensorInfo(name, dtype, tuple(shape), begin, end)


def read_tensors(payload: bytes, what: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Checked tensors and metadata from safetensors bytes (``ModelLoadError`` otherwise)."""
    infos, metadata = parse_header(payload, what)
    from safetensors.numpy import load

    try:
        tensors = load(bytes(payload))
    except Exception as error:  # the parser raises several types for corrupt input
        raise ModelLoadError(f"{what} is not a valid safetensors file: {error}") from None
    if set(tensors) != set(infos):
        raise ModelLoadError(f"{what}: the tensors read do not match the header.")
    for name, info in infos.items():
        array = tensors[name]
        if array.shape != info.shape or array.dtype != info.dtype:
            raise ModelLoadError(f"{what}: tensor {name!r} does not match its header entry.")
    return {name: tensors[name] for name in infos}, metadata


def tensors_to_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    """safetensors bytes for ``tensors`` (C-contiguous copies where needed)."""
    from safetensors.numpy import save

    arrays = {}
    for name, array in tensors.items():
        array = np.asarray(array)
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            array = np.ascontiguousarray(array).reshape(array.shape)
        if array.dtype not in DTYPE_CODES:
            raise ValueError(f"Cannot save tensor {name!r} of dtype {array.dtype}.")
        arrays[name] = array
    return save(arrays, metadata=metadata)


def _kind(value: Any) -> str:
    return type(value).__name__
