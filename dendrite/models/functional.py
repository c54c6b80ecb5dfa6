"""The functional API: ``Model(inputs, outputs)`` over a graph of layer calls.

Calling layers on ``Input`` tensors records ``Node``s (see ``layers/symbolic.py``); each
output KerasTensor remembers ``(layer, node_index, tensor_index)``. ``Functional`` walks
these histories back from the outputs to the inputs, orders the calls so every node comes
after the nodes it consumes (an explicit stack, no recursion), and ``call`` replays them on
real Tensors: several inputs and outputs, shared layers (one layer, several nodes, one set of
weights), residual branches and nested models all follow from that.

Layers are listed as in Keras: by depth from the outputs, deepest (the inputs) first; the
config is Keras' functional format (``layers`` with ``inbound_nodes``, ``input_layers``,
``output_layers``), so a model can be rebuilt without its code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.layers.symbolic import (
    KerasTensor,
    Node,
    flatten,
    layers_by_depth,
    map_structure,
    pack_like,
    producer,
    sorted_keys,
)
from dendrite.models.graph_config import deserialize_layer, layer_entry, rebuild_graph
from dendrite.models.model import Model
from dendrite.models.plan import ExecutionPlan
from dendrite.models.summary import format_shape


@register_layer
class Functional(Model):
    """A model defined by its input and output KerasTensors (``keras.Model(inputs, outputs)``).

    Args:
        inputs: a KerasTensor from ``Input``, or a list / dict of them.
        outputs: KerasTensors computed from ``inputs`` by calling layers: one, a list or a
            dict (dict keys then name the outputs in ``predict`` and ``fit``).
        name: model name (default ``functional``, numbered).
        trainable: whether the weights are trained.
    """

    def __init__(
        self, inputs: Any, outputs: Any, name: str | None = None, trainable: bool = True
    ) -> None:
        Layer.__init__(self, name=name, trainable=trainable)
        inputs, outputs = _as_list(inputs), _as_list(outputs)
        _check_keras_tensors(inputs, "inputs")
        _check_keras_tensors(outputs, "outputs")
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._inputs = flatten(inputs)
        self._outputs = flatten(outputs)
        for x in self._inputs:
            node = producer(x)
            if not node.is_input:
                raise ValueError(
                    f"Model '{self.name}': every input must come from keras.Input(...); "
                    f"{x} is the output of layer '{node.layer.name}' "
                    f"({type(node.layer).__name__}). Start the model at an Input."
                )
        if len({id(x) for x in self._inputs}) != len(self._inputs):
            raise ValueError(f"Model '{self.name}': the same Input is given twice in inputs.")
        self._plan = ExecutionPlan(self._inputs, self._outputs, self.name)
        order = self._plan.order
        self._graph_layers = layers_by_depth(order, self._plan.layer_rank, self._inputs)
        names = [layer.name for layer in self._graph_layers]
        for layer_name in names:
            if names.count(layer_name) > 1:
                raise ValueError(
                    f'The name "{layer_name}" is used {names.count(layer_name)} times in the '
                    f"model '{self.name}'. All layer names should be unique."
                )
        self._network_nodes = {id(node) for node in order}
        for x in self._inputs:  # inputs that no output uses still belong to the model
            self._network_nodes.add(id(producer(x)))
        self._dtypes = [np.dtype(x.dtype) for x in self._inputs]
        self.output_names = [x._keras_history[0].name for x in self._outputs]
        if isinstance(outputs, dict):
            self.output_names = sorted_keys(outputs)  # the order of self._outputs
        self._output_masks: Any = None
        self.built = True

    # --- structure ------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers of the graph, InputLayers included, inputs first (Keras' order)."""
        return list(self._graph_layers)

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._outputs)

    @property
    def input(self) -> Any:
        """The inputs as given to the constructor (one tensor, a list or a dict)."""
        return self._inputs_struct

    @property
    def output(self) -> Any:
        return self._outputs_struct

    @property
    def input_names(self) -> list[str]:
        return [x._keras_history[0].name for x in self._inputs]

    @property
    def input_shape(self) -> Any:
        shapes = [x.shape for x in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> Any:
        shapes = [x.shape for x in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _kept_nodes(self, layer: Layer) -> list[Node]:
        """The calls of ``layer`` that belong to this model, in call order."""
        return [n for n in getattr(layer, "_inbound_nodes", []) if id(n) in self._network_nodes]

    def _node_index(self, node: Node) -> int:
        """The index of ``node`` among its layer's calls in this model (the config index)."""
        return [id(n) for n in self._kept_nodes(node.layer)].index(id(node))

    # --- calling --------------------------------------------------------------------------
    def _convert(self, inputs: Any) -> Any:
        # Inputs are converted one by one to their Input's dtype in call().
        return inputs

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Run the recorded layer calls on ``inputs`` (one array, a list in input order, or
        a dict keyed by Input names)."""
        flat = self._standardize_inputs(inputs)
        if mask is not None:
            masks = mask if isinstance(mask, (list, tuple)) else [mask]
            for x, m in zip(flat, masks):
                if m is not None:
                    x._keras_mask = m
        results = self._plan.run(flat)
        object.__setattr__(
            self, "_output_masks", [getattr(r, "_keras_mask", None) for r in results]
        )
        if len(results) == 1 and not isinstance(self._outputs_struct, dict):
            return results[0]
        return pack_like(self._outputs_struct, results)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The masks the graph attached to the outputs in the last call."""
        masks = self._output_masks
        if not masks or all(m is None for m in masks):
            return None
        return masks[0] if len(masks) == 1 else masks

    def _standardize_inputs(self, inputs: Any) -> list[Tensor]:
        expected = self._inputs
        names = self.input_names
        if isinstance(inputs, dict):
            keys = list(self._inputs_struct) if isinstance(self._inputs_struct, dict) else names
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(
                    f"Model '{self.name}' is missing inputs {missing}: it expects a dict with "
                    f"keys {keys}, but received keys {list(inputs)}."
                )
            flat = [inputs[k] for k in keys]
        elif isinstance(inputs, (list, tuple)) and (
            len(expected) > 1 or (len(inputs) == 1 and isinstance(inputs[0], (Tensor, np.ndarray)))
        ):
            flat = list(inputs)
        else:
            flat = [inputs]
        if len(flat) != len(expected):
            raise ValueError(
                f"Model '{self.name}' expects {len(expected)} input(s) {names}, but it received "
                f"{len(flat)} input tensors. Pass a list in this order or a dict keyed by "
                f"these names."
            )
        return [
            _to_input(x, kt, dtype, self.name) for x, kt, dtype in zip(flat, expected, self._dtypes)
        ]

    # --- summary --------------------------------------------------------------------------
    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """One row per layer: name (type), output shape, parameters, the calls feeding it."""
        rows = []
        for layer in self._graph_layers:
            nodes = self._kept_nodes(layer)
            shape = format_shape(map_structure(lambda t: t.shape, nodes[0].outputs))
            connections = []
            for node in nodes:
                for x in node.input_tensors:
                    source, _, tensor_index = x._keras_history
                    index = self._node_index(producer(x))
                    connections.append(f"{source.name}[{index}][{tensor_index}]")
            params = sum(v.data.size for v in layer.weights) if layer.built else 0
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    shape,
                    f"{params:,}",
                    ",\n".join(connections) or "-",
                )
            )
        return rows

    # --- configuration --------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras' functional config: every layer's config with the calls (``inbound_nodes``)
        that connect it, and where the model's inputs and outputs are."""

        def tensor_ref(x: KerasTensor) -> list:
            layer, _, tensor_index = x._keras_history
            return [layer.name, self._node_index(producer(x)), tensor_index]

        def serialize(value: Any) -> Any:
            if isinstance(value, KerasTensor):
                return {
                    "class_name": "__keras_tensor__",
                    "config": {
                        "shape": list(value.shape),
                        "dtype": value.dtype,
                        "keras_history": tensor_ref(value),
                    },
                }
            if isinstance(value, (list, tuple)):
                return [serialize(v) for v in value]
            if isinstance(value, dict):
                return {k: serialize(v) for k, v in value.items()}
            if isinstance(value, np.generic):
                return value.item()
            return value

        layer_configs = []
        for layer in self._graph_layers:
            inbound = [
                {
                    "args": serialize([node.inputs, *node.args]),
                    "kwargs": serialize(node.kwargs),
                }
                for node in self._kept_nodes(layer)
                if not node.is_input
            ]
            layer_configs.append(
                {**layer_entry(layer), "name": layer.name, "inbound_nodes": inbound}
            )
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layer_configs,
            "input_layers": map_structure(tensor_ref, self._inputs_struct),
            "output_layers": map_structure(tensor_ref, self._outputs_struct),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Functional:
        """Rebuild the model from ``get_config()``: create every layer, then replay its calls
        in an order where each call's inputs already exist."""
        inputs, outputs = rebuild_graph(config, custom_objects)
        return cls(
            inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True)
        )


# --- graph construction ---------------------------------------------------------------------
def _as_list(structure: Any) -> Any:
    if isinstance(structure, tuple):
        return [_as_list(x) for x in structure]
    if isinstance(structure, list):
        return [_as_list(x) for x in structure]
    if isinstance(structure, dict):
        return {k: _as_list(v) for k, v in structure.items()}
    return structure


def _check_keras_tensors(structure: Any, what: str) -> None:
    flat = flatten(structure)
    if not flat:
        raise ValueError(f"Model(inputs, outputs): {what} is empty.")
    for x in flat:
        if not isinstance(x, KerasTensor):
            raise ValueError(
                f"All `{what}` values must be KerasTensors (from keras.Input and layer calls "
                f"on them). Received: {x!r} of type {type(x).__name__}."
            )
        if x._keras_history is None:
            raise ValueError(f"{x!r} in `{what}` was not produced by Input or a layer call.")


# --- calling --------------------------------------------------------------------------------
def _to_input(x: Any, spec: KerasTensor, dtype: np.dtype, model_name: str) -> Tensor:
    """``x`` as a Tensor of the Input's dtype; a trailing size-1 axis is added or dropped
    when the ranks differ by it (as Keras does); other rank mismatches raise."""
    if not isinstance(x, Tensor):
        x = Tensor._make(np.asarray(x))
    if x.data.dtype != dtype:
        mask = x._keras_mask
        x = ops.cast(x, dtype)
        x._keras_mask = mask
    rank = len(spec.shape)
    if x.ndim == rank + 1 and x.shape[-1] == 1:
        x = ops.squeeze(x, axis=-1)
    elif x.ndim == rank - 1 and rank and spec.shape[-1] == 1:
        x = ops.expand_dims(x, axis=-1)
    elif x.ndim != rank:
        raise ValueError(
            f"Invalid input shape for input '{spec.name}' of model '{model_name}': expected "
            f"shape {spec.shape}, but received an input with incompatible shape "
            f"{tuple(x.shape)} (rank {x.ndim} instead of {rank})."
        )
    return x


__all__ = ["Functional", "deserialize_layer"]
