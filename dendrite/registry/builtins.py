"""The one table of dendrite's built-in objects by kind, and the one lookup by name.

A built-in class or function joins where it is defined::

    @register("loss", aliases=("mse", "MSE"))
    def mean_squared_error(y_true, y_pred): ...

    @register("optimizer")
    class Adam(Optimizer): ...        # found as "Adam" and, for optimizers, "adam"

``get(kind, name, custom_objects)`` resolves a name in one order, for every kind:

1. ``custom_objects`` given to the call;
2. the innermost ``custom_object_scope``;
3. the user's ``register_keras_serializable`` objects (``"package>name"``, or the bare
   name when one object has it);
4. the built-ins of that kind: the name itself, then its alias, then (for the kinds that
   have always matched in any case: optimizers, initializers, regularizers) its lower case.

Names come from tables filled by decorators, never from importing a module path, so a model
file can only name what the program has registered. This module imports nothing from
dendrite; the tables fill as the defining modules are imported (``import dendrite`` imports
them all).
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from dendrite.registry import custom_objects as user_objects
from dendrite.registry.naming import snake_case


def _lower(name: str) -> str:
    return name.lower()


# kind -> how a class's automatic alias is made from its name (None: no alias). Keras
# accepts a metric, initializer, regularizer or constraint by its class name or its
# snake_case ("BinaryAccuracy", "binary_accuracy"), and an optimizer by its lower-case name.
_AUTO_ALIAS: dict[str, Callable[[str], str] | None] = {
    "op": None,
    "layer": None,
    "loss": None,  # a loss's snake_case name is its function ("mean_squared_error")
    "metric": snake_case,
    "optimizer": _lower,
    "optimizer_map": None,  # OptimizerMap: met only inside a MultiOptimizer's config
    "schedule": None,
    "initializer": snake_case,
    "regularizer": snake_case,
    "constraint": snake_case,
    "callback": None,
    "activation": None,
}
KINDS: tuple[str, ...] = tuple(_AUTO_ALIAS)
# Kinds whose names have always matched in any case ("ADAM", "Glorot_Uniform").
_FOLD_CASE = frozenset({"optimizer", "initializer", "regularizer"})
# How error messages name each kind.
_LABELS = {
    "layer": "layer class",
    "schedule": "learning rate schedule",
}

_canonical: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_by_name: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_names_of: dict[str, dict[Any, str]] = {kind: {} for kind in KINDS}
_lock = threading.Lock()

T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in _canonical:
        expected = ", ".join(repr(known) for known in KINDS)
        raise ValueError(f"Unknown registry kind {kind!r}: expected one of {expected}.")


def _same_definition(old: Any, new: Any) -> bool:
    # Re-running a module (importlib.reload) redefines the same top-level object; objects
    # made inside functions or lambdas share qualified names without being the same.
    qualname = getattr(old, "__qualname__", None)
    return old is new or (
        isinstance(qualname, str)
        and "<" not in qualname
        and qualname == getattr(new, "__qualname__", None)
        and getattr(old, "__module__", None) == getattr(new, "__module__", None)
    )


def register(kind: str, name: str | None = None, aliases: Iterable[str] = ()) -> Callable[[T], T]:
    """Decorator: record a built-in class or function under ``kind``.

    Args:
        kind: one of ``KINDS`` ("op", "layer", "loss", "metric", "optimizer", "schedule",
            "initializer", "regularizer", "constraint", "callback", "activation").
        name: the canonical name (what ``serialize`` writes); defaults to ``__name__``.
        aliases: other names ``get`` accepts. A class of a kind with an automatic alias
            (snake_case, or lower case for optimizers) gets it too.

    Raises:
        ValueError: the kind is unknown, or one of the names already belongs to a
            different object of this kind.
    """
    _check_kind(kind)

    def decorate(obj: T) -> T:
        canonical = name if name is not None else getattr(obj, "__name__", None)
        if not isinstance(canonical, str) or not canonical:
            raise ValueError(f"Cannot register {obj!r} as a {kind}: give it a name with name=.")
        every = [canonical, *aliases]
        make_alias = _AUTO_ALIAS[kind]
        if make_alias is not None and isinstance(obj, type):
            every.append(make_alias(canonical))
        with _lock:
            table = _by_name[kind]
            for key in every:
                existing = table.get(key)
                if existing is not None and not _same_definition(existing, obj):
                    raise ValueError(
                        f"Cannot register {_describe(obj)} as the {kind} {key!r}: that name "
                        f"already belongs to {_describe(existing)}. Give it another name "
                        f"(register({kind!r}, name=...))."
                    )
            for key in every:
                table[key] = obj
            _canonical[kind][canonical] = obj
            try:
                _names_of[kind][obj] = canonical
            except TypeError:  # an unhashable callable: found by name only
                pass
        return obj

    return decorate


def find(
    kind: str, name: Any, custom_objects: Mapping[str, Any] | None = None, bare: bool = True
) -> Any:
    """The object called ``name`` (in the order of the module docstring), or None.
    ``bare=False`` leaves out registered objects found by their bare name (a file that
    names ``"pkg>Name"`` must not get another package's ``Name``)."""
    _check_kind(kind)
    if not isinstance(name, str):
        return None
    found = user_objects.get_registered_object(name, custom_objects, bare=bare)  # type: ignore[arg-type]
    if found is not None:
        return found
    table = _by_name[kind]
    found = table.get(name)
    if found is None and kind in _FOLD_CASE:
        found = table.get(name.lower())
    return found


def find_entry(
    kind: str,
    class_name: Any,
    registered_name: Any = None,
    custom_objects: Mapping[str, Any] | None = None,
) -> Any:
    """The class (or function) a serialized entry names, or None: its registered
    ``"package>name"`` first; else its ``class_name`` (custom objects, scopes, built-ins),
    but never an object registered under another package with that bare name: a file
    asking for ``"pkg>Name"`` must not get ``"other>Name"``."""
    if not (isinstance(registered_name, str) and ">" in registered_name):
        return find(kind, class_name, custom_objects)
    found = find(kind, registered_name, custom_objects)
    if found is not None:
        return found
    found = find(kind, class_name, custom_objects, bare=False)
    if found is not None and user_objects.is_other_package(found, registered_name):
        return None
    return found


def get(kind: str, name: Any, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """The object called ``name`` (see ``find``); a ValueError naming what is known and how
    to register your own when nothing has that name."""
    found = find(kind, name, custom_objects)
    if found is None:
        raise unknown(kind, name)
    return found


def unknown(kind: str, name: Any) -> ValueError:
    """The error for a name that ``get`` cannot resolve: what was asked, what is known,
    and how to make your own object known."""
    _check_kind(kind)
    label = _LABELS.get(kind, kind)
    if not isinstance(name, str):
        return ValueError(f"Expected the name of a {label} (a string); received {name!r}.")
    short = name.split(">", 1)[-1]
    known = ", ".join(repr(known_name) for known_name in names(kind))
    return ValueError(
        f"Unknown {label} {name!r}. Known names: {known or '(none)'}. For "
        f"your own {kind}, decorate it with "
        f"@dendrite.saving.register_keras_serializable(package='my_package') or pass "
        f"custom_objects={{{short!r}: {short}}} (or use dendrite.saving.custom_object_scope)."
    )


def names(kind: str) -> list[str]:
    """Every name of a built-in of ``kind`` that ``get`` accepts (canonical names and
    aliases), sorted."""
    _check_kind(kind)
    return sorted(_by_name[kind])


def items(kind: str) -> dict[str, Any]:
    """The built-ins of ``kind``: canonical name -> object (a copy)."""
    _check_kind(kind)
    return dict(_canonical[kind])


def table(kind: str, aliases: bool = False) -> Mapping[str, Any]:
    """A live, read-only view of the built-ins of ``kind``: canonical name -> object, or
    with ``aliases`` every accepted name -> object. It follows later registrations."""
    _check_kind(kind)
    return types.MappingProxyType(_by_name[kind] if aliases else _canonical[kind])


def name_of(kind: str, obj: Any) -> str | None:
    """The canonical name of a built-in ``obj`` of ``kind``, or None if it is not one."""
    _check_kind(kind)
    try:
        return _names_of[kind].get(obj)
    except TypeError:  # unhashable
        return None


def _describe(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or type(obj).__name__
    return f"{module}.{qualname}" if module else repr(obj)
