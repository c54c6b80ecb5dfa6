"""Layers' own saving hooks in model files, as Keras 3 calls them.

Keras' saving walks the model (``keras_format.weight_map.saveables``: the model, then its
layers, each at a path such as ``layers/dense_1``) and, for every object on the way:

- ``save_own_variables(store)`` / ``load_own_variables(store)``: a dict-like ``store``
  of arrays under string keys (``"0"``, ``"1"``, ... by default); dendrite calls them on
  the layers whose class overrides either hook (``weight_map.has_own_hooks``): every other
  weight is placed by dendrite itself, as before;
- ``save_assets(dir_path)`` / ``load_assets(dir_path)``: a directory of the layer's
  files (a vocabulary), stored in the zip as ``assets/<path>/<file>``.

Loading calls, per object and in the walk's order, ``load_own_variables`` then
``load_assets``, after the architecture is rebuilt, every weight is checked and assigned,
and a model's own ``compile_from_config`` has run (Keras' order). ``load_assets`` gets a
temporary directory holding only that layer's files, extracted from the zip under the same
checks as every other member (``check_asset_name``: no absolute paths, no ``..``, no
links, bounded sizes and counts); it is deleted once loading ends. A file's assets or
variables for a layer the model lacks, or one that does not read them, are refused.
Nothing from the file is executed: the hooks are the layer classes' own code.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dendrite.saving.errors import ModelLoadError

ASSETS_PREFIX = "assets/"
MAX_ASSET_FILES = 1024
MAX_ASSET_BYTES = 1 << 30  # all of a file's assets together
MAX_ASSET_DEPTH = 32
MAX_KEY_LENGTH = 256
_FORBIDDEN = set('\\:*?"<>|')


# --- the walk ------------------------------------------------------------------------
def saveables(model: Any) -> list[tuple[str, Any]]:
    """(path, object) in Keras' saving order (see the module docstring)."""
    from dendrite.saving.keras_format.weight_map import saveables as walk

    return walk(model)


def hooked(visits: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The visited objects whose class overrides the own-variable hooks."""
    from dendrite.saving.keras_format.weight_map import has_own_hooks

    return [(path, obj) for path, obj in visits if has_own_hooks(obj)]


def vars_group(path: str) -> str:
    """The group of the object at ``path`` in Keras' layout (``<path>/vars``)."""
    return f"{path}/vars" if path else "vars"


def group_path(group: str) -> str:
    """The object path of a ``vars`` group: the inverse of ``vars_group``."""
    return group[: -len("/vars")] if group.endswith("/vars") else ""


# --- own variables -----------------------------------------------------------------------
def _as_array(value: Any, where: str) -> np.ndarray:
    data = getattr(value, "data", value)
    array = np.asarray(data.numpy() if hasattr(data, "numpy") else data)
    if array.dtype.kind not in "fiub" or array.dtype.fields is not None:
        raise ValueError(
            f"{where} is {array.dtype}; a model file stores only numeric arrays (keep text "
            f"in save_assets)."
        )
    return np.array(array, order="C", copy=True)


def check_key(key: Any, where: str, error: type[Exception] = ValueError) -> str:
    """A store key: a short, non-empty string without ``/`` or control characters (else
    ``error``: a loader passes its own)."""
    if (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_KEY_LENGTH
        or "/" in key
        or any(ord(ch) < 32 for ch in key)
    ):
        raise error(
            f"{where}: the store key {key!r} is not a short string without '/' or control "
            f"characters."
        )
    return key


class _WriteStore(dict):
    """The dict ``save_own_variables`` fills: keys checked, values copied as arrays."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def __setitem__(self, key: str, value: Any) -> None:
        check_key(key, self.where)
        super().__setitem__(key, _as_array(value, f"{self.where}: store[{key!r}]"))


def collect_own_variables(visits: list[tuple[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """``{vars group: {key: array}}`` from every hooked layer's ``save_own_variables``
    (a layer's ``keras_state_aliases`` repeat its store under those child paths, where
    Keras' own class keeps a sublayer with the same state)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for path, layer in hooked(visits):
        store = _WriteStore(f"layer '{getattr(layer, 'name', path)}' ({path or 'the model'})")
        layer.save_own_variables(store)
        groups[vars_group(path)] = dict(store)
        for alias in getattr(layer, "keras_state_aliases", ()):
            groups[vars_group(f"{path}/{alias}" if path else alias)] = dict(store)
    return groups


class VariableStore(Mapping):
    """The read-only, dict-like store ``load_own_variables`` receives: arrays under string
    keys, each read from the file only when asked for (after every check has passed)."""

    def __init__(self, readers: dict[str, Callable[[], np.ndarray]]) -> None:
        self._readers = dict(readers)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._readers:
            raise KeyError(key)
        return self._readers[key]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def __repr__(self) -> str:
        return f"VariableStore({sorted(self._readers)})"


def owned_groups(visits: list[tuple[str, Any]]) -> dict[str, Any]:
    """``{vars group: layer}`` for the hooked layers (their aliases included)."""
    groups: dict[str, Any] = {}
    for path, layer in hooked(visits):
        groups[vars_group(path)] = layer
        for alias in getattr(layer, "keras_state_aliases", ()):
            groups[vars_group(f"{path}/{alias}" if path else alias)] = layer
    return groups


# --- assets ----------------------------------------------------------------------------
def collect_assets(visits: list[tuple[str, Any]]) -> dict[str, bytes]:
    """``{"assets/<path>/<file>": bytes}`` from every ``save_assets``, in a temporary
    directory removed afterwards. Only regular files are taken (a link is refused)."""
    members: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="dendrite-assets-") as root:
        base = Path(root, "assets")
        base.mkdir()
        for path, layer in visits:
            save = getattr(layer, "save_assets", None)
            if save is None:
                continue
            directory = base.joinpath(*path.split("/")) if path else base
            directory.mkdir(parents=True, exist_ok=True)
            save(str(directory))
        total = 0
        for current, dirs, files in os.walk(base, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                file = Path(current, name)
                info = file.lstat()
                relative = file.relative_to(base).as_posix()
                if not stat.S_ISREG(info.st_mode):
                    raise ValueError(
                        f"save_assets wrote {relative!r}, which is not a regular file (a link "
                        f"or a device); only regular files are saved."
                    )
                total += info.st_size
                if len(members) >= MAX_ASSET_FILES or total > MAX_ASSET_BYTES:
                    raise ValueError(
                        f"The layers' assets exceed {MAX_ASSET_FILES} files or "
                        f"{MAX_ASSET_BYTES} bytes; a model file holds no more."
                    )
                name = ASSETS_PREFIX + relative
                check_asset_name(name, "save_assets", ValueError)
                members[name] = file.read_bytes()
    return members


def check_asset_name(name: str, what: str, error: type = ModelLoadError) -> tuple[str, ...]:
    """The path components of the asset member ``name`` (``assets/a/b.txt`` -> ``("a",
    "b.txt")``), refusing absolute paths, ``.`` and ``..``, empty components, backslashes,
    drive letters, control characters and paths nested too deep."""
    if not name.startswith(ASSETS_PREFIX):
        raise error(f"{what}: {name!r} is not an asset member (assets/...).")
    parts = tuple(name[len(ASSETS_PREFIX) :].split("/"))
    bad = (
        not parts
        or len(parts) > MAX_ASSET_DEPTH
        or any(part in ("", ".", "..") for part in parts)
        or any(ch in _FORBIDDEN or ord(ch) < 32 for part in parts for ch in part)
        or any(len(part) > 255 for part in parts)
    )
    if bad:
        raise error(
            f"{what}: the asset member {name!r} is not a plain relative path under assets/ "
            f"(no '..', '.', empty parts, backslashes or drive letters; at most "
            f"{MAX_ASSET_DEPTH} levels)."
        )
    return parts


def is_link(info: Any) -> bool:
    """Whether a zip entry records a symbolic link (Unix mode in its external attributes)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def _owner(parts: tuple[str, ...], readers: dict[str, Any]) -> str | None:
    """The longest layer path that is a proper prefix of an asset's directory."""
    for cut in range(len(parts) - 1, -1, -1):
        path = "/".join(parts[:cut])
        if path in readers:
            return path
    return None


def extract_assets(
    names: list[str],
    read: Callable[[str], bytes],
    visits: list[tuple[str, Any]],
    root: str,
    what: str,
) -> dict[str, str]:
    """Write the asset members ``names`` under ``root`` (a fresh temporary directory) and
    return ``{layer path: its directory}`` for the layers that will ``load_assets``. Every
    asset must belong to a visited layer with ``load_assets``."""
    readers = {path: obj for path, obj in visits if getattr(obj, "load_assets", None)}
    base = Path(root, "assets").resolve()
    base.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for name in names:
        parts = check_asset_name(name, what)
        owner = _owner(parts, readers)
        if owner is None:
            raise ModelLoadError(
                f"{what}: the asset {name!r} belongs to no layer of the rebuilt model that "
                f"loads assets (load_assets); the file does not match the architecture."
            )
        used.add(owner)
        target = base.joinpath(*parts)
        if os.path.commonpath([str(base), str(target.parent.resolve())]) != str(base):
            raise ModelLoadError(f"{what}: the asset {name!r} escapes the assets directory.")
        payload = read(name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as stream:
                stream.write(payload)
        except OSError as problem:
            raise ModelLoadError(
                f"{what}: the asset {name!r} cannot be extracted: {problem}"
            ) from None
    return {
        path: str(base.joinpath(*path.split("/")) if path else base)
        for path in readers
        if path in used
    }


# --- restoring ---------------------------------------------------------------------------
def restore(
    visits: list[tuple[str, Any]],
    stores: dict[str, VariableStore] | None,
    asset_dirs: dict[str, str],
    what: str,
) -> None:
    """Call, in Keras' order, each hooked layer's ``load_own_variables`` (when ``stores``
    is given: ``{vars group: store}``, an empty store for a group the file lacks) and each
    layer's ``load_assets`` for which the file holds assets."""
    from dendrite.saving.keras_format.weight_map import has_own_hooks

    for path, layer in visits:
        label = f"layer '{getattr(layer, 'name', path)}' ({path or 'the model'})"
        if stores is not None and has_own_hooks(layer):
            store = stores.get(vars_group(path), VariableStore({}))
            _call(layer.load_own_variables, store, label, "load_own_variables", what)
        if path in asset_dirs:
            _call(layer.load_assets, asset_dirs[path], label, "load_assets", what)


def _call(hook: Callable[[Any], Any], argument: Any, label: str, name: str, what: str) -> None:
    try:
        hook(argument)
    except ModelLoadError:
        raise
    except Exception as problem:  # the layer's own code: any error is the file's mismatch
        raise ModelLoadError(
            f"{what}: {label} could not load its state ({name}): "
            f"{type(problem).__name__}: {problem}"
        ) from problem


def check_groups(groups: list[str], visits: list[tuple[str, Any]], what: str) -> None:
    """Every stored own-variable group must belong to a hooked layer of the model."""
    owned = owned_groups(visits)
    extra = sorted(group for group in groups if group not in owned)
    if extra:
        raise ModelLoadError(
            f"{what} holds own variables for {', '.join(extra[:6])}, which no layer of the "
            f"rebuilt model with save_own_variables/load_own_variables has: the file does "
            f"not match the architecture."
        )
