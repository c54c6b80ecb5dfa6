"""Rebuilding a functional graph from Keras' functional config: every layer from its
``{"class_name", "config"}`` entry (through the layer registry: a file names only
registered classes), then every recorded call (``inbound_nodes``) replayed in an order
where its inputs already exist, and the model's inputs and outputs found by their
``[layer name, node index, tensor index]`` references. The Keras 2 node format
(``[[name, node, tensor, kwargs], ...]``) is read too."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import registry
from dendrite.layers.base import Layer
from dendrite.registry import custom_objects as registration
from dendrite.registry import serialization


def rebuild_graph(config: dict, custom_objects: dict | None = None) -> tuple[Any, Any]:
    """The (inputs, outputs) KerasTensors of the graph ``config`` describes, its layers
    created and called; raise ValueError when calls refer to calls that never happen."""
    created: dict[str, Layer] = {}
    pending: dict[str, list] = {}
    for entry in config["layers"]:
        created[entry["name"]] = deserialize_layer(entry, custom_objects)
        pending[entry["name"]] = list(entry.get("inbound_nodes", []))
    while any(pending.values()):
        progressed = False
        for entry in config["layers"]:
            queue = pending[entry["name"]]
            while queue:
                try:
                    args, kwargs = _deserialize_node(queue[0], created)
                except _NotCreatedYet:
                    break
                created[entry["name"]](*args, **kwargs)
                queue.pop(0)
                progressed = True
        if not progressed:
            stuck = sorted(name for name, queue in pending.items() if queue)
            raise ValueError(
                f"Cannot rebuild model '{config.get('name')}' from its config: the calls of "
                f"layers {stuck} refer to layer calls that never happen (a cycle or a "
                f"missing layer in the config)."
            )
    inputs = _revive_refs(config["input_layers"], created)
    outputs = _revive_refs(config["output_layers"], created)
    return inputs, outputs


class _NotCreatedYet(Exception):
    """A node refers to a call of a layer that has not been replayed yet."""


def layer_entry(layer: Layer) -> dict:
    """Keras 3's entry for a layer in a model config: ``{"module", "class_name", "config",
    "registered_name"}`` (the registered ``"package>name"`` of a custom class, else None)."""
    cls = type(layer)
    return {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "config": layer.get_config(),
        "registered_name": registration.get_registered_name(cls)
        if registration.is_registered(cls)
        else None,
    }


def deserialize_layer(entry: dict, custom_objects: dict | None = None) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}`` through the layer registry; a
    ``registered_name`` is tried first, so two custom classes of one name stay apart."""
    registered = entry.get("registered_name")
    layer_cls = registry.find_entry("layer", entry["class_name"], registered, custom_objects)
    if layer_cls is None:
        raise registry.unknown("layer", registered if registered else entry["class_name"])
    return serialization.from_config(layer_cls, dict(entry["config"]), custom_objects)


def _lookup(created: dict[str, Layer], name: str, node_index: int, tensor_index: int) -> Any:
    if name not in created:
        raise ValueError(f"The config refers to an unknown layer {name!r}.")
    nodes = getattr(created[name], "_inbound_nodes", [])
    if node_index >= len(nodes):
        raise _NotCreatedYet(name)
    return nodes[node_index].output_tensors[tensor_index]


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and isinstance(value[0], str)
        and all(isinstance(v, (int, np.integer)) for v in value[1:])
    )


def _revive_refs(structure: Any, created: dict[str, Layer]) -> Any:
    """``input_layers``/``output_layers``: ``[name, node_index, tensor_index]`` leaves."""
    if _is_ref(structure):
        return _lookup(created, *structure)
    if isinstance(structure, dict):
        return {k: _revive_refs(v, created) for k, v in structure.items()}
    return [_revive_refs(v, created) for v in structure]


def _deserialize_node(data: Any, created: dict[str, Layer]) -> tuple[list, dict]:
    if isinstance(data, list):  # Keras 2 format: [[name, node, tensor, kwargs], ...]
        tensors = [_lookup(created, *entry[:3]) for entry in data]
        kwargs = data[0][3] if data and len(data[0]) > 3 else {}
        return [tensors[0] if len(tensors) == 1 else tensors], dict(kwargs)

    def revive(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                return _lookup(created, *value["config"]["keras_history"])
            return {k: revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [revive(v) for v in value]
        return value

    return revive(list(data.get("args", []))), revive(dict(data.get("kwargs", {})))
