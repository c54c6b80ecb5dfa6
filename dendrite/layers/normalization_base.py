"""What the normalisation layers share: the scale ``gamma`` and offset ``beta`` with their
initializers, regularizers and constraints (``_Normalization``), and the check of a
normalised axis against the input shape (``_check_axis``).

Each layer maps ``x`` to ``gamma * (x - mu) / sqrt(sigma^2 + eps) + beta`` and differs in
where ``mu`` and ``sigma^2`` come from: the batch (per channel, over every other axis), each
sample's features, or groups of channels within a sample.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.ops.creation import as_float_tensor


def _check_axis(layer: Layer, axis: int, input_shape: tuple) -> int:
    rank = len(input_shape)
    if not -rank <= axis < rank:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}): axis {axis} is out of range for "
            f"inputs of rank {rank}; received input shape {tuple(input_shape)}."
        )
    size = input_shape[axis]
    if size is None:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}): axis {axis} of the input must "
            f"have a defined size; received input shape {tuple(input_shape)}."
        )
    return axis % rank


class _Normalization(Layer):
    """Shared arguments of the normalisation layers: the scale ``gamma`` and offset
    ``beta``, their initializers, regularizers and constraints."""

    def __init__(
        self,
        epsilon: float,
        center: bool,
        scale: bool,
        beta_initializer: Any,
        gamma_initializer: Any,
        beta_regularizer: Any,
        gamma_regularizer: Any,
        beta_constraint: Any,
        gamma_constraint: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None

    def _add_scale_and_offset(self, shape: tuple) -> None:
        # Keras' creation order, hence get_weights order: gamma, then beta.
        if self.scale:
            self.gamma = self.add_weight(
                shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                name="gamma",
            )
        if self.center:
            self.beta = self.add_weight(
                shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                name="beta",
            )

    def _float(self, inputs: Tensor) -> Tensor:
        return inputs if inputs.data.dtype.kind == "f" else as_float_tensor(inputs, self.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        # Building here too lets a model built from shapes alone create the weights.
        self._maybe_build(tuple(input_shape))
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }
