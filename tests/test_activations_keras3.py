"""Every registered activation: float64 gradients against central differences, and the
Keras 3 activations added as compositions against their NumPy definitions."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite import registry
from dendrite.testing import gradcheck

# Points away from the kinks (0 for ReLU-like, +-1 for hard_tanh, +-3 for hard_sigmoid).
X = np.array([[-3.7, -2.1, -0.8, -0.3], [0.2, 0.7, 1.6, 3.4]])


# Activations with required arguments beyond x (Keras' signatures), and the values used.
ARGUMENTS = {"threshold": (0.5, -1.0)}


@pytest.mark.parametrize("name", sorted(registry.items("activation")))
def test_gradient_of_every_activation(name: str) -> None:
    fn = keras.activations.get(name)
    extra = ARGUMENTS.get(name, ())
    gradcheck(lambda x: fn(x, *extra), X, name=name, mode="elementwise")


def _softplus(x):
    return np.log1p(np.exp(x))


REFERENCE = {
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "celu": lambda x: np.maximum(x, 0) + np.minimum(0, np.expm1(x)),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
    "hard_silu": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "log_sigmoid": lambda x: -_softplus(-x),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_keras_3_activations_match_their_definitions(name: str) -> None:
    got = keras.activations.get(name)(keras.Tensor(X)).data
    np.testing.assert_allclose(got, REFERENCE[name](X), rtol=1e-12, atol=1e-12)
    assert keras.activations.serialize(keras.activations.get(name)) == name


def test_hard_swish_is_hard_silu_and_layers_accept_the_names() -> None:
    assert keras.activations.get("hard_swish") is keras.activations.hard_silu
    layer = keras.layers.Dense(2, activation="hard_swish")
    assert layer.get_config()["activation"] == "hard_silu"
    assert keras.layers.Activation("mish")(np.ones((1, 2), "float32")).shape == (1, 2)
