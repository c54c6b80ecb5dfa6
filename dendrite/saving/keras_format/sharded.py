"""Keras 3's sharded weights: ``save_weights("m.weights.json", max_shard_size=...)``.

Keras writes an index ``m.weights.json``::

    {"metadata": {"total_size": <bytes>},
     "weight_map": {"/layers/dense/vars": ["m_00000.weights.h5"], ...}}

and the shards ``m_00000.weights.h5``, ``m_00001.weights.h5``, ... beside it, each an HDF5
file in Keras' variable layout holding some of the groups (a group's variables may be
split over several shards). Shards fill in Keras' saving order; a new one starts when
the next variable would take the current one past ``max_shard_size`` gigabytes.

Loading reads the index as untrusted JSON (bounded size, known keys) and opens only the
shards it names that are plain file names in the index's own directory: no path
separators, no ``..``, no hidden names, nothing but ``*.weights.h5``, and no link that
leads out of the directory. Each shard is checked as a single ``.weights.h5`` is
(``layout.H5Store``: hard links only, no external storage or virtual datasets, numeric
datasets, declared sizes bounded by the file); a variable found in two shards, or in a
shard the index does not list for its group, is refused. The shards' variables then load
exactly as one file's would, every shape checked before any weight changes.

Saving writes every shard atomically, then the index; with ``overwrite=False`` it refuses
when the index or any shard it would write exists.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from dendrite._atomic import atomic_write_bytes
from dendrite.saving import layer_state
from dendrite.saving.errors import WeightsLoadError
from dendrite.saving.keras_format import layout
from dendrite.saving.regular_file import read_regular
from dendrite.saving.safe_json import loads_checked

INDEX_SUFFIX = ".weights.json"
SHARD_SUFFIX = ".weights.h5"
MAX_INDEX_BYTES = 16 << 20
MAX_SHARDS = 4096
MAX_NAME = 255


def _shard_name(name: Any, what: str) -> str:
    """A shard the index names: a plain ``*.weights.h5`` file name in its directory."""
    bad = (
        not isinstance(name, str)
        or not name.endswith(SHARD_SUFFIX)
        or len(name) > MAX_NAME
        or name.startswith(".")
        or any(ch in name for ch in "/\\:")
        or any(ord(ch) < 32 for ch in name)
    )
    if bad:
        raise WeightsLoadError(
            f"{what}: the index names the shard {name!r}; a shard must be a plain "
            f"'*{SHARD_SUFFIX}' file name in the index's own directory."
        )
    return name


def read_index(path: str) -> dict[str, list[str]]:
    """The checked ``weight_map`` of the index at ``path``: group -> shard names."""
    what = path
    document = loads_checked(
        read_regular(path, what, WeightsLoadError), f"{what} (index)", max_bytes=MAX_INDEX_BYTES
    )
    if not isinstance(document, dict) or not isinstance(document.get("weight_map"), dict):
        raise WeightsLoadError(
            f"{what} is not a Keras sharded-weights index (a JSON object with 'weight_map')."
        )
    unknown = set(document) - {"metadata", "weight_map"}
    if unknown:
        raise WeightsLoadError(f"{what}: the index has unknown keys {sorted(unknown)}.")
    weight_map: dict[str, list[str]] = {}
    for group, names in document["weight_map"].items():
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names:
            raise WeightsLoadError(f"{what}: the index lists no shard for {group!r}.")
        weight_map[group.strip("/")] = [_shard_name(name, what) for name in names]
    shards = {name for names in weight_map.values() for name in names}
    if len(shards) > MAX_SHARDS:
        raise WeightsLoadError(f"{what} names {len(shards)} shards; at most {MAX_SHARDS}.")
    return weight_map


class ShardedStore:
    """The shards of an index, checked and merged: the interface of ``layout.H5Store``
    (``groups``, ``shape``, ``dtype``, ``read``) over all of them."""

    def __init__(self, path: str) -> None:
        self.what, self.error = path, WeightsLoadError
        weight_map = read_index(path)
        directory = Path(path).resolve().parent
        names = sorted({name for names in weight_map.values() for name in names})
        self.stores: list[layout.H5Store] = []
        self.groups: dict[str, dict[Any, Any]] = {}
        self.attrs: dict[str, Any] = {}
        try:
            for name in names:
                shard = directory / name
                if Path(os.path.realpath(shard)).parent != directory:
                    raise WeightsLoadError(
                        f"{path}: the shard {name!r} is a link that leads out of the index's "
                        f"directory."
                    )
                what = f"{path} (shard {name})"
                store = layout.H5Store(
                    read_regular(shard, what, WeightsLoadError), what, self.error
                )
                self.stores.append(store)
                self._merge(store, name, weight_map)
        except BaseException:
            self.close()
            raise

    def _merge(self, store: layout.H5Store, name: str, weight_map: dict[str, list[str]]) -> None:
        for group, items in store.groups.items():
            if name not in weight_map.get(group, ()):
                raise WeightsLoadError(
                    f"{self.what}: the shard {name!r} holds {group} but the index does not list "
                    f"it there."
                )
            merged = self.groups.setdefault(group, {})
            for key, item in items.items():
                if key in merged:
                    raise WeightsLoadError(
                        f"{self.what}: {group}/{key} is stored in more than one shard."
                    )
                merged[key] = item

    shape = layout.H5Store.shape
    dtype = layout.H5Store.dtype
    read = layout.H5Store.read

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def __enter__(self) -> ShardedStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- saving ----------------------------------------------------------------------------------
def save_sharded(
    groups: dict[str, tuple[str | None, Any]],
    path: str,
    max_shard_size: float,
    overwrite: bool = True,
) -> list[str]:
    """Write ``groups`` (``layout.h5_bytes``' argument, in Keras' saving order) as shards
    of at most ``max_shard_size`` gigabytes and the index at ``path``; returns the shard
    paths."""
    if not path.endswith(INDEX_SUFFIX):
        raise ValueError(
            f"The filename must end in `{INDEX_SUFFIX}` when `max_shard_size` is specified. "
            f"Received: filepath={path}"
        )
    limit = float(max_shard_size) * 1024**3
    if not limit > 0:
        raise ValueError(f"`max_shard_size` must be positive. Received: {max_shard_size}")
    base = Path(path).name[: -len(INDEX_SUFFIX)]
    shards: list[dict[str, tuple[str | None, dict[str, np.ndarray]]]] = [{}]
    weight_map: dict[str, list[str]] = {}
    size = total = 0.0

    def shard_name(index: int) -> str:
        return f"{base}_{index:05d}{SHARD_SUFFIX}"

    for group_path, (name, arrays) in groups.items():
        items = arrays.items() if isinstance(arrays, dict) else enumerate(arrays)
        group = f"{group_path}/vars" if group_path else "vars"
        shards[-1].setdefault(group, (name, {}))
        for key, array in items:
            array = np.asarray(array)
            nbytes = math.prod(array.shape) * array.dtype.itemsize
            if nbytes > limit:
                raise ValueError(
                    f"The size of {key} ({group}) is {nbytes} bytes, which exceeds the maximum "
                    f"shard size {limit:.0f} bytes. You can increase the `max_shard_size` "
                    f"parameter to accommodate the size."
                )
            total += nbytes
            size += nbytes
            if size > limit:
                shards.append({})
                size = nbytes
            shards[-1].setdefault(group, (name, {}))[1][str(key)] = array
            names = weight_map.setdefault(f"/{group}", [])
            if shard_name(len(shards) - 1) not in names:
                names.append(shard_name(len(shards) - 1))
    directory = Path(path).parent
    targets = [directory / shard_name(i) for i in range(len(shards))]
    if not overwrite:
        existing = [str(p) for p in [Path(path), *targets] if p.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} already exist(s) (overwrite=False).")
    for target, shard in zip(targets, shards):
        payload = layout.h5_bytes(
            {layer_state.group_path(group): (name, items) for group, (name, items) in shard.items()}
        )
        atomic_write_bytes(target, payload, overwrite=overwrite)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    atomic_write_bytes(path, json.dumps(index, indent=4).encode("utf-8"), overwrite=overwrite)
    return [str(target) for target in targets]
