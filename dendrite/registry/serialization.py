"""``serialize_keras_object`` / ``deserialize_keras_object``: Keras 3's dict form of any
layer, loss, metric, optimizer, initializer, regularizer, constraint, schedule, callback or
function, and back.

An object with ``get_config`` becomes::

    {"module": "keras.layers", "class_name": "Dense", "config": {...},
     "registered_name": None}

(``module`` is Keras' public namespace for a built-in, the defining module for a custom
object; ``registered_name`` is ``"package>name"`` for a ``register_keras_serializable``
object, else None). A built-in function (``"relu"``, ``"mean_squared_error"``) becomes
``{"module": "keras.activations", "class_name": "function", "config": "relu",
"registered_name": "relu"}``. Plain values pass through; lists, tuples and dicts are
serialized item by item.

Deserializing finds classes and functions by name only, in ``custom_objects``, the
custom-object scopes, the registered objects and the built-in tables (``builtins.py``);
nothing is imported from a module path in the config, and a Python lambda stored as
bytecode is refused (Keras' ``safe_mode``, which dendrite never turns off).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from dendrite.registry import builtins
from dendrite.registry import custom_objects as user_objects

# Keras' public namespace for each kind of built-in, as Keras 3 writes it in "module".
MODULES = {
    "layer": "keras.layers",
    "loss": "keras.losses",
    "metric": "keras.metrics",
    "optimizer": "keras.optimizers",
    "schedule": "keras.optimizers.schedules",
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
    "callback": "keras.callbacks",
    "activation": "keras.activations",
}
_KIND_OF_MODULE = {module: kind for kind, module in MODULES.items()}
# Which kinds a class name is looked up in when the entry names no known module.
SEARCH_ORDER = (
    "layer",
    "loss",
    "metric",
    "optimizer",
    "schedule",
    "initializer",
    "regularizer",
    "constraint",
    "callback",
)
_FUNCTION_KINDS = ("activation", "loss", "metric")


def _builtin_kind(obj: Any, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """(kind, canonical name) when ``obj`` is a registered built-in of one of ``kinds``."""
    for kind in kinds:
        name = builtins.name_of(kind, obj)
        if name is not None:
            return kind, name
    return None


def serialize_keras_object(obj: Any) -> Any:
    """Keras 3's serialized form of ``obj`` (see the module docstring); JSON-ready."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.dtype):
        return obj.name
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(item) for item in obj]
    if isinstance(obj, dict):
        return {key: serialize_keras_object(value) for key, value in obj.items()}
    if isinstance(obj, type):
        raise TypeError(
            f"serialize_keras_object expects an object, not the class {obj.__name__}: "
            f"serialize an instance."
        )
    if not hasattr(obj, "get_config") and callable(obj):
        return _serialize_function(obj)
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it has no get_config().")
    cls = type(obj)
    builtin = _builtin_kind(cls, SEARCH_ORDER)
    registered = user_objects.is_registered(cls)
    entry: dict[str, Any] = {
        "module": MODULES[builtin[0]] if builtin and not registered else cls.__module__,
        "class_name": cls.__name__,
        "config": serialize_keras_object(obj.get_config()),
        "registered_name": user_objects.get_registered_name(cls) if registered else None,
    }
    shape = getattr(obj, "_build_input_shape", None)
    if getattr(obj, "built", False) and shape is not None:
        entry["build_config"] = {"input_shape": serialize_keras_object(shape)}
    return entry


def _serialize_function(fn: Any) -> dict[str, Any]:
    if getattr(fn, "__name__", None) == "<lambda>":
        raise ValueError(
            "Cannot serialize a lambda: dendrite never saves code. Define the function with "
            "`def`, decorate it with @register_keras_serializable, and use it by name."
        )
    if user_objects.is_registered(fn):
        name = user_objects.get_registered_name(fn)
        return {
            "module": fn.__module__,
            "class_name": "function",
            "config": name,
            "registered_name": name,
        }
    builtin = _builtin_kind(fn, _FUNCTION_KINDS)
    name = builtin[1] if builtin else getattr(fn, "__name__", None)
    if name is None:
        raise TypeError(f"Cannot serialize {fn!r}: it has no name.")
    module = MODULES[builtin[0]] if builtin else getattr(fn, "__module__", None)
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def _lookup(
    name: str, kinds: tuple[str, ...], custom_objects: Mapping[str, Any] | None
) -> Any | None:
    found = user_objects.get_registered_object(name, dict(custom_objects or {}))
    if found is not None:
        return found
    for kind in kinds:
        found = builtins.find(kind, name)
        if found is not None:
            return found
    return None


def _kinds_for(module: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    kind = _KIND_OF_MODULE.get(module) if isinstance(module, str) else None
    if kind is None:
        return default
    return (kind, *(k for k in default if k != kind))


def deserialize_keras_object(
    config: Any,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    **kwargs: Any,
) -> Any:
    """The object described by ``config`` (``serialize_keras_object``'s output, or a name).

    Args:
        config: a serialized dict, a list of them, a name, or a plain value.
        custom_objects: name -> class or function, searched first.
        safe_mode: accepted for Keras compatibility; dendrite is always safe (a lambda's
            bytecode is refused whatever the value).
        **kwargs: ``module_objects`` (name -> object, searched after the registries) and
            ``printable_module_name`` (how errors name what was expected), as Keras.

    Raises:
        ValueError: an unknown class or function (the message says how to register it), or
            a lambda stored as code.
    """
    module_objects = kwargs.get("module_objects") or {}
    what = kwargs.get("printable_module_name", "object")
    kinds = tuple(kwargs.get("kinds", SEARCH_ORDER))
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(c, custom_objects, safe_mode, **kwargs) for c in config]
    if isinstance(config, str):
        found = _lookup(config, (*kinds, *_FUNCTION_KINDS), custom_objects)
        if found is None:
            found = module_objects.get(config)
        if found is None:
            raise ValueError(
                user_objects.how_to_register(what, config).replace(
                    "Unknown", "Could not interpret", 1
                )
            )
        return found() if isinstance(found, type) and kinds != ("layer",) else found
    if not isinstance(config, dict):
        raise TypeError(f"Cannot deserialize {config!r}: expected a dict, a list or a name.")
    class_name = config.get("class_name")
    if class_name is None:
        return {
            k: deserialize_keras_object(v, custom_objects, safe_mode, **kwargs)
            for k, v in config.items()
        }
    if class_name == "__lambda__" or (
        isinstance(config.get("config"), dict) and "code" in config["config"]
    ):
        raise ValueError(
            "Requested the deserialization of a Python lambda stored as bytecode. dendrite "
            "never runs code from a file or a config (Keras' safe_mode, always on): define "
            "the function in your program, register it, and refer to it by name."
        )
    registered = config.get("registered_name")
    inner = config.get("config")
    if class_name == "function":
        name = registered or inner
        if not isinstance(name, str):
            raise ValueError(f"A serialized function must name itself; got {config!r}.")
        found = _lookup(name, _kinds_for(config.get("module"), _FUNCTION_KINDS), custom_objects)
        if found is None and isinstance(inner, str) and inner != name:
            found = _lookup(inner, _FUNCTION_KINDS, custom_objects)
        if found is None:
            found = module_objects.get(name)
        if found is None:
            raise ValueError(user_objects.how_to_register("function", name))
        return found
    cls = None
    for kind in _kinds_for(config.get("module"), kinds):
        cls = builtins.find_entry(kind, class_name, registered, custom_objects)
        if cls is not None:
            break
    if cls is None and isinstance(class_name, str):
        cls = module_objects.get(class_name)
    if cls is None:
        raise ValueError(user_objects.how_to_register(what, str(registered or class_name)))
    if not isinstance(cls, type):
        return cls
    inner = dict(inner or {})
    with user_objects.CustomObjectScope(dict(custom_objects or {})):
        obj = from_config(cls, inner, custom_objects)
        build = config.get("build_config")
        if isinstance(build, dict) and build.get("input_shape") is not None:
            built = getattr(obj, "built", True)
            if not built and hasattr(obj, "build"):
                shape = build["input_shape"]
                flat = all(s is None or isinstance(s, int) for s in shape)
                obj.build(tuple(shape) if flat else shape)
    return obj


def from_config(cls: Any, config: dict, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """``cls.from_config(config)``, passing ``custom_objects`` when that method takes them
    (Keras' models and optimizers do; most layers do not)."""
    from_config = getattr(cls, "from_config", None)
    if from_config is None:
        return cls(**config)
    try:
        takes_custom = "custom_objects" in inspect.signature(from_config).parameters
    except (TypeError, ValueError):
        takes_custom = False
    if takes_custom:
        return from_config(config, custom_objects=dict(custom_objects or {}))
    return from_config(config)


def for_kind(kind: str) -> tuple[Any, Any]:
    """``(serialize, deserialize)`` for one namespace (``keras.losses.serialize`` ...):
    Keras 3's dict form, and its inverse searching ``kind`` first."""
    builtins._check_kind(kind)
    label = builtins._LABELS.get(kind, kind)

    def serialize(obj: Any) -> Any:
        return serialize_keras_object(obj)

    def deserialize(config: Any, custom_objects: Mapping[str, Any] | None = None) -> Any:
        return deserialize_keras_object(
            config, custom_objects, kinds=(kind,), printable_module_name=label
        )

    serialize.__doc__ = f"Keras 3's serialized dict of a {label} (``serialize_keras_object``)."
    deserialize.__doc__ = (
        f"The {label} described by ``config`` (a serialized dict or a name); custom classes "
        f"and functions are found through ``custom_objects`` or registration only."
    )
    return serialize, deserialize
