"""Layers in the registry: class name -> class, for deserialisation and the contract tests.

``@register_layer`` is ``dendrite.registry.register("layer")``: it names a Layer class once,
by its class name. Its ``example`` attribute (init kwargs and an input shape) drives
``tests/test_layer_contract.py``; a registered layer without one fails the completeness
test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from dendrite import registry

#: Every registered layer class by name: a live, read-only view of the registry's "layer"
#: kind.
LAYER_REGISTRY: Mapping[str, type] = registry.table("layer")

T = TypeVar("T")


def register_layer(cls: type[T]) -> type[T]:
    """Class decorator: make a layer findable by its class name (configs, model files);
    ``registry.register("layer")``."""
    return registry.register("layer")(cls)


def get_layer_class(name: str, custom_objects: dict[str, Any] | None = None) -> type:
    """The layer class called ``name``: from ``custom_objects``, a custom-object scope, the
    user's registered objects, then dendrite's layers (``dendrite.registry.get``)."""
    return registry.get("layer", name, custom_objects)
