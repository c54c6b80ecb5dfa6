"""``save_model`` / ``load_model``: a whole model in one zip file, never pickle.

The ``.dendrite`` file holds (a ``.keras`` path is written in Keras 3's own format, and
read in either: see ``keras_format``):

- ``config.json``: format and dendrite versions, the architecture (Keras's
  ``class_name``/``config``/``build_config``), the compile settings, and how the optimizer
  state maps onto the model's weights;
- ``model.weights.safetensors``: ``model.weights`` in order;
- ``optimizer.safetensors``: ``optimizer.variables`` (iterations, learning rate, slots);
- ``own_variables.safetensors`` (when a layer overrides Keras' ``save_own_variables`` /
  ``load_own_variables``): what those hooks stored, as ``<layer path>/vars/<key>``;
- ``assets/<layer path>/...``: the files layers' ``save_assets`` wrote (``layer_state``).

It is written atomically. Loading checks the zip, the JSON, every class name, every tensor
header (read from the start of its member, never inflating the data) and the sizes before
building anything, then checks every weight's shape and dtype against the built
architecture before inflating the weights or assigning any; a bad file raises one
``ModelLoadError`` that says what is wrong.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from dendrite.registry import custom_objects as registration
from dendrite.saving import architecture, compile_config, layer_state
from dendrite.saving.architecture_checks import check_architecture
from dendrite.saving.archive import Archive, open_archive, read_archive, write_archive
from dendrite.saving.errors import ModelLoadError
from dendrite.saving.safe_json import MAX_JSON_BYTES, loads_checked
from dendrite.saving.safetensors_io import read_tensors, tensors_to_bytes
from dendrite.saving.weights import (
    MODEL_SUFFIXES,
    check_against,
    load_into,
    ordered_names,
    variables_to_dict,
)

FORMAT = "dendrite.model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
OWN_VARIABLES = "own_variables.safetensors"
TENSOR_LIMIT = 1 << 40
_DOCUMENT_KEYS = {
    "format": str,
    "format_version": int,
    "dendrite_version": str,
    "date_saved": str,
    "module": (str, type(None)),
    "class_name": str,
    "registered_name": (str, type(None)),
    "config": dict,
    "build_config": (dict, type(None)),
    "compile_config": (dict, type(None)),
    "optimizer_state": (dict, type(None)),
}


def _version() -> str:
    # The package is loaded before any of its modules; reading it needs no import.
    return str(getattr(sys.modules.get("dendrite"), "__version__", "unknown"))


def model_document(model: Any, include_optimizer: bool = True) -> tuple[dict, dict[str, bytes]]:
    """(config.json document, tensor members) describing ``model``."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dendrite_version": _version(),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **architecture.encode_model(model),
        "compile_config": None,
        "optimizer_state": None,
    }
    members = {
        WEIGHTS: tensors_to_bytes(variables_to_dict(model.weights), {"format": "dendrite.weights"})
    }
    if include_optimizer and getattr(model, "_compiled", False):
        if compile_config.overrides_compile_protocol(type(model)):
            document["compile_config"] = compile_config.own_compile_config(model)
        else:
            document["compile_config"] = compile_config.encode_compile(model)
        state = compile_config.encode_optimizer_state(model)
        if state is not None:
            document["optimizer_state"], members[OPTIMIZER] = state
    visits = layer_state.saveables(model)
    own = layer_state.collect_own_variables(visits)
    if own:
        tensors = {
            f"{group}/{key}": array for group, store in own.items() for key, array in store.items()
        }
        members[OWN_VARIABLES] = tensors_to_bytes(tensors, {"format": "dendrite.own_variables"})
    members.update(layer_state.collect_assets(visits))
    return document, members


def save_model(
    model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True, **kwargs
) -> None:
    """Save the architecture, weights, compile settings and optimizer state to one file
    (``.dendrite``, or ``.keras`` in Keras 3's own format), atomically: a crash mid-save
    leaves the old file."""
    if kwargs.pop("zipped", True) is False:
        raise ValueError("dendrite model files are always zipped; zipped=False is not supported.")
    if kwargs:
        raise TypeError(f"save_model() got unexpected arguments {sorted(kwargs)}.")
    path = str(filepath)
    if not path.endswith(MODEL_SUFFIXES):
        raise ValueError(
            f"Invalid filepath extension for saving. Please add either a `.dendrite` or "
            f"`.keras` extension for the native model format (or use save_weights with a "
            f"`.weights.safetensors` file). Received: filepath={path}"
        )
    if path.endswith(".keras"):
        from dendrite.saving.keras_format.model_io import save_keras_model

        save_keras_model(model, path, overwrite, include_optimizer)
        return
    document, members = model_document(model, include_optimizer)
    write_archive(path, {CONFIG: architecture.to_json_bytes(document), **members}, overwrite)


LIMITS = {
    CONFIG: MAX_JSON_BYTES,
    WEIGHTS: TENSOR_LIMIT,
    OPTIMIZER: TENSOR_LIMIT,
    OWN_VARIABLES: TENSOR_LIMIT,
}


def read_model_members(path: Any) -> dict[str, bytes]:
    """The checked members of a model file (see ``archive.read_archive``)."""
    return read_archive(path, LIMITS, required=(CONFIG, WEIGHTS))  # no assets


def open_model_file(path: Any):
    """The model file at ``path``, open, its zip directory checked; members are inflated
    only when asked for (see ``archive.open_archive``)."""
    return open_archive(path, LIMITS, required=(CONFIG, WEIGHTS), assets=True)


def check_document(document: Any, what: str) -> None:
    """The top-level schema of config.json: known keys, their types, the format."""
    if not isinstance(document, dict):
        raise ModelLoadError(f"{what}: config.json must hold a JSON object.")
    if document.get("format") != FORMAT:
        raise ModelLoadError(
            f"{what}: config.json is not a dendrite model description (format is "
            f"{document.get('format')!r}, expected {FORMAT!r})."
        )
    unknown = set(document) - set(_DOCUMENT_KEYS)
    if unknown:
        raise ModelLoadError(f"{what}: config.json has unknown keys {sorted(unknown)}.")
    for key, kind in _DOCUMENT_KEYS.items():
        if key not in document:
            raise ModelLoadError(f"{what}: config.json lacks {key!r}.")
        value = document[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelLoadError(
                f"{what}: config.json {key!r} has the wrong type ({type(value).__name__})."
            )
    version = document["format_version"]
    if not 1 <= version <= FORMAT_VERSION:
        raise ModelLoadError(
            f"{what}: format version {version} is not supported by this dendrite "
            f"({_version()}, which reads versions 1..{FORMAT_VERSION}); it was saved by "
            f"dendrite {document['dendrite_version']}."
        )


def load_model(
    filepath: Any,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,  # noqa: A002 (Keras' name)
    safe_mode: bool = True,
) -> Any:
    """Load a model saved with ``model.save``: architecture, weights, compile settings and
    optimizer state. Custom classes and functions are found by their registered names
    (``register_keras_serializable``) or in ``custom_objects``; no code is read from the
    file (``safe_mode`` is accepted for Keras compatibility and is always on)."""
    path = str(filepath)
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError("custom_objects must be a dict of name -> class or function.")
    if not Path(path).exists():
        raise FileNotFoundError(f"No model file at {path}.")
    if path.endswith(".keras"):
        from dendrite.saving.keras_format import layout
        from dendrite.saving.keras_format.model_io import load_keras_model

        if layout.is_keras_zip(path):
            return load_keras_model(path, custom_objects, compile)
    with open_model_file(path) as members:
        return load_from_members(members, path, custom_objects, compile)


def load_from_members(
    members: Archive,
    what: str,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,  # noqa: A002
) -> Any:
    document = loads_checked(members[CONFIG], f"{what} (config.json)")
    check_document(document, what)
    # Only the tensor headers are read until every check that needs no data has passed.
    weight_infos, _ = members.header(WEIGHTS)
    ordered_names(weight_infos, f"{what} ({WEIGHTS})")
    weight_elements = sum(info.size for info in weight_infos.values())
    state = document["optimizer_state"]
    if state is not None and OPTIMIZER not in members:
        raise ModelLoadError(f"{what}: optimizer_state is described but {OPTIMIZER} is missing.")
    if OPTIMIZER in members:
        ordered_names(members.header(OPTIMIZER)[0], what)
    custom = registration.all_custom_objects(custom_objects)
    entry = check_architecture(document, custom, weight_elements, what)
    own_protocol = compile_config.uses_own_protocol(document, custom)
    arguments = None
    if compile and document["compile_config"] is not None and not own_protocol:
        arguments = compile_config.decode_compile(document["compile_config"], custom, what)
    model = architecture.build_model(entry, custom, weight_elements, what, len(weight_infos))
    owner = f"model '{model.name}'"
    if weight_infos and not model.weights and document["build_config"] is None:
        raise ModelLoadError(
            f"{what}: the file holds {len(weight_infos)} weights but the rebuilt model "
            f"'{model.name}' ({document['class_name']}) has none, and the file does not record "
            f"its input shape. Build the model before saving it (call it on data or "
            f"model.build(input_shape)), or load the weights with model.load_weights after "
            f"building a new instance."
        )
    check_against(model.weights, weight_infos, f"{what} ({WEIGHTS})", owner)
    visits = layer_state.saveables(model)
    stores = _own_variable_stores(members, visits, what)
    with tempfile.TemporaryDirectory(prefix="dendrite-assets-") as root:
        # Every asset is checked and extracted before any weight changes.
        assets = members.asset_names()
        asset_dirs = layer_state.extract_assets(assets, members.__getitem__, visits, root, what)
        load_into(model.weights, members[WEIGHTS], f"{what} ({WEIGHTS})", owner)
        if compile and own_protocol and document["compile_config"] is not None:
            compile_config.replay_own_compile(model, document["compile_config"], custom, what)
            if state is not None:
                compile_config.restore_optimizer_state(model, state, members, OPTIMIZER, what)
        layer_state.restore(visits, stores, asset_dirs, what)
    if arguments is not None:
        compile_config.compile_from_file(model, arguments, what)
        if state is not None:
            compile_config.restore_optimizer_state(model, state, members, OPTIMIZER, what)
    return model


def _own_variable_stores(
    members: Archive, visits: list, what: str
) -> dict[str, layer_state.VariableStore] | None:
    """The stores of the hooked layers, from ``own_variables.safetensors`` (None for a file
    written before it existed: those layers' hooks are then not called)."""
    if OWN_VARIABLES not in members:
        return None
    label = f"{what} ({OWN_VARIABLES})"
    infos, _ = members.header(OWN_VARIABLES)
    groups: dict[str, dict[str, str]] = {}
    for name in infos:
        group, _, key = name.rpartition("/")
        if not (group == "vars" or group.endswith("/vars")):
            raise ModelLoadError(f"{label}: tensor {name!r} is not named <layer path>/vars/<key>.")
        groups.setdefault(group, {})[layer_state.check_key(key, label, ModelLoadError)] = name
    layer_state.check_groups(list(groups), visits, label)
    tensors, _ = read_tensors(members[OWN_VARIABLES], label)
    return {
        group: layer_state.VariableStore(
            {key: (lambda name=name: tensors[name]) for key, name in keys.items()}
        )
        for group, keys in groups.items()
    }


def model_to_json(model: Any, **kwargs: Any) -> str:
    """The architecture as a JSON string (no weights): ``model.to_json()``, in Keras 3's
    spelling (what Keras' ``to_json`` writes and its ``model_from_json`` reads)."""
    from dendrite.saving.keras_format.config_out import keras_document

    document = keras_document(model, include_optimizer=False)
    document.pop("compile_config", None)
    return json.dumps(json.loads(architecture.to_json_bytes(document)), **kwargs)


def model_from_json(
    json_string: str | bytes,
    custom_objects: dict[str, Any] | None = None,
    max_weight_elements: int | None = architecture.DEFAULT_WEIGHT_BUDGET,
) -> Any:
    """A new (freshly initialised) model from ``to_json``'s output, Keras 3's, or dendrite's
    own spelling (what ``to_json`` wrote before it took Keras'), checked as a file's
    architecture is. ``max_weight_elements`` bounds the weights the JSON may create."""
    what = "model JSON"
    entry = loads_checked(json_string, what)
    if isinstance(entry, dict) and _own_spelling(entry):
        entry = {k: v for k, v in entry.items() if k not in ("format", "dendrite_version")}
    elif isinstance(entry, dict):
        from dendrite.saving.keras_format.config_in import translate_entry

        entry = translate_entry(entry, what)
    custom = registration.all_custom_objects(custom_objects)
    entry = check_architecture(entry, custom, None, what)
    return architecture.build_model(entry, custom, max_weight_elements, what)


def _own_spelling(entry: dict[str, Any]) -> bool:
    """Whether a model entry is in dendrite's own spelling (its modules), not Keras'."""
    module = entry.get("module")
    return entry.get("format") == FORMAT or (
        isinstance(module, str) and module.startswith("dendrite.")
    )
