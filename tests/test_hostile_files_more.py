"""More files that hurt (issue #12): loading is bounded by the file's own size in time and
memory, refuses what is not a regular file, and reads nothing outside the file."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks)
from dendrite.saving import ModelLoadError, load_model
from dendrite.saving.checkpoint import read_checkpoint, write_checkpoint
from dendrite.saving.errors import WeightsLoadError
from dendrite.saving.model_file import model_from_json
from dendrite.saving.safe_json import loads_checked, nesting_depth

# Generous: the linear checks take well under a second on a megabyte; the quadratic one
# they replace took about 40 s on 64 kB.
BUDGET_S = 5.0
SIZES = [1 << 20, 4 << 20]


def _model() -> tf.Sequential:
    tf.utils.set_random_seed(0)
    model = tf.Sequential(
        [tf.layers.Dense(4, activation="relu", input_shape=(3,)), tf.layers.Dense(2)]
    )
    model.compile("adam", "mse")
    return model


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, bytes]:
    path = tmp_path_factory.mktemp("valid") / "m.dendrite"
    _model().save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip_stored(path: Path, members: dict[str, bytes]) -> Path:
    # Stored, not deflated: a megabyte of one repeated pattern deflates past the
    # zip-bomb ratio and would be refused before the JSON is looked at.
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(zipfile.ZipInfo(name), payload, compress_type=zipfile.ZIP_STORED)
    return path


def _within_budget(call, error=ModelLoadError):
    start = time.perf_counter()
    with pytest.raises(error):
        call()
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S, f"refusal took {elapsed:.1f} s"


# Unterminated strings of escapes (the case), lone quotes, lone backslashes and
# escapes inside an opened array: each made a backtracking pattern rescan from every quote.
HOSTILE_PATTERNS = [b'"\\', b'"', b"\\", b'["\\"', b'"\\\\', b'"a\\']


def _hostile(pattern: bytes, size: int) -> bytes:
    return pattern * (size // len(pattern))


# -- 1. time: every check on untrusted text is linear -----------------------------------


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
def test_nesting_depth_is_linear(pattern):
    start = time.perf_counter()
    nesting_depth(_hostile(pattern, 4 << 20))
    assert time.perf_counter() - start < BUDGET_S


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b'[["[[[\\"[[", [1]]]', 3),
        (b'["\\\\", [[1]]]', 3),
        (b'{"a": "]]]]", "b": [{}]}', 3),
        (b'["abc', 1),
        (b'["abc\\', 1),
        (b"[[[]]]", 3),
        (b"", 0),
    ],
)
def test_nesting_depth_still_ignores_strings(text, depth):
    assert nesting_depth(text) == depth


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pattern", [b'"\\', b'["\\"', b'"'])
def test_hostile_config_json_is_refused_quickly(valid, tmp_path, pattern, size):
    path = _zip_stored(tmp_path / "m.dendrite", {**valid, "config.json": _hostile(pattern, size)})
    _within_budget(lambda: load_model(path))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pattern", [b'"\\', b'["\\"'])
def test_hostile_safetensors_header_is_refused_quickly(tmp_path, pattern, size):
    model = _model()
    header = _hostile(pattern, size)
    path = tmp_path / "w.weights.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    _within_budget(lambda: model.load_weights(path))
    inside = _zip_stored(
        tmp_path / "m.dendrite",
        {"config.json": b"{}", "model.weights.safetensors": path.read_bytes()},
    )
    _within_budget(lambda: load_model(inside))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pattern", [b'"\\', b'["\\"', b"\\"])
def test_hostile_model_json_is_refused_quickly(pattern, size):
    text = _hostile(pattern, size)
    _within_budget(lambda: model_from_json(text))
    _within_budget(lambda: model_from_json(text.decode("latin-1")))


@pytest.mark.parametrize("size", SIZES)
def test_hostile_checkpoint_state_is_refused_quickly(tmp_path, size):
    model = _model()
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
    good = tmp_path / "good.ckpt"
    write_checkpoint(model, good, {"epoch": 0})
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["checkpoint.json"] = _hostile(b'"\\', size)
    path = _zip_stored(tmp_path / "bad.ckpt", members)
    _within_budget(lambda: read_checkpoint(model, path))


def test_loads_checked_linear_on_a_long_valid_string():
    text = json.dumps(['\\"' * (2 << 20)]).encode()
    start = time.perf_counter()
    assert loads_checked(text, "x") == ['\\"' * (2 << 20)]
    assert time.perf_counter() - start < BUDGET_S


# -- 2. not a regular file: devices, FIFOs, directories are refused before any read ---


def _loaders(model):
    """Each loader that opens a path, with the suffix it expects."""
    return {
        "load_model": (".dendrite", lambda path: load_model(path)),
        "load_weights safetensors": (
            ".weights.safetensors",
            lambda path: model.load_weights(path),
        ),
        "load_weights h5": (".weights.h5", lambda path: model.load_weights(path)),
        "load_weights model file": (".keras", lambda path: model.load_weights(path)),
        "read_checkpoint": (".ckpt", lambda path: read_checkpoint(model, path)),
    }


LOADERS = list(_loaders(None))


def _refused_in_time(call, match: str, seconds: float = 10.0) -> None:
    """``call`` raises ModelLoadError matching ``match`` within ``seconds`` (a daemon
    thread, so a loader that blocks fails the test instead of hanging it)."""
    outcome: dict = {}

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 (reported below)
            outcome["error"] = error
        else:
            outcome["error"] = None

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the loader still runs after {seconds} s"
    error = outcome["error"]
    assert isinstance(error, ModelLoadError), repr(error)
    assert re.search(match, str(error)), str(error)


def _model_built():
    model = _model()
    model.build((None, 3))
    return model


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_symlink_to_a_device_is_refused(tmp_path, loader, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    model = _model_built()
    suffix, call = _loaders(model)[loader]
    path = tmp_path / f"evil{suffix}"
    path.symlink_to(device)
    _refused_in_time(lambda: call(path), rf"character device \(through a link to {device}\)")


@pytest.mark.parametrize("loader", LOADERS)
def test_fifo_is_refused_without_hanging(tmp_path, loader):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    model = _model_built()
    suffix, call = _loaders(model)[loader]
    path = tmp_path / f"pipe{suffix}"
    os.mkfifo(path)
    _refused_in_time(lambda: call(path), "FIFO")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(path)
    _refused_in_time(lambda: call(link), "FIFO.*through a link")


@pytest.mark.parametrize("loader", LOADERS)
def test_directory_is_refused(tmp_path, loader):
    model = _model_built()
    suffix, call = _loaders(model)[loader]
    path = tmp_path / f"dir{suffix}"
    path.mkdir()
    _refused_in_time(lambda: call(path), f"{re.escape(str(path))} is a directory")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(path)
    _refused_in_time(lambda: call(link), "directory.*through a link")


@pytest.mark.parametrize("loader", LOADERS)
def test_socket_is_refused(tmp_path, loader):
    model = _model_built()
    suffix, call = _loaders(model)[loader]
    path = tmp_path / f"s{suffix}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        _refused_in_time(lambda: call(path), "socket")
    finally:
        server.close()


@pytest.mark.parametrize("loader", LOADERS)
def test_symlinks_to_regular_files_still_load(tmp_path, loader):
    model = _model_built()
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
    suffix, call = _loaders(model)[loader]
    real = tmp_path / f"real{suffix}"
    if loader == "read_checkpoint":
        write_checkpoint(model, real, {"epoch": 0})
    elif loader.startswith("load_weights") and suffix != ".keras":
        model.save_weights(real)
    else:
        model.save(real)
    link = tmp_path / f"link{suffix}"
    link.symlink_to(real)
    call(link)


def test_read_regular_reads_at_most_the_size(tmp_path):
    from dendrite.saving.regular_file import read_regular

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    assert read_regular(path) == b"x" * 1000
    with pytest.raises(ModelLoadError, match="Cannot read"):
        read_regular(tmp_path / "missing.bin")


# -- 3. HDF5: nothing outside the file is read -----------------------------------------


def _h5_file(path: Path, model, edit) -> Path:
    """A dendrite ``.weights.h5`` for ``model`` whose dataset ``0000`` is made by
    ``edit(group, name, array, directory)`` (the others are ordinary)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as store:
        store.attrs["format"] = "dendrite.weights"
        group = store.create_group("weights")
        for index, variable in enumerate(model.weights):
            name = f"{index:04d}"
            array = np.asarray(variable.data)
            if index == 0:
                edit(group, name, array, path.parent)
            else:
                group.create_dataset(name, data=array)
            group[name].attrs["path"] = variable.path
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 8)
    return path


def _external_storage(secret):
    def edit(group, name, array, directory):
        h5py = pytest.importorskip("h5py")
        everything = [(str(secret), 0, h5py.h5f.UNLIMITED)]
        group.create_dataset(name, shape=array.shape, dtype=array.dtype, external=everything)

    return edit


def _external_storage_relative(secret):
    def edit(group, name, array, directory):
        group.create_dataset(
            name, shape=array.shape, dtype=array.dtype, external=[(secret.name, 0, 1 << 20)]
        )

    return edit


def _external_storage_two_files(secret):
    def edit(group, name, array, directory):
        half = array.nbytes // 2
        group.create_dataset(
            name,
            shape=array.shape,
            dtype=array.dtype,
            external=[(str(secret), 0, half), (str(secret), half, array.nbytes - half)],
        )

    return edit


def _external_link_dataset(secret):
    def edit(group, name, array, directory):
        h5py = pytest.importorskip("h5py")
        with h5py.File(directory / "other.h5", "w") as other:
            other.create_dataset("stolen", data=np.ones_like(array))
        group[name] = h5py.ExternalLink(str(directory / "other.h5"), "/stolen")

    return edit


def _soft_link_dataset(secret):
    def edit(group, name, array, directory):
        h5py = pytest.importorskip("h5py")
        group.file.create_dataset("elsewhere", data=np.ones_like(array))
        group[name] = h5py.SoftLink("/elsewhere")

    return edit


def _virtual_dataset(secret):
    def edit(group, name, array, directory):
        h5py = pytest.importorskip("h5py")
        with h5py.File(directory / "source.h5", "w") as other:
            other.create_dataset("data", data=np.ones_like(array))
        layout = h5py.VirtualLayout(shape=array.shape, dtype=array.dtype)
        layout[...] = h5py.VirtualSource(str(directory / "source.h5"), "data", shape=array.shape)
        group.create_virtual_dataset(name, layout, fillvalue=0)

    return edit


def _plugin_filter(secret):
    def edit(group, name, array, directory):
        group.create_dataset(
            name,
            data=array,
            chunks=array.shape,
            compression=32017,
            allow_unknown_filter=True,
        )

    return edit


H5_HOSTILE = {
    "external storage": (_external_storage, "stored in other files"),
    "external storage, relative name": (_external_storage_relative, "stored in other files"),
    "external storage, two pieces": (_external_storage_two_files, "stored in other files"),
    "external link": (_external_link_dataset, "external link"),
    "soft link": (_soft_link_dataset, "soft link"),
    "virtual dataset": (_virtual_dataset, "virtual dataset"),
    "plugin filter": (_plugin_filter, "filter 32017"),
}


@pytest.mark.parametrize("case", list(H5_HOSTILE))
def test_h5_reading_outside_the_file_is_refused(tmp_path, secret, case, monkeypatch):
    model = _model_built()
    before = [np.array(w.data) for w in model.weights]
    make, match = H5_HOSTILE[case]
    path = _h5_file(tmp_path / "evil.weights.h5", model, make(secret))
    monkeypatch.chdir(tmp_path)  # where a relative external name would be found
    with pytest.raises(WeightsLoadError, match=match):
        model.load_weights(path)
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(weight.data, value)


def test_h5_weights_group_behind_a_link_is_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    model = _model_built()
    real = tmp_path / "real.weights.h5"
    from dendrite.saving.h5_weights import save_weights_h5  # dendrite's own layout

    save_weights_h5(model, str(real))
    for kind, link in [
        ("external link", h5py.ExternalLink(str(real), "/weights")),
        ("soft link", h5py.SoftLink("/hidden")),
    ]:
        path = tmp_path / f"{kind.split()[0]}.weights.h5"
        with h5py.File(path, "w") as store:
            store.attrs["format"] = "dendrite.weights"
            if kind == "soft link":
                store.copy(h5py.File(real, "r")["weights"], "hidden")
            store["weights"] = link
        with pytest.raises(WeightsLoadError, match=f"'weights' is {kind}"):
            model.load_weights(path)


def test_h5_ordinary_files_and_builtin_filters_still_load(tmp_path):
    h5py = pytest.importorskip("h5py")
    model = _model_built()
    path = tmp_path / "plain.weights.h5"
    model.save_weights(path)
    model.load_weights(path)

    def compressed(group, name, array, directory):
        group.create_dataset(name, data=array, compression="gzip", shuffle=True, fletcher32=True)

    path = _h5_file(tmp_path / "gzip.weights.h5", model, compressed)
    expected = np.array(model.weights[0].data)
    model.weights[0].data[...] = 0
    model.load_weights(path)
    np.testing.assert_array_equal(model.weights[0].data, expected)
    assert h5py  # (imported for the skip)
