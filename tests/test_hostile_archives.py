"""Archives that inflate (issue #12): a member is inflated only after what can be checked
without inflating it has been checked -- the zip directory's names and sizes, then the
safetensors header read from the start of the member against the declared size and the
model -- and then streamed with a hard cap of its declared size.

Each hostile file here holds a weights member that would inflate to 1 GB (zeros, deflated
to about 5 MB); the compression-ratio check is lifted for the test, as a file just under
the ratio (65x) with the same header would get past it. Peak memory is measured in-process
with ``tracemalloc`` and must stay far under the inflated size.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks)
from dendrite.saving import ModelLoadError, archive, load_model
from dendrite.saving.checkpoint import read_checkpoint, write_checkpoint
from dendrite.saving.model_file import CONFIG, WEIGHTS, model_document

INFLATED = 1 << 30
PEAK_LIMIT = 50 << 20


def _model() -> tf.Sequential:
    tf.utils.set_random_seed(0)
    return tf.Sequential(
        [tf.layers.Dense(4, activation="relu", input_shape=(3,)), tf.layers.Dense(2)]
    )


def _header(tensors: list[tuple[str, list[int]]]) -> bytes:
    header, offset = {}, 0
    for name, shape in tensors:
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


_ZEROS: dict[int, tuple[bytes, int]] = {}


def _zeros(count: int) -> tuple[bytes, int]:
    """(raw deflate blocks of ``count`` zero bytes, ending in a full flush so they can
    follow any other blocks, ``count``); built once per size."""
    if count not in _ZEROS:
        compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
        chunk, parts, left = bytes(16 << 20), [], count
        while left:
            parts.append(compressor.compress(chunk[: min(left, len(chunk))]))
            left -= min(left, len(chunk))
        parts.append(compressor.flush(zlib.Z_FULL_FLUSH))
        _ZEROS[count] = (b"".join(parts), count)
    return _ZEROS[count]


def _crc_zeros(crc: int, count: int) -> int:
    chunk = bytes(16 << 20)
    while count:
        crc = zlib.crc32(chunk[: min(count, len(chunk))], crc)
        count -= min(count, len(chunk))
    return crc


def _deflate(prefix: bytes, zeros: int = 0) -> tuple[bytes, int, int]:
    """(raw deflate stream, CRC-32, size) of ``prefix`` then ``zeros`` zero bytes."""
    head = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    if zeros:
        data += _zeros(zeros)[0]
    data += zlib.compressobj(1, zlib.DEFLATED, -15).flush()  # the final, empty block
    return data, _crc_zeros(zlib.crc32(prefix), zeros), len(prefix) + zeros


def _write_zip(path, members: dict[str, bytes], bomb_name: str, prefix: bytes, zeros: int):
    """A zip (written by hand, every member deflated, true sizes and CRCs) of ``members``
    plus ``bomb_name``: ``prefix`` then ``zeros`` zero bytes (about 5 MB per GB)."""
    entries = [(name, *_deflate(payload)) for name, payload in members.items()]
    entries.append((bomb_name, *_deflate(prefix, zeros)))
    out, directory = io.BytesIO(), []
    for name, data, crc, size in entries:
        raw = name.encode()
        offset = out.tell()
        out.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw), 0
            )
        )
        out.write(raw + data)
        directory.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
    start = out.tell()
    out.write(b"".join(directory))
    n = len(directory)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())


def _config(model) -> bytes:
    from dendrite.saving.architecture import to_json_bytes

    document, _ = model_document(model, include_optimizer=False)
    return to_json_bytes(document)


def _peak(call) -> tuple[int, Exception | None]:
    tracemalloc.start()
    try:
        call()
        error = None
    except ModelLoadError as caught:
        error = caught
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, error


@pytest.fixture
def no_ratio(monkeypatch):
    monkeypatch.setattr(archive, "MAX_COMPRESSION_RATIO", 1 << 20)


def _cases(model):
    weights = [(f"{i:04d}:{w.path}", list(w.data.shape)) for i, w in enumerate(model.weights)]
    big = INFLATED // 4
    return {
        # The header names one 1 GB tensor; the model has four weights.
        "count": (_header([("0000:dense/kernel", [big])]), 0, "holds 1 weights but"),
        # The right count, but the first weight's shape is 1 GB.
        "shape": (
            _header([(weights[0][0], [big]), *weights[1:]]),
            0,
            "expects shape",
        ),
        # A header that matches the model, then 1 GB the header does not declare.
        "trailing": (_header(weights), 1, "trailing or missing bytes"),
    }


@pytest.mark.parametrize("case", ["count", "shape", "trailing"])
def test_model_file_refused_before_inflating(tmp_path, no_ratio, case):
    model = _model()
    header, extra, message = _cases(model)[case]
    declared = json.loads(header[8:])
    data = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in declared.values())
    zeros = data if not extra else data + INFLATED
    path = tmp_path / "bomb.dendrite"
    _write_zip(path, {CONFIG: _config(model)}, WEIGHTS, header, zeros)
    peak, error = _peak(lambda: load_model(path))
    assert error is not None, "the hostile file loaded"
    assert message in str(error)
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB while refusing"


def test_load_weights_from_model_file_refused_before_inflating(tmp_path, no_ratio):
    model = _model()
    header, _, _ = _cases(model)["count"]
    path = tmp_path / "bomb.dendrite"
    _write_zip(path, {CONFIG: _config(model)}, WEIGHTS, header, INFLATED)
    peak, error = _peak(lambda: model.load_weights(path))
    assert error is not None and "holds 1 weights but" in str(error)
    assert peak < PEAK_LIMIT


def test_checkpoint_refused_before_inflating(tmp_path, no_ratio):
    model = _model()
    model.compile("sgd", "mse")
    write_checkpoint(model, tmp_path / "ok.ckpt", {"epoch": 0})
    with zipfile.ZipFile(tmp_path / "ok.ckpt") as good:
        state = good.read("checkpoint.json")
    header, _, _ = _cases(model)["count"]
    path = tmp_path / "bomb.ckpt"
    _write_zip(path, {"checkpoint.json": state}, WEIGHTS, header, INFLATED)
    peak, error = _peak(lambda: read_checkpoint(model, path))
    assert error is not None and "holds 1 weights but" in str(error)
    assert peak < PEAK_LIMIT


def test_member_streams_with_a_cap(tmp_path):
    """A member whose deflate stream holds more than its declared size is refused; reading
    never goes past the declared size."""
    model = _model()
    model.save(tmp_path / "ok.dendrite")
    with zipfile.ZipFile(tmp_path / "ok.dendrite") as good:
        members = {name: good.read(name) for name in good.namelist()}
    payload = members.pop(WEIGHTS)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
        out.writestr(WEIGHTS, payload + bytes(4096), zipfile.ZIP_DEFLATED)
    raw = bytearray(buffer.getvalue())
    # Shrink the declared size (local header and central directory) to the real payload's.
    declared = struct.pack("<I", len(payload) + 4096)
    for at in [i for i in range(len(raw) - 3) if raw[i : i + 4] == declared]:
        raw[at : at + 4] = struct.pack("<I", len(payload))
    path = tmp_path / "long.dendrite"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="CRC|more than"):
        load_model(path)


def test_valid_files_still_load(tmp_path):
    model = _model()
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    model.save(tmp_path / "ok.dendrite")
    loaded = load_model(tmp_path / "ok.dendrite")
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.data, b.data)
    write_checkpoint(model, tmp_path / "ok.ckpt", {"epoch": 1})
    assert read_checkpoint(model, tmp_path / "ok.ckpt")["epoch"] == 1


@pytest.mark.parametrize("case", ["count", "shape"])
def test_optimizer_member_refused_before_inflating(tmp_path, no_ratio, case):
    """The optimizer state's header is checked against the rebuilt optimizer before its
    member is inflated, in model files and in checkpoints."""
    from dendrite.saving.model_file import OPTIMIZER

    model = _model()
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    model.save(tmp_path / "ok.dendrite")
    write_checkpoint(model, tmp_path / "ok.ckpt", {"epoch": 0})
    big = INFLATED // 4
    variables = model.optimizer.variables
    names = [f"{i:04d}:{v.path}" for i, v in enumerate(variables)]
    if case == "count":
        header, message = _header([(names[0], [big])]), "holds 1 weights but"
    else:  # the true names and dtypes, the last slot 1 GB
        entries, offset = {}, 0
        for i, (name, v) in enumerate(zip(names, variables)):
            shape = [big] if i == len(variables) - 1 else list(v.data.shape)
            size = int(np.prod(shape)) * v.data.dtype.itemsize
            kind = {"int64": "I64", "float32": "F32", "float64": "F64"}[v.data.dtype.name]
            entries[name] = {"dtype": kind, "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(entries).encode()
        header, message = struct.pack("<Q", len(text)) + text, "expects shape"
    declared = json.loads(header[8:])
    data = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in declared.values())
    for good_path, loader in [
        (tmp_path / "ok.dendrite", load_model),
        (tmp_path / "ok.ckpt", lambda p: read_checkpoint(model, p)),
    ]:
        with zipfile.ZipFile(good_path) as good:
            small = {n: good.read(n) for n in good.namelist() if n != OPTIMIZER}
        path = tmp_path / f"bomb{good_path.suffix}"
        _write_zip(path, small, OPTIMIZER, header, data)
        peak, error = _peak(lambda p=path, f=loader: f(p))
        assert error is not None, f"the hostile {good_path.suffix} loaded"
        assert message in str(error), str(error)
        assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB while refusing"
