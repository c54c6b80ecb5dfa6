"""Loading a dataset laid out like MNIST: four IDX files of 28x28 uint8 images and labels."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from dendrite.datasets._fetch import DatasetChecksumError, DatasetSpec, RemoteFile, locate
from dendrite.datasets.idx import IDXFormatError, read_idx

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# Files whose content hash was already checked in this process: (path, size, mtime) -> hash.
_verified: dict[tuple[str, int, int], str] = {}


def _content_sha256(array: np.ndarray) -> str:
    """SHA-256 of the uncompressed IDX bytes that hold ``array`` (uint8 only)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    digest = hashlib.sha256(header)
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _check(
    path: Path, array: np.ndarray, file: RemoteFile, spec: DatasetSpec, shape: tuple[int, ...]
) -> None:
    what = "images" if len(shape) == 3 else "labels"
    if array.dtype != np.uint8 or array.shape != shape:
        raise IDXFormatError(
            f"{path}: {spec.title} {what} must be uint8 of shape {shape}, got {array.dtype} of "
            f"shape {array.shape} (is this the right file?)"
        )
    if what == "labels" and array.size and int(array.max()) >= NUM_CLASSES:
        raise IDXFormatError(
            f"{path}: {spec.title} labels must lie in 0..{NUM_CLASSES - 1}, "
            f"got a label {int(array.max())}"
        )
    if not file.content_sha256:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == file.content_sha256:
        return
    actual = _content_sha256(array)
    if actual != file.content_sha256:
        raise DatasetChecksumError(
            f"{path}: this is not the {spec.title} file {file.stem}: its uncompressed content "
            f"has SHA-256 {actual}, expected {file.content_sha256}. (MNIST and Fashion-MNIST "
            f"use the same file names: keep each in its own folder, e.g. "
            f"$DENDRITE_DATA/{spec.name}/.)"
        )
    _verified[key] = actual


def load(
    spec: DatasetSpec, path: str | os.PathLike[str] | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Find, verify and read ``spec``'s four files; see ``fashion_mnist.load_data``."""
    paths = locate(spec, path)
    shapes = [
        (spec.n_train, *IMAGE_SHAPE),
        (spec.n_train,),
        (spec.n_test, *IMAGE_SHAPE),
        (spec.n_test,),
    ]
    arrays = []
    for file_path, file, shape in zip(paths, spec.files, shapes, strict=True):
        array = read_idx(file_path)
        _check(file_path, array, file, spec, shape)
        arrays.append(array)
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)
