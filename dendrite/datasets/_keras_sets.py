"""Keras' small datasets (CIFAR-10/100, IMDB, Reuters, Boston and California housing):
where they come from, and how their files are read without ``pickle``.

Each is found like Fashion-MNIST (``dendrite.datasets._fetch``: ``path=``,
``$DENDRITE_DATA/<name>/``, the cache, then a download from the Keras mirrors verified by
SHA-256 and written atomically). The SHA-256 values are those Keras' ``get_file`` checks.
CIFAR's archives hold Python pickles and IMDB / Reuters' ``.npz`` hold object arrays: both
are read by ``dendrite.datasets.restricted_pickle``, which builds only lists, dicts, bytes
and arrays.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from dendrite.datasets._fetch import DatasetSpec, RemoteFile, locate
from dendrite.datasets.restricted_pickle import PickleFormatError, load_npy, loads

KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_MAX_MEMBER = 1 << 30


def _spec(name: str, title: str, file: RemoteFile, mirror: str, n_train: int, n_test: int):
    return DatasetSpec(
        name=name,
        title=title,
        files=(file,),
        mirrors=(mirror,),
        system_dirs=(),
        n_train=n_train,
        n_test=n_test,
    )


CIFAR10 = _spec(
    "cifar10",
    "CIFAR-10",
    RemoteFile(
        "cifar-10-python.tar.gz",
        170498071,
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    "https://www.cs.toronto.edu/~kriz/",
    50000,
    10000,
)
CIFAR100 = _spec(
    "cifar100",
    "CIFAR-100",
    RemoteFile(
        "cifar-100-python.tar.gz",
        None,
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ),
    "https://www.cs.toronto.edu/~kriz/",
    50000,
    10000,
)
IMDB = _spec(
    "imdb",
    "IMDB",
    RemoteFile(
        "imdb.npz", None, "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    ),
    KERAS_MIRROR,
    25000,
    25000,
)
REUTERS = _spec(
    "reuters",
    "Reuters",
    RemoteFile(
        "reuters.npz", None, "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    ),
    KERAS_MIRROR,
    8982,
    2246,
)
BOSTON = _spec(
    "boston_housing",
    "Boston housing",
    RemoteFile(
        "boston_housing.npz",
        None,
        "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
    ),
    KERAS_MIRROR,
    404,
    102,
)
CALIFORNIA = _spec(
    "california_housing",
    "California housing",
    RemoteFile(
        "california_housing.npz",
        None,
        "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f",
    ),
    KERAS_MIRROR,
    16512,
    4128,
)


def find(spec: DatasetSpec, path: str | os.PathLike[str] | None) -> Path:
    """The dataset's one file (see ``_fetch.locate``)."""
    return locate(spec, path)[0]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, object arrays through the restricted reader."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy") or info.file_size > _MAX_MEMBER:
                    continue
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = load_npy(io.BytesIO(member.read()))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise PickleFormatError(f"{path}: not a readable .npz of arrays: {error}") from None
    return arrays


def read_tar_pickles(path: Path, names: list[str]) -> dict[str, dict]:
    """The pickled dicts ``names`` (member base names) of a CIFAR ``.tar.gz``."""
    found: dict[str, dict] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if base in names and member.isfile() and member.size <= _MAX_MEMBER:
                    stream = archive.extractfile(member)
                    if stream is not None:
                        found[base] = loads(stream.read())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise PickleFormatError(f"{path}: not a readable CIFAR archive: {error}") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise PickleFormatError(f"{path}: the archive lacks {', '.join(missing)}")
    return found


def cifar_images(batch: dict, path: Path) -> np.ndarray:
    data = batch.get(b"data", batch.get("data"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise PickleFormatError(f"{path}: a CIFAR batch must hold data of shape (n, 3072)")
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32)


def cifar_labels(batch: dict, key: str, path: Path) -> np.ndarray:
    labels = batch.get(key.encode(), batch.get(key))
    if labels is None:
        raise PickleFormatError(f"{path}: a CIFAR batch lacks {key}")
    return np.asarray(labels, dtype=np.uint8)


def shuffled_split(x, y, test_split: float, seed: int):
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x))
    rng.shuffle(indices)
    x, y = x[indices], y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))


def sequences(xs, labels, num_words, skip_top, maxlen, start_char, oov_char, index_from):
    """Keras' IMDB / Reuters preprocessing of word-index sequences."""
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    else:
        xs = [list(x) for x in xs]
    if maxlen:
        kept = [(x, y) for x, y in zip(xs, labels) if len(x) < maxlen]
        xs, labels = [x for x, _ in kept], np.asarray([y for _, y in kept])
    if not num_words:
        num_words = max(max(x) for x in xs if x) if xs else 0
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    return xs, labels


def object_array(rows: list) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def read_word_index(name: str, path: str | os.PathLike[str] | None) -> dict:
    """The word-index JSON file of the data set ``name`` (IMDB's, Reuters'), only from a
    local copy (Keras publishes only MD5s for them, and dendrite downloads only what it
    can check by SHA-256): ``path`` is Keras' file name in the cache (searched in the usual
    places, as ``None`` is), the file itself, or a directory holding
    ``<name>_word_index.json``."""
    spec = DatasetSpec(
        name=name,
        title=f"{name} word index",
        files=(RemoteFile(f"{name}_word_index.json", None, ""),),
        mirrors=(),
        system_dirs=(),
        n_train=0,
        n_test=0,
    )
    where: Path | None = None
    if path is not None:
        given = Path(path).expanduser()
        if given.is_dir():
            where = given
        elif given.is_file() or given.name != os.fspath(path):
            # A file, or a path with a directory: that file, searched nowhere else.
            where = given.parent
            spec = dataclasses.replace(spec, files=(RemoteFile(given.name, None, ""),))
        else:  # a bare file name: Keras' name in the cache
            spec = dataclasses.replace(spec, files=(RemoteFile(given.name, None, ""),))
    file = locate(spec, where, download_missing=False)[0]
    with open(file, encoding="utf-8") as f:
        return json.load(f)
