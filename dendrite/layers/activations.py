"""Activation functions by Keras name (the design document's 2.3: sigmoid, tanh, ReLU, ...).

``get('relu')`` returns the op from ``dendrite.ops``; ``None`` and 'linear' give the
identity. Custom callables pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite import ops, registry
from dendrite.registry import serialization


@registry.register("activation")
def linear(x: Any) -> Any:
    """The identity."""
    return x


# Keras exposes each activation as a function of this module (keras.activations.relu(x)):
# they are the ops themselves, so that Dense(activation=activations.relu) is recognised
# (and fused) exactly as Dense(activation="relu"). The ops live in dendrite.ops, which knows
# nothing of Keras's names; they are registered under those names here.
relu = registry.register("activation")(ops.relu)
relu6 = registry.register("activation")(ops.relu6)
leaky_relu = registry.register("activation")(ops.leaky_relu)
elu = registry.register("activation")(ops.elu)
selu = registry.register("activation")(ops.selu)


@registry.register("activation")
def gelu(x: Any, approximate: bool = False) -> Any:
    """``x * Phi(x)`` with Phi the standard normal CDF: Keras 3's activation is the exact
    (erf) form by default, while ``keras.ops.gelu`` defaults to the tanh approximation."""
    return ops.gelu(x, approximate=approximate)


silu = swish = registry.register("activation", "silu", aliases=("swish",))(ops.silu)
sigmoid = registry.register("activation")(ops.sigmoid)
hard_sigmoid = registry.register("activation")(ops.hard_sigmoid)
tanh = registry.register("activation")(ops.tanh)
softplus = registry.register("activation")(ops.softplus)
softsign = registry.register("activation")(ops.softsign)
softmax = registry.register("activation")(ops.softmax)
log_softmax = registry.register("activation")(ops.log_softmax)
exponential = registry.register("activation", "exponential")(ops.exp)
hard_silu = hard_swish = registry.register("activation", "hard_silu", aliases=("hard_swish",))(
    ops.hard_silu
)
log_sigmoid = registry.register("activation")(ops.log_sigmoid)


# Keras 3 activations with no op of their own: compositions of ops (gradients follow).
@registry.register("activation")
def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))`` (Misra, 2019)."""
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


# Keras 3 activations whose maths lives in dendrite.ops (activations_more.py).
celu = registry.register("activation")(ops.celu)
glu = registry.register("activation")(ops.glu)
hard_tanh = registry.register("activation")(ops.hard_tanh)
hard_shrink = registry.register("activation")(ops.hard_shrink)
soft_shrink = registry.register("activation")(ops.soft_shrink)
tanh_shrink = registry.register("activation")(ops.tanh_shrink)
squareplus = registry.register("activation")(ops.squareplus)
sparse_plus = registry.register("activation")(ops.sparse_plus)
sparse_sigmoid = registry.register("activation")(ops.sparse_sigmoid)
sparsemax = registry.register("activation")(ops.sparsemax)
# Registered by name as Keras registers it, though its two required arguments keep it from
# serving as a layer's ``activation="..."``.
threshold = registry.register("activation")(ops.threshold)


def get(identifier: Any) -> Callable[[Any], Any]:
    """The activation function for a Keras name, a config dict, None (linear) or a
    callable (returned as it is). Names are found by ``dendrite.registry.get("activation",
    ...)``: custom-object scopes and registered functions, then Keras's names."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return registry.get("activation", identifier)
    if isinstance(identifier, dict):
        return get(identifier.get("config", {}).get("name", identifier.get("class_name")))
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation: {identifier!r}.")


def serialize(fn: Callable[[Any], Any]) -> str:
    """The Keras name of an activation (the inverse of ``get`` for built-in ones; a custom
    function gives its ``__name__``)."""
    name = registry.name_of("activation", fn)
    if name is not None:
        return name
    name = getattr(fn, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot serialize activation {fn!r}: it has no name.")
    return name


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Callable[[Any], Any]:
    """The activation named by ``config``: a name, or Keras 3's dict
    ``{"class_name": "function", "config": "relu", ...}``."""
    return serialization.deserialize_keras_object(
        config, custom_objects, kinds=("activation",), printable_module_name="activation"
    )
