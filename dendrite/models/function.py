"""``keras.Function`` and ``keras.Operation``.

A ``Function`` captures the graph from some symbolic inputs to some symbolic outputs, as a
functional model does, and re-applies it to new values: ``fn([a, b])``. Unlike a model it
is not a layer and has no training API. Its inputs may be bare ``KerasTensor(shape=...)``
specs as well as ``keras.Input`` tensors: a bare one becomes an ``Input`` of its own shape.
dendrite runs the graph with the functional model's execution plan.

``Operation`` is Keras' base of computations (ops and layers). In dendrite it is a layer
without weights, so a subclass that defines ``call`` works on arrays and in functional
graphs; its output shape and dtype come from the layer machinery (``compute_output_spec``
is not needed).
"""

from __future__ import annotations

from typing import Any

from dendrite.layers.base import Layer, unique_name
from dendrite.layers.input_layer import Input
from dendrite.layers.symbolic import KerasTensor, flatten, map_structure


class Operation(Layer):
    """Keras' base class of computations: subclass it and define ``call``."""


class Function:
    """The graph from ``inputs`` to ``outputs`` (KerasTensors, or nested lists / dicts of
    them), callable on new values of the same structure as ``inputs``.

    Args:
        inputs: KerasTensors from ``keras.Input`` or bare ``keras.KerasTensor`` specs.
        outputs: KerasTensors computed from ``inputs`` by layers and ops.
        name: the function's name (default "function", made unique).
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None) -> None:
        from dendrite.models.functional import Functional

        for tensor in flatten(inputs):
            if isinstance(tensor, KerasTensor) and tensor._keras_history is None:
                Input(tensor=tensor)
        self.name = name or unique_name("function")
        self._graph = Functional(inputs, outputs, name=self.name)
        self._inputs_struct, self._outputs_struct = inputs, outputs

    @property
    def inputs(self) -> list:
        """The input KerasTensors, flattened."""
        return list(flatten(self._inputs_struct))

    @property
    def outputs(self) -> list:
        """The output KerasTensors, flattened."""
        return list(flatten(self._outputs_struct))

    @property
    def operations(self) -> list:
        """The layers and ops of the graph, inputs first, in the order they run."""
        return list(self._graph.layers)

    def __call__(self, inputs: Any) -> Any:
        return self.call(inputs)

    def call(self, inputs: Any) -> Any:
        """The outputs for new values of the inputs (Tensors; KerasTensors stay symbolic)."""
        return self._graph(inputs)

    def compute_output_spec(self, inputs: Any) -> Any:
        """KerasTensors of the outputs' shapes and dtypes for inputs of these specs."""
        specs = map_structure(lambda x: KerasTensor(tuple(x.shape), x.dtype), inputs)
        outputs = self._graph(specs)
        return map_structure(lambda x: KerasTensor(tuple(x.shape), x.dtype), outputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The outputs' shapes for inputs of these shapes (a shape, or a structure of them
        as ``inputs``)."""
        flat = self.inputs
        if len(flat) == 1 and not isinstance(input_shape[0], (list, tuple, dict)):
            specs: Any = KerasTensor(tuple(input_shape), flat[0].dtype)
        else:
            shapes = list(input_shape.values()) if isinstance(input_shape, dict) else input_shape
            specs = [KerasTensor(tuple(s), x.dtype) for s, x in zip(shapes, flat)]
            if isinstance(input_shape, dict):
                specs = dict(zip(input_shape, specs))
        outputs = self.compute_output_spec(specs)
        return map_structure(lambda x: tuple(x.shape), outputs)

    def __repr__(self) -> str:
        return (
            f"<Function name={self.name}, {len(self.inputs)} inputs, {len(self.outputs)} outputs>"
        )
