"""Keras' small datasets from local fixtures in each format, downloaded from a server on
127.0.0.1 (never the internet), verified by SHA-256, read without pickle."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest

from dendrite.datasets import _keras_sets as sets
from dendrite.datasets import (
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    imdb,
    reuters,
)
from dendrite.datasets._fetch import DatasetChecksumError, RemoteFile
from dendrite.datasets.restricted_pickle import PickleFormatError, loads


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1; point the specs at it with the fixtures' hashes."""
    www = tmp_path / "www"
    www.mkdir()
    monkeypatch.setenv("DENDRITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DENDRITE_DATA", raising=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    def publish(attr, name, data, size=True):
        (www / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        spec = getattr(sets, attr)
        file = RemoteFile(name, len(data) if size else None, digest)
        monkeypatch.setattr(sets, attr, dataclasses.replace(spec, files=(file,), mirrors=(base,)))

    yield publish
    server.shutdown()


def _tar(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, obj in members.items():
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _npz(**arrays):
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _objects(rows):
    array = np.empty(len(rows), dtype=object)
    array[:] = rows
    return array


def test_cifar10_and_cifar100_from_their_python_archives(served):
    rng = np.random.default_rng(0)

    def batch(n, labels=None, **more):
        out = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), **more}
        if labels is not None:
            out[b"labels"] = labels
        return out

    members = {f"cifar-10-batches-py/data_batch_{i}": batch(2, [i, 1]) for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch(3, [9, 8, 7])
    served("CIFAR10", "cifar-10-python.tar.gz", _tar(members))
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    assert x_train.shape == (10, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (10, 1) and y_test[:, 0].tolist() == [9, 8, 7]
    raw = members["cifar-10-batches-py/test_batch"][b"data"][0]
    np.testing.assert_array_equal(x_test[0, :, :, 0].ravel(), raw[:1024])  # red plane first
    served(
        "CIFAR100",
        "cifar-100-python.tar.gz",
        _tar(
            {
                "cifar-100-python/train": batch(
                    4, fine_labels=[1, 2, 3, 99], coarse_labels=[0] * 4
                ),
                "cifar-100-python/test": batch(2, fine_labels=[5, 6], coarse_labels=[19, 1]),
            }
        ),
        size=False,
    )
    (_, y_fine), _ = cifar100.load_data()
    _, (_, y_coarse) = cifar100.load_data(label_mode="coarse")
    assert y_fine[:, 0].tolist() == [1, 2, 3, 99] and y_coarse[:, 0].tolist() == [19, 1]
    with pytest.raises(ValueError, match="`label_mode` must be one of"):
        cifar100.load_data(label_mode="medium")


def test_a_wrong_download_is_refused_and_leaves_nothing(served, tmp_path):
    served("BOSTON", "boston_housing.npz", _npz(x=np.zeros((5, 13)), y=np.zeros(5)))
    sets.BOSTON = dataclasses.replace(
        sets.BOSTON, files=(dataclasses.replace(sets.BOSTON.files[0], sha256="0" * 64),)
    )
    with pytest.raises(DatasetChecksumError, match="wrong SHA-256"):
        boston_housing.load_data()
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_housing_sets_split_as_keras(served):
    x = np.arange(100 * 13, dtype=np.float64).reshape(100, 13)
    served("BOSTON", "boston_housing.npz", _npz(x=x, y=x[:, 0]))
    (x_train, y_train), (x_test, y_test) = boston_housing.load_data()
    assert x_train.shape == (80, 13) and x_test.shape == (20, 13)
    np.testing.assert_array_equal(x_train[:, 0], y_train)
    served("CALIFORNIA", "california_housing.npz", _npz(x=x[:, :8], y=x[:, 0]))
    (x_train, _), (x_test, _) = california_housing.load_data(version="large", test_split=0.1)
    assert len(x_train) == 90 and x_train.shape[1] == 8
    with pytest.raises(ValueError, match="Argument `version`"):
        california_housing.load_data(version="medium")


def test_imdb_and_reuters_object_arrays_with_keras_preprocessing(served):
    seqs = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [2]]
    served(
        "IMDB",
        "imdb.npz",
        _npz(
            x_train=_objects(seqs[:2]),
            y_train=np.array([0, 1]),
            x_test=_objects(seqs[2:]),
            y_test=np.array([1, 0]),
        ),
    )
    (x_train, y_train), (x_test, _) = imdb.load_data(seed=0)
    assert x_train.dtype == object and len(x_train) == 2
    assert all(seq[0] == 1 for seq in x_train)  # start_char
    assert sorted(len(s) for s in x_train) == [3, 4]
    (x_small, _), _ = imdb.load_data(num_words=6, seed=0)
    assert max(w for s in x_small for w in s) < 6
    served("REUTERS", "reuters.npz", _npz(x=_objects(seqs * 5), y=np.arange(20) % 3))
    (x_train, y_train), (x_test, y_test) = reuters.load_data(test_split=0.25)
    assert len(x_train) == 15 and len(x_test) == 5 and y_train.dtype.kind == "i"


def test_the_restricted_reader_refuses_anything_else():
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with pytest.raises(PickleFormatError, match="refused global .*print"):
        loads(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(PickleFormatError):
        loads(pickle.dumps({1, 2}))
    with pytest.raises(PickleFormatError, match="truncated"):
        loads(pickle.dumps([1, 2, 3])[:-3])


@pytest.mark.parametrize("name", ["reuters", "imdb"])
def test_word_index_from_local_copies_only(name, tmp_path, monkeypatch):
    """Keras' path argument: its file name in the cache (or None), a file, a directory."""
    import json

    from dendrite.datasets._fetch import DatasetNotFoundError

    monkeypatch.setenv("DENDRITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DENDRITE_DATA", raising=False)
    module = {"reuters": reuters, "imdb": imdb}[name]
    words = {"the": 1, "of": 2, "said": 5}
    with pytest.raises(DatasetNotFoundError, match="downloading was not allowed"):
        module.get_word_index()  # Keras' default name; no SHA-256 known, so no download
    cached = tmp_path / "cache" / "datasets" / name
    cached.mkdir(parents=True)
    (cached / f"{name}_word_index.json").write_text(json.dumps(words), encoding="utf-8")
    assert module.get_word_index() == words
    assert module.get_word_index(path=None) == words
    assert module.get_word_index(f"{name}_word_index.json") == words
    own = tmp_path / "mine" / "index.json"
    own.parent.mkdir()
    own.write_text(json.dumps({"a": 1}), encoding="utf-8")
    assert module.get_word_index(own) == {"a": 1}  # a file
    assert module.get_word_index(cached) == words  # a directory holding it
    with pytest.raises(DatasetNotFoundError, match="missing other.json"):
        module.get_word_index(tmp_path / "mine" / "other.json")
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "mine"))
    assert module.get_word_index("index.json") == {"a": 1}  # a name, in $DENDRITE_DATA


def test_reuters_label_names():
    names = reuters.get_label_names()
    assert isinstance(names, tuple) and len(names) == 46
    assert names[:4] == ("cocoa", "grain", "veg-oil", "earn") and names[-1] == "lead"
    assert names[3] == "earn" and names[19] == "money-fx" and len(set(names)) == 46
