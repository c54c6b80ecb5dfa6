"""Where each dendrite weight lives in Keras' HDF5 layout.

Keras saves an object's own variables under ``<path>/vars/<i>`` (trainable ones first,
in creation order) and walks into its children: a model's layers under
``layers/<snake_case(class name)>`` (numbered ``_1``, ``_2``, ... per class, in layer
order; a ``Sequential`` leaves its input layer out), a recurrent layer's ``cell``,
``Bidirectional``'s ``forward_layer`` / ``backward_layer``, a wrapper's ``layer``, and
``MultiHeadAttention``'s ``query_dense`` / ``key_dense`` / ``value_dense`` /
``output_dense`` (``GroupQueryAttention``'s ``_query_dense``, ... and ``_gate_dense``, under
``grouped_query_attention``: Keras' class name). ``slots(model)`` lists, for every weight of
a dendrite model, the group and index Keras uses, with the shape and dtype Keras stores.

One layer needs a word: Keras' ``Normalization`` keeps ``mean`` and ``variance`` (shaped
like the kept axes, as dendrite's) and a ``count`` (an integer the adapt loop used), written
as 0 where a dendrite layer lacks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dendrite.registry.naming import snake_case


@dataclasses.dataclass
class Slot:
    group: str  # ".../vars"
    index: int
    variable: Any  # None for a Keras-only value (Normalization's count)
    keras_shape: tuple[int, ...]
    keras_dtype: np.dtype
    constant: Any = None  # the value written for a Keras-only slot

    def to_keras(self) -> np.ndarray:
        if self.variable is None:
            return np.asarray(self.constant, dtype=self.keras_dtype)
        return np.asarray(self.variable.data).reshape(self.keras_shape)

    def from_keras(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array).reshape(tuple(self.variable.data.shape))


MODEL_CLASSES = ("Sequential", "Functional")
# dendrite's own bookkeeping, not attributes Keras would see
SKIPPED_ATTRIBUTES = {
    "_sublayers",
    "_tracked_variables",
    "_own_weights",
    "_inbound_nodes",
    "_outbound_nodes",
}
RNN_CLASSES = ("RNN", "LSTM", "GRU", "SimpleRNN")
MHA_PARTS = {
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
}
# GroupQueryAttention keeps its sublayers in private attributes, which name its groups
GQA_PARTS = {
    "query": "_query_dense",
    "key": "_key_dense",
    "gate": "_gate_dense",
    "value": "_value_dense",
    "attention_output": "_output_dense",
}
# Layers whose Python class in Keras has another name than the one its files' configs
# give (Keras names a layer's group after the class itself)
KERAS_CLASSES = {"GroupQueryAttention": "GroupedQueryAttention"}


def keras_class_name(layer: Any) -> str:
    """The class name Keras saves ``layer`` under (an op call is Keras' op class)."""
    # saving ranks below models: the model classes are recognised by name, not imported
    bases = [cls.__name__ for cls in type(layer).__mro__]
    if "Sequential" in bases:
        return "Sequential"
    if "Functional" in bases:
        return "Functional"
    if type(layer).__name__ == "OpLayer":
        return "".join(part.capitalize() for part in str(layer.op).split("_"))
    return type(layer).__name__


def model_layers(model: Any) -> list[Any]:
    """The layers Keras walks: a ``Sequential`` leaves out its input layer."""
    layers = list(model.layers)
    if keras_class_name(model) == "Sequential":
        layers = [layer for layer in layers if type(layer).__name__ != "InputLayer"]
    return layers


def has_own_hooks(layer: Any) -> bool:
    """Whether ``layer``'s class overrides Keras' ``save_own_variables`` or
    ``load_own_variables``: its ``vars`` group is then written and read by those hooks."""
    from dendrite.layers.base import Layer

    if not isinstance(layer, Layer):
        return False
    cls = type(layer)
    return any(
        getattr(cls, hook, None) is not getattr(Layer, hook)
        for hook in ("save_own_variables", "load_own_variables")
    )


def walk_model(model: Any, weights: bool = True) -> _Walk:
    """Keras' walk over ``model``: ``visits`` lists (path, object) in the order Keras'
    saving calls the objects' hooks; with ``weights``, ``slots`` places every weight."""
    walk = _Walk(weights)
    if keras_class_name(model) in MODEL_CLASSES:
        walk.model(model, "")
    else:  # a subclassed model: Keras walks its attributes
        walk.seen.add(id(model))
        walk.names[""] = model.name
        walk.visits.append(("", model))
        walk.own(model, "")
    return walk


def saveables(model: Any) -> list[tuple[str, Any]]:
    """(path, object) for ``model`` and every layer Keras' saving walks to, in Keras'
    order (the paths of ``layers/<name>/vars`` and of ``assets/<path>``)."""
    return walk_model(model, weights=False).visits


def slots(model: Any) -> tuple[list[Slot], dict[str, str]]:
    """(every weight's slot, group path -> object name) for ``model``; every weight of the
    model appears exactly once (a shared layer is walked once, as Keras does). The own
    variables of a layer with its own hooks (``has_own_hooks``) have no slot: the hooks
    write and read them."""
    walk = walk_model(model)
    placed = {id(slot.variable) for slot in walk.slots} | walk.hooked_variables
    missing = [v for v in model.weights if id(v) not in placed]
    if missing:
        labels = ", ".join(str(getattr(v, "path", v)) for v in missing[:6])
        raise ValueError(
            f"Model '{model.name}': the weights {labels} have no place in Keras' layout "
            f"(they belong to no layer Keras would walk to); save it as .dendrite instead."
        )
    return walk.slots, walk.names


def _keras_names(layers: Any) -> list[tuple[Any, str]]:
    """Each layer with the name Keras' saving gives it within one list: its class in
    snake_case, then ``_1``, ``_2``, ... for the second, third of the same class."""
    used: dict[str, int] = {}
    named = []
    for layer in layers:
        kind = keras_class_name(layer)
        name = snake_case(KERAS_CLASSES.get(kind, kind))
        used[name] = used.get(name, -1) + 1
        named.append((layer, f"{name}_{used[name]}" if used[name] else name))
    return named


class _Walk:
    def __init__(self, weights: bool = True) -> None:
        self.weights = weights
        self.slots: list[Slot] = []
        self.names: dict[str, str] = {}
        self.seen: set[int] = set()
        self.visits: list[tuple[str, Any]] = []
        self.hooked_variables: set[int] = set()

    def model(self, model: Any, path: str) -> None:
        self.names[path] = model.name
        self.seen.add(id(model))
        self.visits.append((path, model))
        if has_own_hooks(model):
            self.hooked_variables |= {id(v) for v in model._own_variables()}
        for layer, name in _keras_names(model_layers(model)):
            self.layer(layer, _join(path, "layers", name))

    def layer(self, layer: Any, path: str) -> None:
        if id(layer) in self.seen:
            return
        kind = keras_class_name(layer)
        if kind in MODEL_CLASSES:
            self.model(layer, path)
            return
        self.seen.add(id(layer))
        self.names[path] = layer.name
        self.visits.append((path, layer))
        if has_own_hooks(layer):
            self.hooked(layer, path)
            return
        if kind in RNN_CLASSES or _is_rnn(layer):
            self.names[_join(path, "cell")] = getattr(layer.cell, "name", "cell")
            self.visits.append((_join(path, "cell"), layer.cell))
            self.own(layer.cell, _join(path, "cell"))
            return
        if kind == "Bidirectional":
            self.layer(layer.forward_layer, _join(path, "forward_layer"))
            self.layer(layer.backward_layer, _join(path, "backward_layer"))
            return
        if kind == "TimeDistributed":
            self.layer(layer.layer, _join(path, "layer"))
            return
        if kind in ("MultiHeadAttention", "GroupQueryAttention"):
            if self.weights:
                self.attention(
                    layer, path, MHA_PARTS if kind == "MultiHeadAttention" else GQA_PARTS
                )
            return
        if kind == "Normalization":
            if self.weights:
                self.normalization(layer, path)
            return
        self.own(layer, path)

    def hooked(self, layer: Any, path: str) -> None:
        """A layer with its own hooks: they write its ``vars``; its sublayers are walked."""
        own = layer._own_variables()
        self.hooked_variables |= {id(v) for v in own}
        self.seen |= {id(v) for v in own}
        if layer.__dict__.get("_sublayers"):
            self.attributes(layer, path)

    def own(self, layer: Any, path: str) -> None:
        if has_own_hooks(layer):  # a subclassed model's or a recurrent cell's own class
            self.hooked(layer, path)
            return
        # A composite layer: its own variables here, its sublayers under attributes.
        sublayers = list(layer.__dict__.get("_sublayers", ()))
        variables = layer._own_variables() if sublayers else list(layer.weights)
        variables.sort(key=lambda v: not getattr(v, "trainable", True))
        for index, variable in enumerate(variables):
            self._add(path, index, variable)
        if sublayers:
            self.attributes(layer, path)

    def attributes(self, layer: Any, path: str) -> None:
        """Keras walks a layer's attributes by name, public ones first; a list of layers
        becomes a container whose items are named by class (``dense``, ``dense_1``)."""
        from dendrite.layers.base import Layer

        attributes = dict(layer.__dict__)
        if "Model" in [cls.__name__ for cls in type(layer).__mro__]:
            attributes["layers"] = list(layer.layers)  # Keras' Model.layers, a property
        for name in sorted(attributes, key=lambda n: f"~{n}" if n.startswith("_") else n):
            if name.startswith("__") or name in SKIPPED_ATTRIBUTES:
                continue
            value = attributes[name]
            if isinstance(value, Layer):
                self.layer(value, _join(path, name))
            elif isinstance(value, (list, tuple, dict)):
                items = list(value.values()) if isinstance(value, dict) else list(value)
                layers = [item for item in items if isinstance(item, Layer)]
                for item, key in _keras_names(layers):
                    self.layer(item, _join(path, name, key))

    def _add(self, path: str, index: int, variable: Any, shape: tuple | None = None) -> None:
        self.seen.add(id(variable))
        if not self.weights:
            return
        shape = tuple(variable.data.shape) if shape is None else shape
        self.slots.append(
            Slot(_join(path, "vars"), index, variable, shape, np.dtype(variable.data.dtype))
        )

    def attention(self, layer: Any, path: str, groups: dict[str, str]) -> None:
        parts: dict[str, list[Any]] = {}
        for variable in layer.weights:
            label = str(getattr(variable, "path", ""))
            segments = label.split("/")
            part = segments[-2] if len(segments) >= 2 else ""
            if part not in groups:
                raise ValueError(
                    f"{type(layer).__name__} '{layer.name}': weight {label!r} has no place in "
                    f"Keras' layout."
                )
            parts.setdefault(part, []).append(variable)
        for part, variables in parts.items():
            sub = _join(path, groups[part])
            self.names[sub] = part
            for index, variable in enumerate(variables):
                self._add(sub, index, variable)

    def normalization(self, layer: Any, path: str) -> None:
        if getattr(layer, "input_mean", None) is not None:
            return  # statistics given in the config: Keras creates no weights either
        by_name = {str(getattr(v, "path", "")).rsplit("/", 1)[-1]: v for v in layer.weights}
        mean, variance, count = by_name.get("mean"), by_name.get("variance"), by_name.get("count")
        if mean is None or variance is None or len(layer.weights) not in (2, 3):
            raise ValueError(
                f"Normalization '{layer.name}': expected the weights mean, variance and count."
            )
        self._add(path, 0, mean)
        self._add(path, 1, variance)
        if count is not None:
            self._add(path, 2, count)
        else:
            self.slots.append(Slot(_join(path, "vars"), 2, None, (), np.dtype("int32"), 0))


def _is_rnn(layer: Any) -> bool:
    from dendrite.layers.rnn import RNN

    return isinstance(layer, RNN)


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)
