"""Finding, downloading, verifying and loading datasets, on tiny generated IDX files.

No test here touches the network beyond 127.0.0.1, or the real cache: the cache is a tmp dir
and every dataset's mirrors point at a closed local port unless a test serves files itself.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import hashlib
import http.server
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import dendrite.datasets as datasets
from dendrite.datasets import (
    DatasetChecksumError,
    DatasetNotFoundError,
    IDXFormatError,
    _fetch,
    fashion_mnist,
    mnist,
)
from dendrite.datasets._fetch import DatasetSpec, RemoteFile, locate

N_TRAIN, N_TEST = 6, 4
NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, N_TEST, dtype=np.uint8),
    ]


def closed_port_url() -> str:
    """An http:// URL on a local port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@dataclasses.dataclass
class Tiny:
    """A generated dataset: its arrays, the served .gz bytes, and a spec that accepts them."""

    arrays: list[np.ndarray]
    blobs: dict[str, bytes]
    spec: DatasetSpec

    def write(self, directory: Path, compressed: bool = True, only=NAMES) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in zip(NAMES, self.arrays, strict=True):
            if name in only:
                if compressed:
                    (directory / name).write_bytes(self.blobs[name])
                else:
                    (directory / name.removesuffix(".gz")).write_bytes(idx_bytes(array))
        return directory


def make_tiny(tmp_path: Path, seed: int = 0, name: str = "tiny") -> Tiny:
    arrays = tiny_arrays(seed)
    blobs, files = {}, []
    for file_name, array in zip(NAMES, arrays, strict=True):
        raw = idx_bytes(array)
        blob = gzip.compress(raw, mtime=0)
        blobs[file_name] = blob
        files.append(
            RemoteFile(
                file_name,
                len(blob),
                hashlib.sha256(blob).hexdigest(),
                hashlib.sha256(raw).hexdigest(),
            )
        )
    spec = DatasetSpec(
        name=name,
        title="Tiny-MNIST",
        files=tuple(files),
        mirrors=(closed_port_url(),),
        system_dirs=(tmp_path / "system",),
        n_train=N_TRAIN,
        n_test=N_TEST,
        how_to_get=("apt-get install dataset-tiny;",),
    )
    return Tiny(arrays, blobs, spec)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache in tmp, no DENDRITE_DATA, and no mirror anyone could reach by accident."""
    monkeypatch.setenv("DENDRITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DENDRITE_DATA", raising=False)
    monkeypatch.delenv("DENDRITE_DATASET_MIRROR", raising=False)
    for module in (fashion_mnist, mnist):
        monkeypatch.setattr(
            module, "SPEC", dataclasses.replace(module.SPEC, mirrors=(closed_port_url(),))
        )
    monkeypatch.setattr(_fetch, "TIMEOUT", 2.0)


@pytest.fixture
def tiny(tmp_path):
    return make_tiny(tmp_path)


def cache_of(tmp_path: Path, name: str = "tiny") -> Path:
    return tmp_path / "cache" / "datasets" / name


def assert_loaded(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, expected in zip((x_train, y_train, x_test, y_test), arrays, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


# ----------------------------------------------------------------------------- lookup order


def parents(paths):
    return {p.parent for p in paths}


def test_path_argument_wins(tmp_path, tiny, monkeypatch):
    for where in ("given", "data/tiny", "system", "cache/datasets/tiny"):
        tiny.write(tmp_path / where)
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    assert parents(locate(tiny.spec, tmp_path / "given")) == {tmp_path / "given"}


def test_path_argument_is_strict(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "data")
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    tiny.write(tmp_path / "given", only=NAMES[:3])
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        locate(tiny.spec, tmp_path / "given")


def test_dendrite_data_beats_system_and_cache(tmp_path, tiny, monkeypatch):
    for where in ("data", "system", "cache/datasets/tiny"):
        tiny.write(tmp_path / where)
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    assert parents(locate(tiny.spec)) == {tmp_path / "data"}
    # The subfolder named after the dataset beats the folder itself.
    tiny.write(tmp_path / "data" / "tiny")
    assert parents(locate(tiny.spec)) == {tmp_path / "data" / "tiny"}


def test_system_dir_beats_cache(tmp_path, tiny):
    tiny.write(tmp_path / "system")
    tiny.write(cache_of(tmp_path))
    assert parents(locate(tiny.spec)) == {tmp_path / "system"}


def test_cache_is_used_without_downloading(tmp_path, tiny, monkeypatch):
    tiny.write(cache_of(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("the cache should have been enough")

    monkeypatch.setattr(_fetch, "_fetch_one", no_network)
    assert parents(locate(tiny.spec)) == {cache_of(tmp_path)}


def test_incomplete_directory_is_skipped(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "data", only=NAMES[1:])
    tiny.write(tmp_path / "system")
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    assert parents(locate(tiny.spec)) == {tmp_path / "system"}


def test_uncompressed_files_are_accepted(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "data", compressed=False)
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    paths = locate(tiny.spec)
    assert [p.name for p in paths] == [n.removesuffix(".gz") for n in NAMES]
    monkeypatch.setattr(fashion_mnist, "SPEC", tiny.spec)
    assert_loaded(fashion_mnist.load_data(), tiny.arrays)


# ------------------------------------------------------------------------ loading, checking


def test_load_data_through_the_public_api(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "system")
    monkeypatch.setattr(mnist, "SPEC", tiny.spec)
    assert_loaded(datasets.mnist.load_data(), tiny.arrays)
    assert_loaded(mnist.load_data(path=tmp_path / "system"), tiny.arrays)


def test_each_call_returns_fresh_arrays(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "system")
    monkeypatch.setattr(fashion_mnist, "SPEC", tiny.spec)
    (x_train, y_train), _ = fashion_mnist.load_data()
    x_train[:] = 0
    y_train[:] = 0
    assert_loaded(fashion_mnist.load_data(), tiny.arrays)


def test_other_dataset_in_a_flat_folder_is_caught(tmp_path, tiny, monkeypatch):
    # MNIST and Fashion-MNIST share file names; the content hash tells them apart.
    other = make_tiny(tmp_path, seed=1)
    other.write(tmp_path / "data")
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(fashion_mnist, "SPEC", tiny.spec)
    with pytest.raises(DatasetChecksumError, match="own folder") as info:
        fashion_mnist.load_data()
    assert str(tmp_path / "data") in str(info.value)


def test_wrong_shapes_are_reported(tmp_path, tiny, monkeypatch):
    directory = tiny.write(tmp_path / "given")
    (directory / NAMES[2]).write_bytes(gzip.compress(idx_bytes(np.zeros((N_TEST, 28, 27)))))
    monkeypatch.setattr(fashion_mnist, "SPEC", tiny.spec)
    with pytest.raises(IDXFormatError, match=r"shape \(4, 28, 28\).*got uint8 of shape"):
        fashion_mnist.load_data(directory)
    (directory / NAMES[2]).write_bytes(tiny.blobs[NAMES[2]])
    (directory / NAMES[3]).write_bytes(gzip.compress(idx_bytes(np.full(N_TEST, 10))))
    with pytest.raises(IDXFormatError, match="0..9"):
        fashion_mnist.load_data(directory)


def test_damaged_file_names_the_file(tmp_path, tiny, monkeypatch):
    directory = tiny.write(tmp_path / "given")
    (directory / NAMES[0]).write_bytes(tiny.blobs[NAMES[0]][:-20])
    monkeypatch.setattr(fashion_mnist, "SPEC", tiny.spec)
    with pytest.raises(IDXFormatError, match=NAMES[0]):
        fashion_mnist.load_data(directory)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian():
    paths = locate(fashion_mnist.SPEC, download_missing=False)
    assert parents(paths) == {DEBIAN_FASHION}
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert x_train.max() == 255 and x_train.min() == 0
    assert len(fashion_mnist.class_names) == 10
    assert fashion_mnist.class_names[9] == "Ankle boot"


# ----------------------------------------------------------------------------- downloading


class Server:
    """A local HTTP server for ``files``; ``mode`` "lie" sends half the body it announces."""

    def __init__(self, files: dict[str, bytes], mode: str = "ok") -> None:
        self.files, self.mode, self.requests = files, mode, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "lie":
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, mode="ok"):
        servers.append(Server(files, mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def cached_entries(tmp_path) -> list[str]:
    cache = cache_of(tmp_path)
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_verifies_and_caches(tmp_path, tiny, serve, monkeypatch):
    server = serve({f"/mirror/{n}": b for n, b in tiny.blobs.items()})
    # The first mirror is down; the second serves the files.
    spec = dataclasses.replace(tiny.spec, mirrors=(closed_port_url(), server.url + "/mirror"))
    monkeypatch.setattr(fashion_mnist, "SPEC", spec)
    assert_loaded(fashion_mnist.load_data(), tiny.arrays)
    assert cached_entries(tmp_path) == sorted(NAMES)  # no temporary files left behind
    for name in NAMES:
        assert (cache_of(tmp_path) / name).read_bytes() == tiny.blobs[name]
    assert len(server.requests) == 4
    assert_loaded(fashion_mnist.load_data(), tiny.arrays)
    assert len(server.requests) == 4  # the second load comes from the cache


def test_mirror_from_environment_with_name_placeholder(tmp_path, tiny, serve, monkeypatch):
    server = serve({f"/data/tiny/{n}": b for n, b in tiny.blobs.items()})
    tiny.write(cache_of(tmp_path), only=NAMES[:2])  # half already cached
    monkeypatch.setenv("DENDRITE_DATASET_MIRROR", server.url + "/data/{name}/")
    assert parents(locate(tiny.spec)) == {cache_of(tmp_path)}
    assert sorted(server.requests) == sorted(f"/data/tiny/{n}" for n in NAMES[2:])


def test_truncated_download_leaves_nothing(tmp_path, tiny, serve):
    blobs = dict(tiny.blobs)
    blobs[NAMES[0]] = blobs[NAMES[0]][:-100]
    server = serve({f"/{n}": b for n, b in blobs.items()})
    spec = dataclasses.replace(tiny.spec, mirrors=(server.url,))
    with pytest.raises(DatasetChecksumError, match="truncated") as info:
        locate(spec)
    assert f"{server.url}/{NAMES[0]}" in str(info.value)
    assert cached_entries(tmp_path) == []


def test_connection_cut_short_leaves_nothing(tmp_path, tiny, serve):
    server = serve({f"/{n}": b for n, b in tiny.blobs.items()}, mode="lie")
    spec = dataclasses.replace(tiny.spec, mirrors=(server.url,))
    with pytest.raises(DatasetChecksumError, match="truncated"):
        locate(spec)
    assert cached_entries(tmp_path) == []


@pytest.mark.parametrize("change", ["one byte", "one byte more"])
def test_wrong_bytes_are_refused_and_nothing_cached(tmp_path, tiny, serve, change):
    blobs = dict(tiny.blobs)
    bad = bytearray(blobs[NAMES[3]])
    if change == "one byte":
        bad[len(bad) // 2] ^= 0x01
    else:
        bad.append(0)
    blobs[NAMES[3]] = bytes(bad)
    server = serve({f"/{n}": b for n, b in blobs.items()})
    spec = dataclasses.replace(tiny.spec, mirrors=(server.url,))
    expected = "wrong SHA-256" if change == "one byte" else "wrong size"
    with pytest.raises(DatasetChecksumError, match=expected):
        locate(spec)
    # The good files before it stay cached (each was verified); the bad one is not there.
    assert cached_entries(tmp_path) == sorted(NAMES[:3])


def test_offline_and_nowhere_gives_a_helpful_error(tmp_path):
    spec = dataclasses.replace(fashion_mnist.SPEC, system_dirs=(tmp_path / "no-debian",))
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        locate(spec)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    for fragment in (
        "Fashion-MNIST was not found",
        str(tmp_path / "no-debian"),
        str(cache_of(tmp_path, "fashion-mnist")),
        "could not download train-images-idx3-ubyte.gz",
        spec.mirrors[0],
        "apt-get install dataset-fashion-mnist",
        "DENDRITE_DATA",
    ):
        assert fragment in message
    assert isinstance(info.value, FileNotFoundError)
    assert cached_entries(tmp_path) == []


def test_not_found_lists_dendrite_data_and_missing_files(tmp_path, tiny, monkeypatch):
    tiny.write(tmp_path / "data", only=NAMES[:1])
    monkeypatch.setenv("DENDRITE_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        locate(tiny.spec, download_missing=False)
    message = str(info.value)
    assert f"$DENDRITE_DATA {tmp_path / 'data' / 'tiny'}: does not exist" in message
    assert f"$DENDRITE_DATA {tmp_path / 'data'}: lacks {', '.join(NAMES[1:])}" in message
    assert "downloading was not allowed" in message


def test_missing_file_on_mirror_is_not_found(tmp_path, tiny, serve):
    server = serve({})
    spec = dataclasses.replace(tiny.spec, mirrors=(server.url,))
    with pytest.raises(DatasetNotFoundError, match="404"):
        locate(spec)
    assert cached_entries(tmp_path) == []


def test_silent_server_times_out(tmp_path, tiny, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        monkeypatch.setattr(_fetch, "TIMEOUT", 0.3)
        port = listener.getsockname()[1]
        spec = dataclasses.replace(tiny.spec, mirrors=(f"http://127.0.0.1:{port}/",))
        start = time.perf_counter()
        with pytest.raises(DatasetNotFoundError, match="timed out"):
            locate(spec)
        assert time.perf_counter() - start < 5
    finally:
        listener.close()
    assert cached_entries(tmp_path) == []


# ------------------------------------------------------------------------------ the package


def test_public_api():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert issubclass(DatasetChecksumError, ValueError)
    assert callable(datasets.fashion_mnist.load_data)
    assert callable(datasets.mnist.load_data)
    assert callable(datasets.read_idx)


def test_datasets_import_only_numpy_stdlib_and_themselves():
    package = Path(datasets.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                if module.startswith("dendrite"):
                    assert module.startswith("dendrite.datasets"), (source.name, module)
                else:
                    assert module.split(".")[0] in _ALLOWED, (source.name, module)


_ALLOWED = {
    "__future__", "contextlib", "dataclasses", "gzip", "hashlib", "http", "io", "json",
    "math", "numpy", "os", "pathlib", "re", "struct", "tarfile", "tempfile", "typing",
    "urllib", "zipfile", "zlib",
}  # fmt: skip
