"""Where dendrite finds things by name.

- ``builtins``: the one table of dendrite's own classes and functions by kind (ops, layers,
  losses, metrics, optimizers, schedules, initializers, regularizers, constraints,
  callbacks, activations), filled by ``@register(kind)`` where each is defined, and the one
  lookup ``get(kind, name, custom_objects)``;
- ``custom_objects``: the objects users register (``register_keras_serializable``,
  ``custom_object_scope``), which ``get`` consults first;
- ``naming``: the one ``snake_case``.

Imports nothing from dendrite, so every part of the package may use it.
"""

from dendrite.registry.builtins import (
    KINDS,
    find,
    find_entry,
    get,
    items,
    name_of,
    names,
    register,
    table,
    unknown,
)
from dendrite.registry.naming import snake_case

__all__ = [
    "KINDS",
    "find",
    "find_entry",
    "get",
    "items",
    "name_of",
    "names",
    "register",
    "snake_case",
    "table",
    "unknown",
]
