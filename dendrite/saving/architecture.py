"""A model's architecture as JSON, and the checks a stranger's architecture must pass.

``encode_model`` writes Keras's entry ``{"module", "class_name", "registered_name",
"config", "build_config"}``, with custom activations saved by their registered names.

``check_architecture`` walks a parsed entry before anything is built: every
``class_name`` must be a class in ``dendrite.registry`` (a built-in layer, initializer,
regularizer, constraint, schedule, optimizer, loss or metric) or one the program registered
or passed in ``custom_objects`` -- names are looked up in the registry's tables, never
imported, so "os.system" is just an unknown name; every activation and ``Lambda`` function
must resolve the same way;
every dtype must be a numeric dtype; and the integers that size tensors are bounded, so a
small file cannot ask for a huge allocation while the model is built. ``build_model`` then
builds under a weight budget: creating more weight elements than the file holds fails
before the allocation.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from dendrite import registry
from dendrite.registry import custom_objects as registration
from dendrite.saving.errors import ModelLoadError

ACTIVATION_KEYS = ("activation", "recurrent_activation")
# Structural markers of Keras's functional config, and Keras's dtype policies (not classes
# dendrite builds: a dtype policy is read as its dtype name).
MARKERS = {"__keras_tensor__", "__tuple__", "DTypePolicy", "FloatDTypePolicy", "Policy"}
# The registry kinds whose classes a model config may name.
CONFIG_KINDS = (
    "layer",
    "initializer",
    "regularizer",
    "constraint",
    "schedule",
    "optimizer",
    "loss",
    "metric",
)
CODE_MARKERS = {"__lambda__", "__bytecode__", "function_type"}
NUMERIC_DTYPES = {
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",  # a string Input (TextVectorization); arrays of it never come from files
}
MAX_CLASS_ENTRIES = 20_000
MIN_SIZE_CAP = 1 << 24  # elements any one shape, or one size argument, may have
MIN_PRODUCT_CAP = 1 << 28  # product of one layer's size arguments (without shapes)
DEFAULT_WEIGHT_BUDGET = 1 << 30  # weight elements model_from_json may create


# --- saving ---------------------------------------------------------------------------------
def encode_model(model: Any) -> dict[str, Any]:
    """Keras's serialized entry for ``model``: class, config and build shape."""
    cls = type(model)
    config = model.get_config()
    config = _registered_activation_names(config)
    entry: dict[str, Any] = {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "registered_name": registration.get_registered_name(cls)
        if registration.is_registered(cls)
        else None,
        "config": config,
        "build_config": None,
    }
    shape = getattr(model, "_built_input_shape", None) or getattr(model, "_build_input_shape", None)
    if shape is not None:
        entry["build_config"] = {"input_shape": _jsonable_shape(shape)}
    return entry


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


def _builtin_activation(name: str) -> bool:
    return name in registry.table("activation", aliases=True)


def to_json_bytes(document: Any) -> bytes:
    """JSON bytes; numpy scalars and arrays become numbers and lists."""
    import json

    def default(value: Any) -> Any:
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

    try:
        return json.dumps(document, default=default, indent=1).encode("utf-8")
    except TypeError as error:
        raise ValueError(str(error)) from None


# --- checking a stranger's architecture -------------------------------------------------------
class _Walk:
    def __init__(self, custom: dict[str, Any], weight_elements: int | None) -> None:
        self.custom = custom
        self.entries = 0
        scale = 0 if weight_elements is None else weight_elements
        self.size_cap = max(MIN_SIZE_CAP, scale)
        self.product_cap = max(MIN_PRODUCT_CAP, 64 * scale)


def check_architecture(
    entry: Any, custom_objects: dict[str, Any], weight_elements: int | None, what: str
) -> dict[str, Any]:
    """Validate a model entry (see the module docstring) and return a copy whose custom
    activation names are replaced by the registered functions. Raises ``ModelLoadError``."""
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{what}: the model entry must be an object, got {_kind(entry)}.")
    for key in ("class_name", "config"):
        if key not in entry:
            raise ModelLoadError(f"{what}: the model entry lacks {key!r}.")
    if not isinstance(entry["config"], dict):
        raise ModelLoadError(f"{what}: the model's config must be an object.")
    build = entry.get("build_config")
    if build is not None and (
        not isinstance(build, dict) or not _shape_like(build.get("input_shape"))
    ):
        raise ModelLoadError(f"{what}: build_config must be {{'input_shape': [...]}}.")
    walk = _Walk(custom_objects, weight_elements)
    cls = _resolve_class(entry["class_name"], walk, "model", what)
    if not _is_layer_class(cls):
        raise ModelLoadError(f"{what}: the model class {entry['class_name']!r} is not a model.")
    return _check(entry, walk, "model", what)


def _check(node: Any, walk: _Walk, path: str, what: str) -> Any:
    if isinstance(node, dict):
        if "class_name" in node:
            walk.entries += 1
            if walk.entries > MAX_CLASS_ENTRIES:
                raise ModelLoadError(
                    f"{what}: more than {MAX_CLASS_ENTRIES} objects in the config."
                )
            cls = _resolve_class(node["class_name"], walk, path, what)
            if _is_layer_class(cls) and isinstance(node.get("config"), dict):
                _check_sizes(node["config"], walk, f"{path} ({node['class_name']})", what)
                if getattr(cls, "__name__", "") == "Lambda":
                    _check_lambda(node["config"], walk, path, what)
        result = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise ModelLoadError(f"{what}: a non-string key at {path}.")
            here = f"{path}.{key}"
            if key in CODE_MARKERS:
                raise ModelLoadError(
                    f"{what}: {here} holds Python code; dendrite never loads code from files."
                )
            if key in ACTIVATION_KEYS and isinstance(value, str):
                result[key] = _resolve_activation(value, walk, here, what)
                continue
            if (key == "dtype" or key.endswith("_dtype")) and value is not None:
                _check_dtype(value, here, what)
            result[key] = _check(value, walk, here, what)
        return result
    if isinstance(node, list):
        return [_check(v, walk, f"{path}[{i}]", what) for i, v in enumerate(node)]
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    raise ModelLoadError(f"{what}: unexpected value of type {_kind(node)} at {path}.")


def _resolve_class(name: Any, walk: _Walk, path: str, what: str) -> Any:
    if not isinstance(name, str) or not name:
        raise ModelLoadError(f"{what}: class_name at {path} must be a non-empty string.")
    if name in CODE_MARKERS:
        raise ModelLoadError(
            f"{what}: {path} is a {name!r} (Python code); dendrite never loads code from files."
        )
    if name in MARKERS:
        return name
    found = walk.custom.get(name)
    if found is not None:
        return found
    for kind in CONFIG_KINDS:
        found = registry.find(kind, name, walk.custom)
        if isinstance(found, type):
            return found
    raise ModelLoadError(f"{what}: at {path}: {registration.how_to_register('class', name)}")


def _is_layer_class(cls: Any) -> bool:
    from dendrite.layers.base import Layer

    return isinstance(cls, type) and issubclass(cls, Layer)


def _resolve_activation(name: str, walk: _Walk, path: str, what: str) -> Any:
    if _builtin_activation(name):
        return name
    found = walk.custom.get(name)
    if callable(found):
        return found
    raise ModelLoadError(f"{what}: at {path}: {registration.how_to_register('activation', name)}")


def _check_lambda(config: dict, walk: _Walk, path: str, what: str) -> None:
    from dendrite.layers.lambda_layer import resolve_function

    for key in ("function", "mask"):
        value = config.get(key)
        if value is None and key == "mask":
            continue
        if isinstance(value, str) and value in walk.custom and callable(walk.custom[value]):
            continue
        try:
            resolve_function(value, str(config.get("name", "lambda")), key)
        except ValueError as error:
            raise ModelLoadError(f"{what}: at {path}: {error}") from None


def _check_dtype(value: Any, path: str, what: str) -> None:
    if isinstance(value, dict):  # Keras's {"class_name": "DTypePolicy", "config": {"name"}}
        inner = value.get("config")
        value = inner.get("name") if isinstance(inner, dict) else None
        if value is None:
            return
    if not isinstance(value, str) or value.replace("mixed_", "") not in NUMERIC_DTYPES:
        raise ModelLoadError(
            f"{what}: {path} is {value!r}; expected one of {', '.join(sorted(NUMERIC_DTYPES))}."
        )


def _shape_like(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_shape_like(v) for v in value.values())
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        return all(_shape_like(v) for v in value)
    return isinstance(value, list) and all(
        v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value
    )


def _check_sizes(config: dict, walk: _Walk, path: str, what: str) -> None:
    """Bound one layer's own integers: each shape's element count, each size argument, and
    the product of its size arguments (nested objects are checked on their own)."""
    product = 1
    for key, value in config.items():
        if "seed" in key or isinstance(value, dict) and "class_name" in value:
            continue
        if key == "layers":
            continue
        numbers = [n for n in _integers(value) if n > 1]
        if "shape" in key:
            elements = math.prod(numbers)
            if elements > walk.size_cap:
                raise ModelLoadError(
                    f"{what}: {path}.{key} = {value!r} asks for {elements} elements per "
                    f"tensor, more than this file can justify ({walk.size_cap})."
                )
            continue
        for n in numbers:
            if n > walk.size_cap:
                raise ModelLoadError(
                    f"{what}: {path}.{key} = {n} is larger than this file can justify "
                    f"({walk.size_cap})."
                )
            product *= n
            if product > walk.product_cap:
                raise ModelLoadError(
                    f"{what}: the size arguments of {path} multiply to more than "
                    f"{walk.product_cap} elements, more than this file can justify."
                )


def _integers(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _integers(item)
    elif isinstance(value, dict) and "class_name" not in value:
        for item in value.values():
            yield from _integers(item)


def _kind(value: Any) -> str:
    return type(value).__name__


# --- building -------------------------------------------------------------------------------
_BUILD_LOCK = threading.RLock()


@contextlib.contextmanager
def weight_budget(max_elements: int | None, what: str) -> Iterator[None]:
    """While building, refuse to create more than ``max_elements`` weight elements in
    total: the check runs before each weight is allocated."""
    from dendrite.layers.base import Layer

    if max_elements is None:
        yield
        return
    with _BUILD_LOCK:
        original = Layer.add_weight
        used = [0]

        def guarded(self: Any, shape: Any = None, *args: Any, **kwargs: Any) -> Any:
            try:
                dims = [int(s) for s in (shape or ())]
            except (TypeError, ValueError):
                dims = []
            if any(d < 0 for d in dims):
                raise ModelLoadError(
                    f"{what}: layer '{self.name}' asks for a weight of shape {shape}."
                )
            used[0] += math.prod(dims)
            if used[0] > max_elements:
                raise ModelLoadError(
                    f"{what}: building layer '{self.name}' needs a weight of shape "
                    f"{tuple(dims)}, past the {max_elements} weight values the file holds: "
                    f"the architecture does not match the weights."
                )
            return original(self, shape, *args, **kwargs)

        Layer.add_weight = guarded  # type: ignore[method-assign]
        try:
            yield
        finally:
            Layer.add_weight = original  # type: ignore[method-assign]


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
    cls = registry.get("layer", entry["class_name"], custom_objects)
    try:
        with (
            registration.custom_object_scope(custom_objects),
            weight_budget(weight_elements, what),
            np.errstate(all="ignore"),
        ):
            model = _from_config(cls, entry["config"], custom_objects)
            build = entry.get("build_config")
            if build:
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


def _from_config(cls: Any, config: dict, custom_objects: dict[str, Any]) -> Any:
    import inspect

    try:
        takes_custom = "custom_objects" in inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        takes_custom = False
    if takes_custom:
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)
