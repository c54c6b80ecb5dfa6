"""``SpectralNormalization``: a wrapped layer's kernel divided by its spectral norm.

With the kernel reshaped to a matrix ``W`` (rows: all axes but the last; columns: the
last axis) and a persistent row vector ``u`` (1, n), each training call runs
``power_iterations`` steps of the power method,

    v <- normalize(u W^T),   u <- normalize(v W),      normalize(x) = x / ||x||_2,

estimates the largest singular value ``sigma = v W u^T`` and replaces the kernel by
``W / sigma`` (kept: the next step starts from it) and ``u`` by the new ``u``. Like Keras,
the update happens in place (no gradient flows through ``sigma``), only in training, and
not for an all-zero kernel; inference calls the wrapped layer with the kernel as it is
(Miyato et al. 2018).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers import initializers
from dendrite.layers.core import Dense
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.layers.wrappers import Wrapper


def _normalize(x: np.ndarray, epsilon: float = 1e-7) -> np.ndarray:
    return x / np.sqrt(np.maximum(np.sum(x * x), epsilon))


@register_layer
class SpectralNormalization(Wrapper):
    """Spectral normalisation of ``layer``'s ``kernel`` (or ``embeddings``); see the module.

    Args:
        layer: the layer to wrap (Dense, Conv2D, Embedding, ...), or its config dict.
        power_iterations: power-method steps per training call (> 0; default 1).

    Weights (Keras' order): the wrapped kernel, ``vector_u`` (1, kernel.shape[-1]; not
    trainable, drawn from a truncated normal of stddev 0.02), then the wrapped layer's
    others. A .keras file stores the kernel and ``vector_u`` as the wrapper's variables
    and the kernel again under the wrapped layer, as Keras writes it.
    """

    example = {
        "kwargs": lambda dtype=None: {"layer": Dense(3, dtype=dtype)},
        "input_shape": (2, 4),
    }

    def __init__(self, layer: Any, power_iterations: int = 1, **kwargs: Any) -> None:
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not int(power_iterations) > 0:
            raise ValueError(
                f"`power_iterations` should be greater than zero. Received: "
                f"`power_iterations={power_iterations}`"
            )
        self.power_iterations = int(power_iterations)

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        if hasattr(self.layer, "kernel"):
            kernel = self.layer.kernel
        elif hasattr(self.layer, "embeddings"):
            kernel = self.layer.embeddings
        else:
            raise ValueError(
                f"Layer '{self.name}' (SpectralNormalization): {type(self.layer).__name__} "
                f"object has no attribute 'kernel' nor 'embeddings'"
            )
        # Tracked here too, as Keras does: the weights read [kernel, vector_u, the wrapped
        # layer's others], and the file holds the kernel in both places.
        self.kernel = kernel
        self.vector_u = self.add_weight(
            (1, kernel.shape[-1]),
            initializer=initializers.TruncatedNormal(stddev=0.02),
            trainable=False,
            name="vector_u",
            dtype=kernel.dtype,
        )
        self.built = True

    def normalized_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(new u, kernel / sigma) by the power method, as arrays (nothing assigned)."""
        kernel = np.asarray(self.kernel.data)
        weights = kernel.reshape(-1, kernel.shape[-1])
        u = np.asarray(self.vector_u.data)
        for _ in range(self.power_iterations):
            v = _normalize(u @ weights.T)
            u = _normalize(v @ weights)
        sigma = (v @ weights) @ u.T
        return u.astype(self.vector_u.dtype), (kernel / sigma).astype(kernel.dtype)

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        if training and np.any(self.kernel.data != 0):
            u, kernel = self.normalized_weights()
            self.vector_u.assign(u)
            self.kernel.assign(kernel)
        return super().call(inputs, training=training)

    def _saved_variables(self) -> list:
        return [self.kernel, self.vector_u]

    def save_own_variables(self, store: Any) -> None:
        """Keras' layout: ``"0"`` the wrapped kernel, ``"1"`` ``vector_u``."""
        for index, variable in enumerate(self._saved_variables()):
            store[f"{index}"] = np.array(variable.data, copy=True)

    def load_own_variables(self, store: Any) -> None:
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables (kernel, vector_u), "
                f"but received {len(store.keys())} variables during loading."
            )
        values = [np.asarray(store[f"{index}"]) for index in range(len(variables))]
        for variable, value in zip(variables, values):
            if tuple(value.shape) != tuple(variable.data.shape):
                raise ValueError(
                    f"Layer '{self.name}' variable '{variable.name}' has shape "
                    f"{tuple(variable.data.shape)}; the store holds shape {tuple(value.shape)}."
                )
        for variable, value in zip(variables, values):
            variable.assign(value)

    def get_config(self) -> dict:
        return {**super().get_config(), "power_iterations": self.power_iterations}
