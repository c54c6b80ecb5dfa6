"""``Sequential``: a plain stack of layers, each feeding the next (the design document's
input -> hidden -> output layers, 2.2).

As in Keras 3, a stack whose input is known (an ``Input`` first, or ``input_shape=`` on
the first layer) is a functional graph from the moment it is made: each layer is called
once on the symbolic input, so every layer's ``input``/``output``/``output_shape`` and the
model's ``inputs``/``outputs``/``output_shape`` exist at once, and the model runs through
the same ``ExecutionPlan`` as a functional model. A stack without a declared input makes
that graph on its first call, from the data's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.layers.base import Layer
from dendrite.layers.calling import shape_of
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.registry import register_layer
from dendrite.layers.symbolic import KerasTensor
from dendrite.models.graph_config import deserialize_layer, layer_entry
from dendrite.models.model import Model
from dendrite.models.plan import ExecutionPlan


@register_layer
class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: the layers in order (an ``Input``/``InputLayer`` first, or ``input_shape=``
            on the first layer, lets the model build before seeing data).
        name: model name.
    """

    def __init__(
        self,
        layers: list | None = None,
        trainable: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(trainable=trainable, name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._graph: tuple | None = None  # (input, [each layer's output], plan)
        self._implicit_input: KerasTensor | None = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_build_from_input()

    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Append a layer (or an ``Input`` tensor, which sets the input shape)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Only instances of dendrite Layer can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})."
            )
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("An InputLayer can only be the first layer of a Sequential.")
            self._input_layer = layer
        else:
            names = {existing.name for existing in self._stack}
            if layer.name in names:
                raise ValueError(
                    f"All layers added to a Sequential model should have unique names. Name "
                    f"'{layer.name}' is already the name of a layer in this model."
                )
            self._stack.append(layer)
            self._track_layer(layer)
        self._forget_graph()
        if rebuild:
            self._maybe_build_from_input()

    def pop(self, rebuild: bool = True) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._sublayers = [s for s in self._sublayers if s is not layer]
        self._forget_graph()
        if rebuild:
            self._maybe_build_from_input()
        return layer

    def _forget_graph(self) -> None:
        self.built = False
        object.__setattr__(self, "_graph", None)

    @property
    def layers(self) -> list[Layer]:
        """The added layers (the ``InputLayer`` excluded, as in Keras)."""
        return list(self._stack)

    def _declared_input_shape(self) -> tuple | None:
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if self._stack and self._stack[0]._batch_input_shape is not None:
            return self._stack[0]._batch_input_shape
        return None

    def _maybe_build_from_input(self) -> None:
        shape = self._declared_input_shape()
        if shape is not None and self._stack and not self.built:
            self.build(shape)

    # --- the stack as a functional graph --------------------------------------------------
    def build(self, input_shape: Any = None, dtype: Any = None) -> None:
        """Call every layer once on a symbolic input of ``input_shape`` (batch axis first):
        this builds the weights, defines each layer's ``output``, and makes the plan the
        model runs by."""
        if input_shape is None:
            input_shape = self._declared_input_shape()
        if input_shape is None:
            raise ValueError(
                f"Sequential model '{self.name}' cannot be built without an input shape: "
                f"call the model on data, or pass input_shape= to the first layer, or start "
                f"with keras.Input(shape=...)."
            )
        x = self._input_tensor(tuple(input_shape), dtype)
        outputs, y = [], x
        for layer in self._stack:
            y = layer(y)
            outputs.append(y)
        # The last layer may return several tensors (Bidirectional with merge_mode=None):
        # the model then has as many outputs, as in Keras.
        plan = ExecutionPlan([x], list(y) if isinstance(y, (list, tuple)) else [y], self.name)
        object.__setattr__(self, "_graph", (x, outputs, plan))
        self._built_input_shape = tuple(x.shape)
        self.built = True

    def _input_tensor(self, shape: tuple, dtype: Any) -> KerasTensor:
        """The graph's input: the declared ``Input``, else one made for ``shape`` (kept
        while the shape stays, so that layers' outputs from an earlier build still connect
        to the model's input)."""
        if self._input_layer is not None:
            return self._input_layer.output
        kept = self._implicit_input
        if kept is not None and kept.shape == shape and (dtype is None or kept.dtype == dtype):
            return kept
        made = Input(batch_shape=shape, dtype=dtype or self._stack[0].dtype)
        object.__setattr__(self, "_implicit_input", made)
        return made

    def _built_graph(self) -> tuple:
        graph = self._graph
        if graph is None:
            raise AttributeError(
                f"Sequential model '{self.name}' has no defined input yet: start it with "
                f"keras.Input(shape=...), pass input_shape= to its first layer, or call it "
                f"on data first."
            )
        return graph

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.built and args and not isinstance(args[0], (KerasTensor, dict)):
            # Built on the first call from the data's shape (any batch size) and, for
            # integer inputs (token ids), its dtype.
            data = args[0]
            shape = shape_of(data)
            if isinstance(shape, tuple):
                kind = np.asarray(getattr(data, "data", data)).dtype
                self.build((None, *shape[1:]), None if kind.kind == "f" else kind.name)
        return super().__call__(*args, **kwargs)

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if isinstance(inputs, dict):
            raise ValueError(
                f"Sequential model '{self.name}' takes one input tensor; received a dict with "
                f"keys {list(inputs)}. Pass the array itself, or build a functional Model "
                f"with named Inputs."
            )
        if mask is not None and hasattr(inputs, "_keras_mask"):
            inputs._keras_mask = mask
        plan = self._built_graph()[2]
        results = plan.run([inputs])
        return results[0] if len(plan.outputs) == 1 else list(results)

    def _convert(self, inputs: Any) -> Any:
        # The first layer converts the data itself (its dtype, its autocast).
        return inputs

    @property
    def inputs(self) -> list:
        return [self._built_graph()[0]]

    @property
    def outputs(self) -> list:
        return list(self._built_graph()[2].outputs)

    @property
    def input(self) -> Any:
        return self._built_graph()[0]

    @property
    def output(self) -> Any:
        return self._built_graph()[1][-1]

    @property
    def input_shape(self) -> Any:
        shape = self._declared_input_shape()
        if shape is None and self._graph is not None:
            shape = self._graph[0].shape
        if shape is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input shape yet.")
        return shape

    @property
    def output_shape(self) -> Any:
        output = self.output
        if isinstance(output, (list, tuple)):
            return [tensor.shape for tensor in output]
        return output.shape

    def layer_output_shapes(self) -> list:
        """Each layer's output shape (for summary), or "?" before the model is built."""
        if self._graph is None:
            return ["?"] * len(self._stack)
        return [shape_of(y) for y in self._graph[1]]

    @property
    def output_names(self) -> list[str]:
        return [self._stack[-1].name] if self._stack else ["output"]

    # --- configuration --------------------------------------------------------------------
    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "layers": []}
        if self._input_layer is not None:
            config["layers"].append(layer_entry(self._input_layer))
        config["layers"] += [layer_entry(layer) for layer in self._stack]
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config.get("layers", []):
            model.add(deserialize_layer(entry, custom_objects), rebuild=False)
        model._maybe_build_from_input()
        return model
