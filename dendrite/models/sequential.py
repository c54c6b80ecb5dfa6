"""``Sequential``: a plain stack of layers, each feeding the next (the design document's
input -> hidden -> output layers, 2.2)."""

from __future__ import annotations

from typing import Any

from dendrite.layers.base import Layer, shape_of
from dendrite.layers.fusion import call_conv_pool, fusable_conv_pool
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.registry import get_layer_class, register_layer
from dendrite.layers.symbolic import KerasTensor
from dendrite.models.model import Model


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
        self.built = False
        if rebuild:
            self._maybe_build_from_input()

    def pop(self) -> Layer:
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._sublayers = [s for s in self._sublayers if s is not layer]
        self.built = False
        self._maybe_build_from_input()
        return layer

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    @property
    def input_shape(self) -> Any:
        shape = self._declared_input_shape()
        if shape is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input shape yet.")
        return shape

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

    def layer_output_shapes(self) -> list:
        """Each layer's output shape (for summary), from the input shape the model knows."""
        shape = getattr(self, "_built_input_shape", None) or self._declared_input_shape()
        if shape is None:
            return ["?"] * len(self._stack)
        shapes = []
        for layer in self._stack:
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def build(self, input_shape: Any = None) -> None:
        if input_shape is None:
            input_shape = self._declared_input_shape()
        if input_shape is None:
            raise ValueError(
                f"Sequential model '{self.name}' cannot be built without an input shape: "
                f"call the model on data, or pass input_shape= to the first layer, or start "
                f"with keras.Input(shape=...)."
            )
        shape = tuple(input_shape)
        self._output_shapes = []
        for layer in self._stack:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
            self._output_shapes.append(shape)
        self._built_input_shape = tuple(input_shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        x = inputs
        stack = self._stack
        index = 0
        while index < len(stack):
            layer = stack[index]
            if index + 1 < len(stack) and fusable_conv_pool(layer, stack[index + 1]):
                fused = call_conv_pool(layer, stack[index + 1], x)
                if fused is not None:
                    x = fused
                    index += 2
                    continue
            x = layer(x)
            index += 1
        return x

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The stack is built layer by layer on the first call; skip Layer's shape-inference
        # build so that first call costs one pass, not two.
        if not self.built and args and not isinstance(args[0], KerasTensor):
            self.built = True
            self._built_input_shape = _batchless(shape_of(args[0]))
        return super().__call__(*args, **kwargs)

    # --- the stack as a functional graph (Keras' model.inputs / layer.output) -------------
    def _graph(self) -> tuple:
        """(input, output) KerasTensors of the stack called on a symbolic input, made once
        per stack (again after add/pop), so that each layer's ``output`` is defined."""
        graph = self.__dict__.get("_symbolic_graph")
        if graph is not None and graph[2] == [id(layer) for layer in self._stack]:
            return graph[0], graph[1]
        shape = getattr(self, "_built_input_shape", None) or self._declared_input_shape()
        if shape is None:
            raise AttributeError(
                f"Sequential model '{self.name}' has no defined input yet: start it with "
                f"keras.Input(shape=...) or call it on data first."
            )
        if self._input_layer is not None:
            x = self._input_layer.output
        else:
            x = Input(batch_shape=tuple(shape))
        y = x
        for layer in self._stack:
            y = layer(y)
        object.__setattr__(self, "_symbolic_graph", (x, y, [id(layer) for layer in self._stack]))
        return x, y

    @property
    def inputs(self) -> list:
        return [self._graph()[0]]

    @property
    def outputs(self) -> list:
        return [self._graph()[1]]

    @property
    def input(self) -> Any:
        return self._graph()[0]

    @property
    def output(self) -> Any:
        return self._graph()[1]

    @property
    def output_names(self) -> list[str]:
        return [self._stack[-1].name] if self._stack else ["output"]

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "layers": []}
        if self._input_layer is not None:
            config["layers"].append(_serialize(self._input_layer))
        config["layers"] += [_serialize(layer) for layer in self._stack]
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config.get("layers", []):
            layer_cls = get_layer_class(entry["class_name"], custom_objects)
            model.add(layer_cls.from_config(entry["config"]), rebuild=False)
        model._maybe_build_from_input()
        return model


def _batchless(shape: Any) -> Any:
    if isinstance(shape, tuple):
        return (None, *shape[1:])
    return shape


def _serialize(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
