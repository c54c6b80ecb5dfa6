"""Fuzzing ``load_model`` with mutated valid files: every case either loads or raises
``ModelLoadError`` -- never another exception, a crash, a hang or a huge allocation.

Mutations act at three levels: raw bytes of the zip, bytes of one member re-zipped with
valid CRCs (so the JSON and safetensors parsers see them), and structural edits of the
config and tensor-header JSON (a value replaced by arbitrary JSON, a key dropped). The
always-on run covers a few hundred cases; the ``slow`` run (which CI runs too) 3,000, so
the whole module stays well under a minute.

The long run is local: ``DENDRITE_FUZZ_EXAMPLES=20000 python -m pytest -q -s
tests/test_fuzz_load.py -k many`` sets the ``slow`` run's case count (no deadline, about
5 ms a case: 20,000 take a couple of minutes).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks)
from dendrite.saving import ModelLoadError, load_model

MEMBERS = ("config.json", "model.weights.safetensors", "optimizer.safetensors")
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["os.system", "Dense", "relu", "F32", "__lambda__", "float64", "I64"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
COUNT = {"cases": 0, "loaded": 0}


def _valid_members() -> dict[str, bytes]:
    tf.utils.set_random_seed(0)
    model = tf.Sequential(
        [
            tf.layers.Dense(3, activation="relu", input_shape=(2,)),
            tf.layers.Dropout(0.1),
            tf.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.ones((4, 2), "float32"), np.array([0, 1, 0, 1]), verbose=0)
    from dendrite.saving.architecture import to_json_bytes
    from dendrite.saving.model_file import CONFIG, model_document

    document, members = model_document(model)
    return {CONFIG: to_json_bytes(document), **members}


VALID = _valid_members()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name), payload, compress_type=method)
    return buffer.getvalue()


def _mutate_bytes(data: bytes, draw) -> bytes:
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "int"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "int" and len(data) >= at + 8:
            value = draw(st.sampled_from([0, 1, 2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1]))
            data[at : at + 8] = struct.pack("<Q", value)
    return bytes(data)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _edit_json(document, draw):
    paths = [p for p in _paths(document) if p]
    for _ in range(draw(st.integers(1, 3))):
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
        paths = [p for p in _paths(document) if p]
    return document


def _mutate_header(payload: bytes, draw) -> bytes:
    length = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8 : 8 + length])
    header = _edit_json(header, draw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload[8 + length :]


@st.composite
def mutated_files(draw) -> bytes:
    level = draw(st.sampled_from(["zip", "member", "config", "header", "header", "config"]))
    members = dict(VALID)
    if level == "zip":
        return _mutate_bytes(_zip(members), draw)
    name = draw(st.sampled_from(MEMBERS))
    if level == "member":
        members[name] = _mutate_bytes(members[name], draw)
    elif level == "config":
        members["config.json"] = json.dumps(
            _edit_json(json.loads(members["config.json"]), draw)
        ).encode()
    else:
        tensors = name if name != "config.json" else "model.weights.safetensors"
        members[tensors] = _mutate_header(members[tensors], draw)
    if draw(st.integers(0, 9)) == 0:
        members.pop(draw(st.sampled_from(MEMBERS)), None)
    return _zip(members)


def _check_one(tmp_path, payload: bytes) -> None:
    path = tmp_path / "fuzz.dendrite"
    path.write_bytes(payload)
    COUNT["cases"] += 1
    try:
        model = load_model(path)
    except ModelLoadError:
        return
    COUNT["loaded"] += 1
    model.predict(np.ones((2, 2), "float32"), verbose=0)


def _run(tmp_path, examples: int) -> None:
    COUNT.update(cases=0, loaded=0)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated_files())
    def fuzz(payload: bytes) -> None:
        _check_one(tmp_path, payload)

    fuzz()
    print(f"\nfuzzed load_model on {COUNT['cases']} mutated files ({COUNT['loaded']} still loaded)")
    assert COUNT["cases"] >= examples


def test_valid_file_loads(tmp_path):
    (tmp_path / "ok.dendrite").write_bytes(_zip(VALID))
    load_model(tmp_path / "ok.dendrite")


def test_fuzz_load_model_quick(tmp_path):
    _run(tmp_path, 200)


CI_EXAMPLES = 3_000


@pytest.mark.slow
def test_fuzz_load_model_many_cases(tmp_path):
    _run(tmp_path, int(os.environ.get("DENDRITE_FUZZ_EXAMPLES", CI_EXAMPLES)))
