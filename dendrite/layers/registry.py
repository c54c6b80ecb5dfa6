"""The layer registry: class name -> class, for deserialisation and the contract tests.

``@register_layer`` names a Layer class once. Its ``example`` attribute (init kwargs and an
input shape) drives ``tests/test_layer_contract.py``; a registered layer without one fails
the completeness test.
"""

from __future__ import annotations

from typing import Any

LAYER_REGISTRY: dict[str, type] = {}


def register_layer(cls: type) -> type:
    """Class decorator: make a layer findable by its class name (configs, model files)."""
    LAYER_REGISTRY[cls.__name__] = cls
    return cls


def get_layer_class(name: str, custom_objects: dict[str, Any] | None = None) -> type:
    """The registered layer class called ``name`` (or one from ``custom_objects``)."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    cls = LAYER_REGISTRY.get(name)
    if cls is None:
        raise ValueError(
            f"Unknown layer class {name!r}. Register it with "
            f"@dendrite.saving.register_keras_serializable() or pass it in custom_objects. "
            f"Known layers: {', '.join(sorted(LAYER_REGISTRY))}."
        )
    return cls
