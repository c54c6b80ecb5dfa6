"""Custom objects by name: ``register_keras_serializable``, ``custom_object_scope``.

A model file names every class and function it needs; loading finds them here (or in the
``custom_objects`` given to ``load_model``), never by importing a module path named in the
file, so a file cannot make dendrite run code that the program did not register.
Registered names are Keras's ``"package>name"``.

This module imports nothing from dendrite, so any layer may use it lazily.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
GLOBAL_CUSTOM_NAMES: dict[Any, str] = {}

_scopes = threading.local()


def _scope_stack() -> list[dict[str, Any]]:
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


class CustomObjectScope:
    """``with custom_object_scope({"my_fn": my_fn}):`` makes names resolvable inside the
    block (for ``load_model``, ``model_from_json``, ``Lambda``, activations)."""

    def __init__(self, custom_objects: dict[str, Any] | None = None) -> None:
        if custom_objects is not None and not isinstance(custom_objects, dict):
            raise TypeError(
                f"custom_object_scope expects a dict of name -> object; got "
                f"{type(custom_objects).__name__}."
            )
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self) -> CustomObjectScope:
        _scope_stack().append(self.custom_objects)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _scope_stack().pop()


custom_object_scope = CustomObjectScope


def get_custom_objects() -> dict[str, Any]:
    """The global registry (name -> object); prefer ``register_keras_serializable``."""
    return GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable:
    """Decorator: make a class or function savable and loadable by name.

    The object is stored as ``"package>name"`` (``name`` defaults to its ``__name__``). A
    class must have ``get_config``. Registering the same name for another object raises.
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(f"package must be a non-empty string without '>'; got {package!r}.")

    def decorator(obj: Any) -> Any:
        serialized = name if name is not None else getattr(obj, "__name__", None)
        if not isinstance(serialized, str) or not serialized:
            raise ValueError(f"Cannot register {obj!r}: give it a name with name=.")
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        registered = f"{package}>{serialized}"
        existing = GLOBAL_CUSTOM_OBJECTS.get(registered)
        if existing is not None and existing is not obj and not _same_definition(existing, obj):
            raise ValueError(f"{registered} has already been registered to {existing}.")
        GLOBAL_CUSTOM_OBJECTS[registered] = obj
        GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj

    return decorator


def _same_definition(old: Any, new: Any) -> bool:
    # Re-running a module (a notebook cell, importlib.reload) redefines the same object.
    return getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None) and getattr(
        old, "__module__", None
    ) == getattr(new, "__module__", None)


def get_registered_name(obj: Any) -> str:
    """``"package>name"`` for a registered object, else its ``__name__``."""
    try:
        registered = GLOBAL_CUSTOM_NAMES.get(obj)
    except TypeError:  # unhashable
        registered = None
    return registered or getattr(obj, "__name__", None) or type(obj).__name__


def is_registered(obj: Any) -> bool:
    try:
        return obj in GLOBAL_CUSTOM_NAMES
    except TypeError:
        return False


def get_registered_object(
    name: str,
    custom_objects: dict[str, Any] | None = None,
    module_objects: Any = None,
    bare: bool = True,
) -> Any:
    """The object called ``name``: from ``custom_objects``, then the innermost
    ``custom_object_scope``, then the global registry (by ``"package>name"``, or, with
    ``bare``, by bare name when exactly one registered object has it), then
    ``module_objects``; else None."""
    if not isinstance(name, str):
        return None
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for scope in reversed(_scope_stack()):
        if name in scope:
            return scope[name]
    if name in GLOBAL_CUSTOM_OBJECTS:
        return GLOBAL_CUSTOM_OBJECTS[name]
    if bare and ">" not in name:
        matches = [
            obj for key, obj in GLOBAL_CUSTOM_OBJECTS.items() if key.split(">", 1)[1] == name
        ]
        if len(matches) == 1:
            return matches[0]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


def all_custom_objects(custom_objects: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every name resolvable now: global (full and bare names), scopes, then the given
    ``custom_objects`` (later entries win)."""
    merged: dict[str, Any] = {}
    for key, obj in GLOBAL_CUSTOM_OBJECTS.items():
        merged[key] = obj
        merged.setdefault(key.split(">", 1)[1], obj)
    for scope in _scope_stack():
        merged.update(scope)
    merged.update(custom_objects or {})
    return merged


def how_to_register(kind: str, name: str) -> str:
    """The sentence every 'unknown name' error ends with."""
    short = name.split(">", 1)[-1]
    package = name.split(">", 1)[0] if ">" in name else "my_package"
    return (
        f"Unknown {kind} {name!r}. dendrite never loads code from a file: define it in your "
        f"program and register it, e.g. @dendrite.saving.register_keras_serializable("
        f"package={package!r}) above `def {short}` / `class {short}`, or pass "
        f"custom_objects={{{short!r}: {short}}} to load_model (or use "
        f"dendrite.saving.custom_object_scope)."
    )


def is_other_package(obj: Any, registered_name: str) -> bool:
    """Whether ``obj`` is a class or function registered under another full name than
    ``registered_name`` (a file asking for ``"pkg>Name"`` must not get ``"other>Name"``)."""
    return is_registered(obj) and get_registered_name(obj) != registered_name
