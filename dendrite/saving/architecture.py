"""A model's architecture as JSON, and the checks a stranger's architecture must pass.

``encode_model`` writes Keras's entry ``{"module", "class_name", "registered_name",
"config", "build_config"}``, with custom activations saved by their registered names.

``check_architecture`` (``architecture_checks.py``) walks a parsed entry before anything is
built; ``build_model`` then builds under a weight budget: creating more weight elements
than the file holds fails before the allocation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from dendrite import registry
from dendrite.layers.weight_budget import weight_budget as layer_weight_budget
from dendrite.registry import custom_objects as registration
from dendrite.registry import serialization
from dendrite.saving.architecture_checks import (
    ACTIVATION_KEYS,
    _builtin_activation,
)
from dendrite.saving.errors import ModelLoadError

DEFAULT_WEIGHT_BUDGET = 1 << 30  # weight elements model_from_json may create


# --- saving ---------------------------------------------------------------------------------
def encode_model(model: Any) -> dict[str, Any]:
    """Keras's serialized entry for ``model``: class, config and build shape."""
    cls = type(model)
    config = model.get_config()
    config = _registered_activation_names(config)
    config = _string_tensor_dtypes(config)
    entry: dict[str, Any] = {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "registered_name": registration.get_registered_name(cls)
        if registration.is_registered(cls)
        else None,
        "config": config,
        "build_config": None,
    }
    if _overrides(cls, "get_build_config"):  # a user's own build state
        entry["build_config"] = _jsonable(model.get_build_config())
        return entry
    shape = getattr(model, "_built_input_shape", None) or getattr(model, "_build_input_shape", None)
    if shape is not None:
        entry["build_config"] = {"input_shape": _jsonable_shape(shape)}
    return entry


def _overrides(cls: type, method: str) -> bool:
    """Whether ``cls`` (a user's class) replaces the ``Layer`` ``method`` Keras lets one
    override."""
    from dendrite.layers.base import Layer

    return getattr(cls, method, None) is not getattr(Layer, method)


def _jsonable(value: Any) -> Any:
    """Tuples as lists, for JSON, all the way down."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _string_tensor_dtypes(node: Any) -> Any:
    """A functional config's string tensors (dtype ``object`` in dendrite) under Keras'
    name ``string``, the one the file checks accept."""
    if isinstance(node, list):
        return [_string_tensor_dtypes(v) for v in node]
    if not isinstance(node, dict):
        return node
    result = {k: _string_tensor_dtypes(v) for k, v in node.items()}
    config = result.get("config")
    if result.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
        if config.get("dtype") == "object":
            result["config"] = {**config, "dtype": "string"}
    return result


def _jsonable_shape(shape: Any) -> Any:
    if isinstance(shape, dict):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple, dict)):
        return [_jsonable_shape(s) for s in shape]
    return [None if s is None else int(s) for s in shape]


def _registered_activation_names(node: Any) -> Any:
    """Replace activation names of registered functions by ``"package>name"``."""
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key in ACTIVATION_KEYS and isinstance(value, str) and not _builtin_activation(value):
                value = _registered_name_for(value)
            result[key] = _registered_activation_names(value)
        return result
    if isinstance(node, (list, tuple)):
        return type(node)(_registered_activation_names(v) for v in node)
    return node


def _registered_name_for(name: str) -> str:
    if name in registration.GLOBAL_CUSTOM_OBJECTS:
        return name
    matches = [
        key
        for key, obj in registration.GLOBAL_CUSTOM_OBJECTS.items()
        if getattr(obj, "__name__", None) == name
    ]
    return matches[0] if len(matches) == 1 else name


def json_default(value: Any) -> Any:
    """``json.dumps``' ``default`` for model configs: NumPy scalars, arrays and dtypes
    become numbers, lists and names; anything else is refused, saying what to do."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.dtype):
        return value.name
    raise TypeError(
        f"Cannot save a value of type {type(value).__name__} ({value!r}) in a model "
        f"config: get_config must return JSON values (register custom objects and save "
        f"them by name)."
    )


def to_json_bytes(document: Any) -> bytes:
    """JSON bytes; numpy scalars and arrays become numbers and lists."""
    import json

    try:
        return json.dumps(document, default=json_default, indent=1).encode("utf-8")
    except TypeError as error:
        raise ValueError(str(error)) from None


# --- building -------------------------------------------------------------------------------
@contextlib.contextmanager
def weight_budget(max_elements: int | None, what: str) -> Iterator[None]:
    """While building (in this thread), refuse to create more than ``max_elements`` weight
    elements in total: the check runs before each weight is allocated."""
    if max_elements is None:
        yield
        return

    def refuse(layer: Any, shape: tuple) -> ModelLoadError:
        if any(d < 0 for d in shape):
            return ModelLoadError(
                f"{what}: layer '{layer.name}' asks for a weight of shape {shape}."
            )
        return ModelLoadError(
            f"{what}: building layer '{layer.name}' needs a weight of shape {shape}, past the "
            f"{max_elements} weight values the file holds: the architecture does not match "
            f"the weights."
        )

    with layer_weight_budget(max_elements, refuse):
        yield


def build_model(
    entry: dict[str, Any],
    custom_objects: dict[str, Any],
    weight_elements: int | None,
    what: str,
    expected_weights: int | None = None,
) -> Any:
    """A model from a checked entry: ``cls.from_config`` then ``build(input_shape)``.

    Layers that create their weights only when called are built by one pass on
    placeholder zeros, when the model has not ``expected_weights`` weights yet.

    Any failure while building (a layer rejecting its arguments, shapes that do not fit)
    becomes a ``ModelLoadError`` naming the file.
    """
    registered = entry.get("registered_name")
    cls = registry.find_entry("layer", entry["class_name"], registered, custom_objects)
    if cls is None:
        raise registry.unknown("layer", registered if registered else entry["class_name"])
    try:
        with (
            registration.custom_object_scope(custom_objects),
            weight_budget(weight_elements, what),
            np.errstate(all="ignore"),
        ):
            model = serialization.from_config(cls, entry["config"], custom_objects)
            build = entry.get("build_config")
            if build and (_overrides(cls, "build_from_config") or "input_shape" not in build):
                model.build_from_config(build)  # the user's own, or Keras' shapes_dict
            elif build:
                shape = build["input_shape"]
                shape = tuple(shape) if _flat_shape(shape) else shape
                if not model.built:
                    model.build(shape)
                if expected_weights is None or len(model.weights) != expected_weights:
                    # Some layers compute output shapes without building their weights;
                    # one pass on placeholder zeros builds them (inside the weight budget).
                    from dendrite.layers.symbolic import infer_output_shape

                    infer_output_shape(model, shape)
    except ModelLoadError:
        raise
    except RecursionError:
        raise ModelLoadError(f"{what}: the architecture is nested too deeply to build.") from None
    except MemoryError:
        raise ModelLoadError(f"{what}: building the architecture needs too much memory.") from None
    except Exception as error:
        raise ModelLoadError(
            f"{what}: the architecture could not be rebuilt: {type(error).__name__}: {error}"
        ) from None
    return model


def _flat_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(s is None or isinstance(s, int) for s in shape)
