"""Crafted model files from a stranger: each is refused with one clear ``ModelLoadError``
before anything is built, and nothing in them can make dendrite run code."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks)
from dendrite.saving import ModelLoadError, load_model
from dendrite.saving.checkpoint import read_checkpoint, write_checkpoint
from dendrite.saving.safetensors_io import parse_header


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, bytes]:
    tf.utils.set_random_seed(0)
    model = tf.Sequential(
        [tf.layers.Dense(4, activation="relu", input_shape=(3,)), tf.layers.Dense(2)]
    )
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
    path = tmp_path_factory.mktemp("valid") / "m.dendrite"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(zipfile.ZipInfo(name), payload, compress_type=method)
    return path


def _with_config(valid: dict, edit) -> dict:
    config = json.loads(valid["config.json"])
    edit(config)
    return {**valid, "config.json": json.dumps(config).encode()}


def _layer(config: dict, index: int = 0) -> dict:
    return config["config"]["layers"][index]


def _refused(path: Path, match: str) -> ModelLoadError:
    with pytest.raises(ModelLoadError, match=match) as info:
        load_model(path)
    return info.value


def _header_file(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_valid_fixture_loads(valid, tmp_path):
    assert load_model(_zip(tmp_path / "ok.dendrite", valid)).layers[0].units == 4


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, -10])
def test_truncated_zip(valid, tmp_path, cut):
    whole = _zip(tmp_path / "whole.dendrite", valid).read_bytes()
    size = int(len(whole) * cut) if isinstance(cut, float) else cut
    (tmp_path / "cut.dendrite").write_bytes(whole[:size])
    _refused(tmp_path / "cut.dendrite", "not a valid dendrite file|lacks|truncated")


def test_not_a_zip_and_empty_and_directory(tmp_path):
    (tmp_path / "text.dendrite").write_text("hello")
    _refused(tmp_path / "text.dendrite", "not a valid dendrite file")
    (tmp_path / "empty.dendrite").write_bytes(b"")
    _refused(tmp_path / "empty.dendrite", "not a valid dendrite file")
    (tmp_path / "dir.dendrite").mkdir()
    _refused(tmp_path / "dir.dendrite", "directory")


def test_missing_and_unexpected_members(valid, tmp_path):
    members = {k: v for k, v in valid.items() if k != "model.weights.safetensors"}
    _refused(_zip(tmp_path / "a.dendrite", members), "lacks model.weights.safetensors")
    extra = {**valid, "payload.py": b"import os; os.system('echo pwned')"}
    _refused(_zip(tmp_path / "b.dendrite", extra), "unexpected member 'payload.py'")
    traversal = {**valid, "../../etc/passwd": b"x"}
    _refused(_zip(tmp_path / "c.dendrite", traversal), "unexpected member")


def test_duplicated_member_names(valid, tmp_path):
    path = tmp_path / "dup.dendrite"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in valid.items():
            archive.writestr(name, payload)
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("config.json", b"{}")
    _refused(path, "'config.json' appears twice")


def test_zip_bomb(valid, tmp_path):
    bomb = {**valid, "config.json": b" " * (50 * 1024 * 1024)}  # deflates ~1000x
    _refused(_zip(tmp_path / "bomb.dendrite", bomb), "limit|zip bomb")
    weights = {**valid, "model.weights.safetensors": b"\0" * (20 * 1024 * 1024)}
    _refused(_zip(tmp_path / "bomb2.dendrite", weights), "zip bomb")


def test_member_that_lies_about_its_size(valid, tmp_path):
    path = _zip(tmp_path / "lie.dendrite", valid, method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    # shrink the declared size of config.json in the central directory
    at = data.rfind(b"PK\x01\x02", 0, data.find(b"config.json", len(data) // 2))
    struct.pack_into("<I", data, at + 24, 10)
    path.write_bytes(bytes(data))
    _refused(path, "not a valid dendrite file|inconsistent|holds")


def test_encrypted_flag_and_unknown_compression(valid, tmp_path):
    path = _zip(tmp_path / "enc.dendrite", valid, method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 8, 1)  # general purpose flag: encrypted
    path.write_bytes(bytes(data))
    _refused(path, "encrypted")
    bz = tmp_path / "bz.dendrite"
    _zip(bz, valid, method=zipfile.ZIP_BZIP2)
    _refused(bz, "compression method")


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "must hold a JSON object"),
        (b'{"format": "dendrite.model", "format": "x"}', "appears twice"),
        (b"[" * 5000 + b"]" * 5000, "nests 5000 levels"),
        (b'{"format": "keras"}', "not a dendrite model description"),
    ],
    ids=["syntax", "encoding", "array", "duplicate-key", "deep-nesting", "foreign-format"],
)
def test_broken_config_json(valid, tmp_path, payload, match):
    members = {**valid, "config.json": payload}
    _refused(_zip(tmp_path / "j.dendrite", members, method=zipfile.ZIP_STORED), match)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.update(format_version="1"), "'format_version' has the wrong type"),
        (lambda c: c.update(format_version=99), "format version 99 is not supported"),
        (lambda c: c.update(config=[1, 2]), "'config' has the wrong type"),
        (lambda c: c.update(class_name=7), "'class_name' has the wrong type"),
        (lambda c: c.pop("compile_config"), "lacks 'compile_config'"),
        (lambda c: c.update(surprise=1), "unknown keys"),
        (lambda c: c.update(build_config={"input_shape": "x"}), "build_config"),
        (lambda c: _layer(c).update(config=None), "could not be rebuilt"),
        (lambda c: _layer(c)["config"].update(units="four"), "could not be rebuilt"),
        (lambda c: _layer(c)["config"].update(units=-3), "could not be rebuilt"),
        (lambda c: _layer(c)["config"].update(dtype="U1000000000"), "dtype"),
        (lambda c: _layer(c)["config"].update(dtype="object"), "dtype"),
        (lambda c: c["compile_config"].update(loss=["mse", {"x": 1}]), "loss|malformed"),
        (lambda c: c["compile_config"].update(loss_weights="heavy"), "loss_weights"),
        (lambda c: c["optimizer_state"].update(built_on=[0, 0, 1, 2]), "repeats"),
        (lambda c: c["optimizer_state"].update(built_on=[0, 1, 2, 99]), "indices"),
    ],
)
def test_wrong_json_types_and_values(valid, tmp_path, edit, match):
    _refused(_zip(tmp_path / "t.dendrite", _with_config(valid, edit)), match)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(class_name="os.system"),
        lambda c: _layer(c).update(class_name="os.system"),
        lambda c: _layer(c).update(class_name="subprocess.Popen"),
        lambda c: _layer(c).update(class_name="__builtins__.eval"),
        lambda c: _layer(c)["config"].update(activation="os.system"),
        lambda c: _layer(c)["config"].update(activation="builtins.exec"),
        lambda c: _layer(c)["config"]["kernel_initializer"].update(class_name="os.system"),
        lambda c: c["compile_config"].update(loss="os.system"),
        lambda c: c["compile_config"].update(metrics=["posix.system"]),
        lambda c: c["compile_config"]["optimizer"].update(class_name="os.system"),
        lambda c: _layer(c).update(class_name="__lambda__", config={"code": "YmFk"}),
        lambda c: _layer(c)["config"].update(function_type="lambda"),
    ],
)
def test_config_naming_a_python_callable_is_refused(valid, tmp_path, edit, monkeypatch):
    import os

    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    error = _refused(
        _zip(tmp_path / "evil.dendrite", _with_config(valid, edit)),
        "never loads code|Unknown|register",
    )
    assert "os.system" not in str(error) or "dendrite never loads code" in str(error)
    assert not called


def test_unknown_class_name_says_how_to_register(valid, tmp_path):
    error = _refused(
        _zip(
            tmp_path / "u.dendrite",
            _with_config(valid, lambda c: _layer(c).update(class_name="MyLayer")),
        ),
        "Unknown class 'MyLayer'",
    )
    assert "register_keras_serializable" in str(error) and "custom_objects" in str(error)


def test_architecture_that_would_allocate_huge_tensors(valid, tmp_path):
    def wide(c):
        _layer(c)["config"]["units"] = 4_000_000  # 12M weights from a file holding 26

    _refused(
        _zip(tmp_path / "w.dendrite", _with_config(valid, wide)), "weight values the file holds"
    )

    def huge_input(c):
        _layer(c)["config"]["batch_input_shape"] = [None, 100_000, 100_000]

    _refused(_zip(tmp_path / "h.dendrite", _with_config(valid, huge_input)), "elements per tensor")

    def huge_int(c):
        _layer(c, 1)["config"]["units"] = 10**12

    _refused(_zip(tmp_path / "i.dendrite", _with_config(valid, huge_int)), "larger than this file")


def test_tensor_header_claiming_more_bytes_than_the_file(valid, tmp_path):
    weights = valid["model.weights.safetensors"]
    claimed = struct.pack("<Q", 10**12) + weights[8:]
    _refused(
        _zip(tmp_path / "a.dendrite", {**valid, "model.weights.safetensors": claimed}),
        "claims 1000000000000 bytes",
    )
    header = {
        "0000:dense/kernel": {
            "dtype": "F32",
            "shape": [100000, 100000],
            "data_offsets": [0, 40_000_000_000],
        }
    }
    forged = _header_file(header, b"\0" * 64)
    _refused(
        _zip(tmp_path / "b.dendrite", {**valid, "model.weights.safetensors": forged}),
        "only 64 bytes",
    )


@pytest.mark.parametrize(
    "header, data, match",
    [
        (
            {"0000:a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "needs 8 bytes",
        ),
        (
            {"0000:a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
            b"\0" * 8,
            "leaves a gap",
        ),
        (
            {
                "0000:a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "0001:b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
            "overlaps",
        ),
        ({"0000:a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9, "trailing"),
        ({"0000:a": {"dtype": "O", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "dtype 'O'"),
        ({"0000:a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        ({"0000:a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        (
            {"0000:a": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}},
            b"\0" * 4,
            "data_offsets",
        ),
        ({"0000:a": [1, 2, 3]}, b"", "exactly 'dtype'"),
        ({"__metadata__": {"a": 1}}, b"", "__metadata__"),
        ([], b"", "must be a JSON object"),
    ],
)
def test_malformed_safetensors_headers(valid, tmp_path, header, data, match):
    payload = _header_file(header, data)
    with pytest.raises(ModelLoadError, match=match):
        parse_header(payload, "weights")
    _refused(_zip(tmp_path / "s.dendrite", {**valid, "model.weights.safetensors": payload}), match)


def test_duplicated_tensor_names(valid, tmp_path):
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    text = ('{"0000:a": ' + entry + ', "0000:a": ' + entry + "}").encode()
    payload = struct.pack("<Q", len(text)) + text + b"\0" * 4
    _refused(
        _zip(tmp_path / "d.dendrite", {**valid, "model.weights.safetensors": payload}),
        "appears twice",
    )
    text = ('{"0000:a": ' + entry + ', "0:b": ' + entry.replace("0, 4", "4, 8") + "}").encode()
    payload = struct.pack("<Q", len(text)) + text + b"\0" * 8
    _refused(
        _zip(tmp_path / "e.dendrite", {**valid, "model.weights.safetensors": payload}),
        "same index 0",
    )


def test_weights_that_do_not_match_the_architecture(valid, tmp_path):
    from dendrite.saving.safetensors_io import tensors_to_bytes

    arrays = {"0000:dense/kernel": np.zeros((3, 5), "float32")}
    for i, shape in enumerate([(5,), (5, 2), (2,)], start=1):
        arrays[f"{i:04d}:w{i}"] = np.zeros(shape, "float32")
    members = {**valid, "model.weights.safetensors": tensors_to_bytes(arrays)}
    _refused(_zip(tmp_path / "m.dendrite", members), r"expects shape \(3, 4\).*has shape \(3, 5\)")
    arrays = {
        f"{i:04d}:w": np.zeros(s, "float64") for i, s in enumerate([(3, 4), (4,), (4, 2), (2,)])
    }
    members = {**valid, "model.weights.safetensors": tensors_to_bytes(arrays)}
    _refused(
        _zip(tmp_path / "n.dendrite", members), "is float32, but the file's tensor .* is float64"
    )
    members = {
        **valid,
        "model.weights.safetensors": tensors_to_bytes({"0000:x": np.zeros(1, "float32")}),
    }
    _refused(_zip(tmp_path / "o.dendrite", members), "weight values the file holds")


def test_optimizer_state_that_does_not_match(valid, tmp_path):
    from dendrite.saving.safetensors_io import tensors_to_bytes

    members = {
        **valid,
        "optimizer.safetensors": tensors_to_bytes({"0000:iteration": np.zeros((), "int64")}),
    }
    _refused(_zip(tmp_path / "o.dendrite", members), "optimizer state.*holds 1 weights")
    members = {k: v for k, v in valid.items() if k != "optimizer.safetensors"}
    _refused(_zip(tmp_path / "p.dendrite", members), "optimizer.safetensors is missing")


def test_damaged_checkpoint_is_refused_and_leaves_the_model_unchanged(tmp_path):
    model = tf.Sequential([tf.layers.Dense(3, input_shape=(2,))])
    model.compile("adam", "mse")
    model.fit(np.ones((4, 2), "float32"), np.zeros((4, 3), "float32"), verbose=0)
    path = tmp_path / "latest.checkpoint"
    write_checkpoint(model, path, {"epoch": 1})
    before = model.get_weights()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError):
        read_checkpoint(model, path)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_damaged_byte_anywhere_is_one_clear_error(valid, tmp_path):
    whole = _zip(tmp_path / "w.dendrite", valid, method=zipfile.ZIP_STORED).read_bytes()
    refused = 0
    for position in np.random.default_rng(0).integers(0, len(whole), 40):
        data = bytearray(whole)
        data[position] ^= 0x5A
        (tmp_path / "x.dendrite").write_bytes(bytes(data))
        try:
            load_model(tmp_path / "x.dendrite")  # a byte in an unused zip field may load
        except ModelLoadError:
            refused += 1
    assert refused >= 30  # the CRCs catch damage to every member
