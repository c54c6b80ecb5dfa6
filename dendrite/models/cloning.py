"""``clone_model``: the same architecture with fresh weights, as Keras' (weights are
re-initialised, not copied: call ``clone.set_weights(model.get_weights())`` for a copy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite.layers.base import Layer
from dendrite.layers.input_layer import Input
from dendrite.models.functional import Functional
from dendrite.models.model import Model
from dendrite.models.sequential import Sequential


def _fresh(layer: Layer) -> Layer:
    return type(layer).from_config(layer.get_config())


def clone_model(
    model: Model,
    input_tensors: Any = None,
    clone_function: Callable[[Layer], Layer] | None = None,
) -> Model:
    """A new model of the same class and architecture, its layers rebuilt from their configs.

    Args:
        model: a Sequential or functional model (or a subclassed model with
            ``get_config``/``from_config``).
        input_tensors: not supported (the clone gets new inputs of the same shapes).
        clone_function: for a Sequential model, maps each layer to its clone (default: a
            fresh layer from the layer's config).
    """
    if input_tensors is not None:
        raise ValueError("clone_model: input_tensors is not supported; the clone gets new inputs.")
    if isinstance(model, Sequential):
        make = clone_function or _fresh
        clone = Sequential(name=model.name, trainable=model.trainable)
        if model._input_layer is not None:
            head = model._input_layer
            clone.add(Input(batch_shape=head.batch_shape, dtype=head.dtype))
        for layer in model._stack:
            clone.add(make(layer))
        return clone
    if clone_function is not None:
        raise ValueError(
            "clone_model: clone_function is supported for Sequential models only; a "
            "functional model is cloned from its config."
        )
    if isinstance(model, Functional):
        return type(model).from_config(model.get_config())
    try:
        config = model.get_config()
    except NotImplementedError:
        config = None
    if not config:
        raise ValueError(
            f"clone_model: the subclassed model {type(model).__name__} has no get_config(); "
            f"implement get_config() (and from_config if needed) to clone it."
        )
    return type(model).from_config(config)
