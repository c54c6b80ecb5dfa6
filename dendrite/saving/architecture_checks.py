"""The checks a stranger's architecture must pass before anything is built.

``check_architecture`` walks a parsed entry: every ``class_name`` must be a class in
``dendrite.registry`` (a built-in layer, initializer, regularizer, constraint, schedule,
optimizer, loss or metric) or one the program registered or passed in ``custom_objects``
-- names are looked up in the registry's tables, never imported, so "os.system" is just an
unknown name; every activation and ``Lambda`` function must resolve the same way; every
dtype must be a numeric dtype; and the integers that size tensors are bounded, so a small
file cannot ask for a huge allocation while the model is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

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
    "optimizer_map",
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


def _builtin_activation(name: str) -> bool:
    return name in registry.table("activation", aliases=True)


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
    walk = _Walk(custom_objects, weight_elements)
    cls = _resolve_class(entry["class_name"], walk, "model", what)
    if not _is_layer_class(cls):
        raise ModelLoadError(f"{what}: the model class {entry['class_name']!r} is not a model.")
    _check_build_config(entry.get("build_config"), cls, what)
    return _check(entry, walk, "model", what)


def _check_build_config(build: Any, cls: type, what: str) -> None:
    """``{"input_shape": shape}``, Keras' ``{"shapes_dict": {name: shape}}``, or, for a class
    with its own ``build_from_config``, any object (its method reads it)."""
    if build is None:
        return
    if not isinstance(build, dict):
        raise ModelLoadError(f"{what}: build_config must be an object, got {_kind(build)}.")
    if "input_shape" in build and _shape_like(build["input_shape"]):
        return
    shapes = build.get("shapes_dict")
    if isinstance(shapes, dict) and shapes and all(_shape_like(v) for v in shapes.values()):
        return
    from dendrite.layers.base import Layer

    if getattr(cls, "build_from_config", None) is not Layer.build_from_config:
        return
    raise ModelLoadError(f"{what}: build_config must be {{'input_shape': [...]}}.")


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


# Integer arguments that size nothing a layer allocates (frequencies in hertz).
NOT_SIZES = frozenset({"sampling_rate", "min_freq", "max_freq"})


def _check_sizes(config: dict, walk: _Walk, path: str, what: str) -> None:
    """Bound one layer's own integers: each shape's element count, each size argument, and
    the product of its size arguments (nested objects are checked on their own)."""
    product = 1
    for key, value in config.items():
        if "seed" in key or key in NOT_SIZES or isinstance(value, dict) and "class_name" in value:
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
