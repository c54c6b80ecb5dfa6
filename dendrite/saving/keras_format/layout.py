"""Keras' containers: the ``.keras`` zip and the HDF5 variable store, read and written.

Reading a ``.keras`` file goes through ``archive.open_archive``: only ``config.json``,
``metadata.json``, ``model.weights.h5`` and layers' files under ``assets/`` may be present
(``.npz`` and sharded weights are refused by name), each under its size limit and
compression ratio, assets under ``layer_state``'s checks.
The HDF5 store is opened from memory; ``H5Store`` walks it once, refusing anything but
ordinary (hard) links, groups and numeric datasets stored in the file itself (no external
storage, no virtual datasets, no plugin filters), and records each dataset's shape and
dtype from its metadata. Data are read only by ``read`` after the caller has checked the
shapes against the model.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import sys
from typing import Any

import numpy as np

from dendrite._atomic import atomic_write_bytes, atomic_writer
from dendrite.saving.archive import open_archive
from dendrite.saving.errors import ModelLoadError, WeightsLoadError
from dendrite.saving.h5_weights import _check_self_contained, _h5py
from dendrite.saving.safe_json import MAX_JSON_BYTES

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
H5_LIMIT = 1 << 40
LIMITS = {CONFIG: MAX_JSON_BYTES, METADATA: 1 << 16, WEIGHTS: H5_LIMIT}
MAX_H5_OBJECTS = 200_000
MAX_H5_DEPTH = 64
MAX_INFLATION = 100  # as archive.MAX_COMPRESSION_RATIO
MAX_MEMBERS_LISTED = 64
# The Keras version whose layout dendrite writes (the metadata Keras reads back).
KERAS_VERSION = "3.10.0"


def zip_names(path: str) -> set[str]:
    """The member names of the zip at ``path`` (a regular file); empty if not a zip."""
    import zipfile

    from dendrite.saving.regular_file import open_regular

    with open_regular(path) as (stream, _):
        try:
            with zipfile.ZipFile(stream) as archive:
                return set(archive.namelist()[:MAX_MEMBERS_LISTED])
        except Exception:  # noqa: BLE001 -- not a zip: dendrite's own reader explains why
            return set()


def check_keras_features(names: set[str], what: str) -> None:
    """Name the Keras features dendrite does not read, before the generic refusal."""
    if "model.weights.npz" in names:
        raise ModelLoadError(
            f"{what} holds its weights as model.weights.npz (Keras' weights_format='npz'); "
            f"dendrite reads Keras' model.weights.h5: save with the default format."
        )
    if any(name.endswith(".weights.json") for name in names):
        raise ModelLoadError(
            f"{what} holds sharded weights (model.weights.json) inside the zip; dendrite "
            f"reads one model.weights.h5 there (sharded weights load from a "
            f".weights.json file with load_weights)."
        )


def is_keras_zip(path: str) -> bool:
    """Whether the zip at ``path`` looks like Keras' (a ``model.weights.h5`` member, or a
    ``metadata.json`` without dendrite's safetensors members)."""
    names = zip_names(path)
    if "model.weights.safetensors" in names:
        return False  # dendrite's own zip
    keras_weights = any(n.startswith(("model.weights.", "assets/")) for n in names)
    return keras_weights or METADATA in names


def open_keras_zip(path: str):
    """The ``.keras`` zip at ``path``, its directory checked (members inflated on demand)."""
    return open_archive(path, LIMITS, required=(CONFIG,), assets=True)


def is_dendrite_h5(payload: bytes) -> bool:
    """Whether an HDF5 weights file is dendrite's own layout (root ``format`` attribute)."""
    h5py = _h5py()
    try:
        with h5py.File(io.BytesIO(payload), "r") as store:
            value = store.attrs.get("format")
    except Exception:  # noqa: BLE001 -- unreadable: the reader that follows explains why
        return False
    value = value.decode() if isinstance(value, bytes) else value
    return value == "dendrite.weights"


class H5Store:
    """The datasets of a Keras HDF5 variable store: ``infos`` maps ``group path`` ->
    ``{index: (shape, dtype)}`` for every ``.../vars`` group, read from the metadata."""

    def __init__(self, payload: bytes, what: str, error: type = ModelLoadError) -> None:
        h5py = _h5py()
        self.what, self.error = what, error
        try:
            self.file = h5py.File(io.BytesIO(payload), "r")
        except Exception as problem:  # noqa: BLE001 -- h5py raises many kinds on bad bytes
            raise error(f"{what} is not a readable HDF5 file: {problem}") from None
        self.groups: dict[str, dict[int, Any]] = {}
        self.attrs = dict(self.file.attrs) if len(self.file.attrs) < 64 else {}
        self._objects = 0
        self.declared_bytes = 0
        # Sparse chunked datasets can declare far more than the file holds; what the
        # datasets declare may exceed the file only by the ratio a zip member may inflate.
        self.payload_size = len(payload)
        self.byte_limit = MAX_INFLATION * len(payload) + (1 << 20)
        try:
            self._walk(h5py, self.file, "", 0)
        except BaseException as problem:
            self.close()
            if isinstance(problem, error):
                raise
            if isinstance(problem, Exception):  # h5py raises many kinds on bad bytes
                raise error(f"{what} is not a readable HDF5 file: {problem}") from None
            raise

    def _walk(self, h5py: Any, group: Any, path: str, depth: int) -> None:
        if depth > MAX_H5_DEPTH:
            raise self.error(f"{self.what}: groups nested more than {MAX_H5_DEPTH} deep.")
        for name in list(group.keys()):
            self._objects += 1
            if self._objects > MAX_H5_OBJECTS:
                raise self.error(f"{self.what} holds more than {MAX_H5_OBJECTS} objects.")
            here = f"{path}/{name}" if path else name
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                target = getattr(link, "filename", None) or getattr(link, "path", "")
                kind = type(link).__name__.lower().replace("link", " link")
                raise self.error(
                    f"{self.what}: entry {here!r} is {kind} to {target!r}; only data stored "
                    f"in the file itself is read."
                )
            item = group[name]
            if isinstance(item, h5py.Group):
                self._walk(h5py, item, here, depth + 1)
                continue
            if not isinstance(item, h5py.Dataset):
                raise self.error(f"{self.what}: entry {here!r} is not a group or a dataset.")
            try:
                _check_self_contained(h5py, item, here, self.what)
            except WeightsLoadError as problem:
                raise self.error(str(problem)) from None
            parent, _, index = here.rpartition("/")
            if not (parent == "vars" or parent.endswith("/vars")) or not _is_key(index):
                raise self.error(
                    f"{self.what}: dataset {here!r} is not in Keras' layout (<path>/vars/<key>)."
                )
            if item.dtype.kind not in "fiub" or item.dtype.fields is not None:
                raise self.error(f"{self.what}: dataset {here!r} is not numeric ({item.dtype}).")
            self.declared_bytes += math.prod(item.shape) * item.dtype.itemsize
            if self.declared_bytes > self.byte_limit:
                raise self.error(
                    f"{self.what}: its datasets declare more than {self.byte_limit} bytes, "
                    f"far more than the {self.payload_size} the file holds."
                )
            key: int | str = int(index) if index.isdigit() else index
            self.groups.setdefault(parent, {})[key] = item

    def shape(self, group: str, index: int) -> tuple[int, ...] | None:
        item = self.groups.get(group, {}).get(index)
        return None if item is None else tuple(item.shape)

    def dtype(self, group: str, index: int) -> np.dtype:
        return np.dtype(self.groups[group][index].dtype)

    def read(self, group: str, index: int) -> np.ndarray:
        try:
            return np.asarray(self.groups[group][index][()])
        except Exception as problem:  # noqa: BLE001 -- h5py raises many kinds on bad bytes
            raise self.error(
                f"{self.what}: dataset {group}/{index} cannot be read: {problem}"
            ) from None

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:  # noqa: BLE001, S110 -- closing a broken in-memory file
            pass

    def __enter__(self) -> H5Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def h5_bytes(groups: dict[str, tuple[str | None, list[np.ndarray] | dict[str, Any]]]) -> bytes:
    """An HDF5 file in Keras' layout: ``groups`` maps a path (``layers/dense``, or ``""``
    for the root) to (the object's name, its variables in order, or a layer's own store:
    key -> array)."""
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as store:
        for path, (name, arrays) in groups.items():
            group = store.require_group(f"{path}/vars" if path else "vars")
            if name is not None:
                group.attrs["name"] = name
            items = arrays.items() if isinstance(arrays, dict) else enumerate(arrays)
            for key, array in items:
                group.create_dataset(str(key), data=np.asarray(array))
    return buffer.getvalue()


def _is_key(name: str) -> bool:
    """A dataset name Keras' stores use: an index, or a layer's own key (printable, short)."""
    return name.isdigit() or (0 < len(name) <= 256 and all(ord(ch) >= 32 for ch in name))


def metadata_json() -> bytes:
    version = str(getattr(sys.modules.get("dendrite"), "__version__", "unknown"))
    return json.dumps(
        {
            "keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "saved_by": f"dendrite {version}",
        }
    ).encode("utf-8")


def write_keras_zip(
    path: str,
    config: bytes,
    weights: bytes,
    overwrite: bool = True,
    assets: dict[str, bytes] | None = None,
) -> None:
    """Keras' zip (metadata, config, weights, then the layers' ``assets/...``, in Keras'
    order), written atomically."""
    import zipfile

    with atomic_writer(path, overwrite=overwrite) as stream:
        with zipfile.ZipFile(stream, "w") as archive:
            for name, payload, method in (
                (METADATA, metadata_json(), zipfile.ZIP_DEFLATED),
                (CONFIG, config, zipfile.ZIP_DEFLATED),
                (WEIGHTS, weights, zipfile.ZIP_STORED),
                *((n, data, zipfile.ZIP_DEFLATED) for n, data in (assets or {}).items()),
            ):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                archive.writestr(info, payload)


def write_weights_file(path: str, weights: bytes, overwrite: bool = True) -> None:
    atomic_write_bytes(path, weights, overwrite=overwrite)
