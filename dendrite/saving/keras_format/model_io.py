"""Keras 3 files in and out: ``load_keras_model`` / ``save_keras_model`` for ``.keras``
zips, ``load_keras_weights`` / ``save_keras_weights`` for ``.weights.h5`` in Keras' layout.

Loading checks, in order and before any weight changes: the zip directory, the JSON, the
HDF5 structure (links, storage, dtypes, shapes: metadata only), the architecture (class
names through the registry, never imported; no bytecode; sizes bounded by the weights the
file holds), then every weight's shape against the rebuilt model, and only then reads the
data and assigns it.
"""

from __future__ import annotations

import json
import math
import tempfile
from typing import Any

import numpy as np

from dendrite.registry import custom_objects as registration
from dendrite.saving import architecture, compile_config, layer_state
from dendrite.saving.architecture_checks import check_architecture
from dendrite.saving.errors import ModelLoadError, WeightsLoadError
from dendrite.saving.keras_format import config_in, config_out, layout, optimizer_map
from dendrite.saving.keras_format.weight_map import slots
from dendrite.saving.safe_json import loads_checked

IGNORED_GROUPS = ("seed_generator",)  # random state: dendrite keeps its own


# --- loading --------------------------------------------------------------------------------
def load_keras_model(
    path: str,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,  # noqa: A002
) -> Any:
    """A model from a Keras 3 ``.keras`` file (see the module docstring)."""
    what = path
    layout.check_keras_features(layout.zip_names(path), what)
    with layout.open_keras_zip(path) as members:
        document = loads_checked(members[layout.CONFIG], f"{what} (config.json)")
        if not isinstance(document, dict):
            raise ModelLoadError(f"{what}: config.json must hold a JSON object.")
        payload = members[layout.WEIGHTS] if layout.WEIGHTS in members else None
        store = layout.H5Store(payload, f"{what} ({layout.WEIGHTS})") if payload else None
        try:
            return _load(document, store, what, custom_objects, compile, members)
        finally:
            if store is not None:
                store.close()


def own_stores(store: layout.H5Store | None, visits: list) -> dict[str, layer_state.VariableStore]:
    """The stores the hooked layers' ``load_own_variables`` get: their ``vars`` groups,
    read only when a key is asked for."""
    if store is None:
        return {}
    stores = {}
    for group in layer_state.owned_groups(visits):
        items = store.groups.get(group, {})
        readers = {str(key): (lambda group=group, key=key: store.read(group, key)) for key in items}
        stores[group] = layer_state.VariableStore(readers)
    return stores


def _load(document, store, what, custom_objects, compile, members):  # noqa: ANN001, ANN202, A002
    entry = config_in.translate_entry(document, what)
    elements = 0
    if store is not None:
        for group in store.groups.values():
            elements += sum(math.prod(item.shape) for item in group.values())
    custom = registration.all_custom_objects(custom_objects)
    entry = check_architecture(entry, custom, elements, what)
    own_protocol = compile_config.uses_own_protocol(entry, custom)
    settings = None if own_protocol else config_in.compile_settings(document, what)
    arguments = None
    if compile and settings is not None:
        arguments = compile_config.decode_compile(settings, custom, what)
    model = architecture.build_model(entry, custom, elements, what)
    if compile and own_protocol and document.get("compile_config") is not None:
        # Keras 3's order: build_from_config, then the model's own compile_from_config.
        compile_config.replay_own_compile(model, document["compile_config"], custom, what)
    visits = layer_state.saveables(model)
    with tempfile.TemporaryDirectory(prefix="dendrite-assets-") as root:
        # Every asset is checked and extracted before any weight changes.
        names = members.asset_names()
        asset_dirs = layer_state.extract_assets(names, members.__getitem__, visits, root, what)
        if store is not None:
            assign(model, store, what, ModelLoadError)
        elif model.weights:
            raise ModelLoadError(f"{what} holds no {layout.WEIGHTS} but the model has weights.")
        layer_state.restore(visits, own_stores(store, visits), asset_dirs, what)
    if arguments is not None:
        compile_config.compile_from_file(model, arguments, what)
        if store is not None:
            optimizer_map.restore(model, store, what)
    return model


def assign(model: Any, store: layout.H5Store, what: str, error: type, skip_mismatch=False):  # noqa: ANN001, ANN201
    """Check every weight of ``model`` against the store's metadata, then read and assign
    them all; a weight the file lacks, or one the model lacks, is an error."""
    try:
        places, _ = slots(model)
    except ValueError as problem:
        raise error(f"{what}: {problem}") from None
    pairs = []
    owned = set(layer_state.owned_groups(layer_state.saveables(model)))
    used: set[tuple[str, int]] = set()
    for slot in places:
        used.add((slot.group, slot.index))
        shape = store.shape(slot.group, slot.index)
        label = str(getattr(slot.variable, "path", None) or "count")
        layer, _, weight = label.rpartition("/")
        if shape is None:
            message = (
                f"{what}: the file has no {slot.group}/{slot.index} for layer '{layer}' weight "
                f"'{weight}'."
            )
            if skip_mismatch:
                continue
            raise error(message + " The architecture does not match the weights.")
        if (
            shape != slot.keras_shape
            or store.dtype(slot.group, slot.index).kind != slot.keras_dtype.kind
        ):
            message = (
                f"{what}: layer '{layer}' weight '{weight}' expects shape {slot.keras_shape} "
                f"({slot.keras_dtype}), but the file's {slot.group}/{slot.index} has shape "
                f"{shape} ({store.dtype(slot.group, slot.index)})."
            )
            if skip_mismatch:
                import warnings

                warnings.warn(f"Skipping: {message}", stacklevel=3)
                continue
            raise error(message)
        if slot.variable is not None:
            pairs.append(slot)
    extra = sorted(
        f"{group}/{index}"
        for group, items in store.groups.items()
        if not group.startswith("optimizer/")
        and not any(p in group for p in IGNORED_GROUPS)
        and group not in owned
        for index in items
        if (group, index) not in used
    )
    if extra and not skip_mismatch:
        listed = ", ".join(extra[:8]) + (", ..." if len(extra) > 8 else "")
        raise error(
            f"{what} holds weights the rebuilt model '{model.name}' has no place for "
            f"({listed}): the architecture does not match the weights."
        )
    values = [(slot, store.read(slot.group, slot.index)) for slot in pairs]
    for slot, value in values:
        slot.variable.data[...] = slot.from_keras(value).astype(slot.variable.data.dtype)


def load_keras_weights(model: Any, path: str, payload: bytes, skip_mismatch: bool = False) -> None:
    """``load_weights`` for a ``.weights.h5`` file in Keras' layout (its bytes read)."""
    with layout.H5Store(payload, path, WeightsLoadError) as store:
        _assign_weights_only(model, store, path, skip_mismatch)


def _assign_weights_only(model: Any, store: Any, path: str, skip_mismatch: bool) -> None:
    assign(model, store, path, WeightsLoadError, skip_mismatch)
    visits = layer_state.saveables(model)
    try:
        layer_state.restore(visits, own_stores(store, visits), {}, path)
    except ModelLoadError as problem:
        raise WeightsLoadError(str(problem)) from None
    if getattr(model, "optimizer", None) is not None and getattr(model, "_compiled", False):
        try:
            optimizer_map.restore(model, store, path, strict=False)
        except ModelLoadError as problem:
            raise WeightsLoadError(str(problem)) from None


# --- saving ---------------------------------------------------------------------------------
def weights_payload(model: Any, include_optimizer: bool = True) -> bytes:
    """Keras' HDF5 variable store for ``model`` (and its optimizer)."""
    return layout.h5_bytes(weights_groups(model, include_optimizer))


def weights_groups(model: Any, include_optimizer: bool = True) -> dict[str, tuple[Any, Any]]:
    """Keras' variable groups for ``model`` (and its optimizer), in Keras' saving order:
    path -> (object name, arrays in order, or a hooked layer's store)."""
    places, names = slots(model)
    groups: dict[str, tuple[str | None, list[np.ndarray]]] = {
        path: (name, []) for path, name in names.items()
    }
    for slot in sorted(places, key=lambda s: (s.group, s.index)):
        path = layer_state.group_path(slot.group)
        name, arrays = groups.setdefault(path, (None, []))
        if len(arrays) != slot.index:
            raise ValueError(f"weights of {path} are not numbered 0..n-1")
        arrays.append(slot.to_keras())
    visits = layer_state.saveables(model)
    owners = layer_state.owned_groups(visits)
    for group, store in layer_state.collect_own_variables(visits).items():
        path = layer_state.group_path(group)
        groups[path] = (str(getattr(owners[group], "name", path)), store)
    if include_optimizer and getattr(model, "_compiled", False):
        state = optimizer_map.arrays(model)
        if state is not None:
            groups["optimizer"] = (str(getattr(model.optimizer, "name", "optimizer")), state)
            groups.update(optimizer_map.nested_groups(model))  # MultiOptimizer's, as Keras
    return groups


def save_keras_model(
    model: Any, path: str, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file, atomically."""
    document = config_out.keras_document(model, include_optimizer)
    config = json.dumps(document, default=architecture.json_default).encode("utf-8")
    weights = weights_payload(model, include_optimizer)
    assets = layer_state.collect_assets(layer_state.saveables(model))
    layout.write_keras_zip(path, config, weights, overwrite, assets)


def save_keras_weights(
    model: Any, path: str, overwrite: bool = True, max_shard_size: float | None = None
) -> None:
    """Write ``model``'s weights (and its optimizer's) as Keras' ``.weights.h5``, or, with
    ``max_shard_size`` (gigabytes), as Keras' sharded ``.weights.json`` index and shards."""
    if max_shard_size is not None:
        from dendrite.saving.keras_format import sharded

        sharded.save_sharded(weights_groups(model), path, max_shard_size, overwrite)
        return
    layout.write_weights_file(path, weights_payload(model), overwrite)


def load_sharded_weights(model: Any, path: str, skip_mismatch: bool = False) -> None:
    """``load_weights`` for Keras' sharded ``.weights.json`` (see ``sharded``)."""
    from dendrite.saving.keras_format import sharded

    try:
        store = sharded.ShardedStore(path)
    except WeightsLoadError:
        raise
    except ModelLoadError as problem:  # the index's JSON
        raise WeightsLoadError(str(problem)) from None
    with store:
        _assign_weights_only(model, store, path, skip_mismatch)
