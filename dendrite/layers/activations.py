"""Activation functions by Keras name (the design document's 2.3: sigmoid, tanh, ReLU, ...).

``get('relu')`` returns the op from ``dendrite.ops``; ``None`` and 'linear' give the
identity. Custom callables pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite import ops

# Keras name -> name of the op in dendrite.ops.
_NAMES = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "selu": "selu",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hard_sigmoid",
    "tanh": "tanh",
    "softplus": "softplus",
    "softsign": "softsign",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "exponential": "exp",
}


def linear(x: Any) -> Any:
    """The identity."""
    return x


# Keras exposes each activation as a function of this module (keras.activations.relu(x)):
# they are the ops themselves, so that Dense(activation=activations.relu) is recognised
# (and fused) exactly as Dense(activation="relu").
relu = ops.relu
relu6 = ops.relu6
leaky_relu = ops.leaky_relu
elu = ops.elu
selu = ops.selu
gelu = ops.gelu
silu = ops.silu
swish = ops.silu
sigmoid = ops.sigmoid
hard_sigmoid = ops.hard_sigmoid
tanh = ops.tanh
softplus = ops.softplus
softsign = ops.softsign
softmax = ops.softmax
log_softmax = ops.log_softmax
exponential = ops.exp


def get(identifier: Any) -> Callable[[Any], Any]:
    """The activation function for a Keras name, None (linear) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        op_name = _NAMES.get(identifier)
        fn = getattr(ops, op_name, None) if op_name else None
        if op_name == "linear":
            return linear
        if fn is None:
            raise ValueError(
                f"Unknown activation {identifier!r}. Valid names: {', '.join(sorted(_NAMES))}."
            )
        return fn
    if isinstance(identifier, dict):
        return get(identifier.get("config", {}).get("name", identifier.get("class_name")))
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation: {identifier!r}.")


def serialize(fn: Callable[[Any], Any]) -> str:
    """The Keras name of an activation (the inverse of ``get`` for built-in ones)."""
    if fn is linear:
        return "linear"
    for keras_name, op_name in _NAMES.items():
        if getattr(ops, op_name, None) is fn:
            return keras_name
    name = getattr(fn, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize activation {fn!r}: it has no name.")
    return name
