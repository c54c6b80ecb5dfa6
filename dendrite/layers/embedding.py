"""Embedding (integer ids -> learned vectors) and Masking (skip padded timesteps).

Both can start a Keras mask: a boolean tensor of shape ``inputs.shape`` (Embedding) or
``inputs.shape[:-1]`` (Masking), True where a timestep holds data. The base layer attaches
it to the output as ``_keras_mask``; layers that accept ``mask=`` (recurrent layers,
attention, BatchNormalization, losses) receive it from there.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.normalization import embedding_lookup


def _initializer(identifier: Any) -> Any:
    # Keras' "uniform" and "normal" are RandomUniform(-0.05, 0.05) and RandomNormal(0, 0.05).
    if identifier == "uniform":
        return initializers.RandomUniform()
    if identifier == "normal":
        return initializers.RandomNormal()
    return initializers.get(identifier)


@register_layer
class Embedding(Layer):
    """Turns non-negative integer ids into dense vectors: ``y[..., :] = E[i[...], :]``.

    ``E`` is the ``(input_dim, output_dim)`` weight ``embeddings``; the output has shape
    ``inputs.shape + (output_dim,)``. The gradient adds each output row's gradient into the
    row of ``E`` it was read from (rows read twice receive both).

    Args:
        input_dim: vocabulary size (largest id + 1).
        output_dim: size of each vector.
        embeddings_initializer: Keras default "uniform" (RandomUniform(-0.05, 0.05)).
        embeddings_regularizer, activity_regularizer: penalties added to the loss.
        embeddings_constraint: applied to ``E`` after updates.
        mask_zero: id 0 is padding: the layer emits the mask ``inputs != 0`` (so
            ``input_dim`` should be the vocabulary size + 1).
        weights: optional initial ``E`` (an array, or a list holding one).
        input_length: deprecated in Keras 3 and ignored.
    """

    example = {
        "kwargs": {"input_dim": 7, "output_dim": 3},
        "input_shape": (2, 5),
        "input_dtype": "int64",
        "input_range": (0, 7),
    }

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        super().__init__(**kwargs)
        for label, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(
                    f"Both `input_dim` and `output_dim` of Embedding should be positive "
                    f"integers; received {label}={value!r}."
                )
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = _initializer(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self._computes_mask = self.mask_zero
        # Integer ids must not be cast to the float dtype.
        self.autocast = False
        if weights is not None:
            self.build()
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        self.embeddings = self.add_weight(
            (self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True

    def _ids(self, inputs: Any) -> np.ndarray:
        ids = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        if ids.dtype.kind not in "iu":
            if ids.dtype.kind == "f" and not np.all(np.isfinite(ids)):
                raise ValueError(
                    f"Layer '{self.name}' (Embedding) expects integer ids; received "
                    f"non-finite values in an input of dtype {ids.dtype}."
                )
            ids = ids.astype(np.int64)
        if ids.size:
            low, high = ids.min(), ids.max()
            if low < 0 or high >= self.input_dim:
                bad = int(low) if low < 0 else int(high)
                raise ValueError(
                    f"Layer '{self.name}' (Embedding): index {bad} is out of range; ids must "
                    f"be in [0, input_dim) = [0, {self.input_dim}) (input_dim="
                    f"{self.input_dim}). Received input of shape {tuple(ids.shape)}."
                )
        return ids

    def call(self, inputs: Tensor) -> Tensor:
        return embedding_lookup(self.embeddings, self._ids(inputs))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        ids = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return Tensor._make(ids != 0)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        self._maybe_build(tuple(input_shape))
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "mask_zero": self.mask_zero,
        }


@register_layer
class Masking(Layer):
    """Masks timesteps in which every feature equals ``mask_value``.

    With ``keep[b, t] = any_f(x[b, t, f] != mask_value)``: the output is
    ``x * keep[..., None]`` (masked timesteps become 0) and the mask ``keep`` rides on the
    output, so later layers that support masking skip those timesteps.

    Args:
        mask_value: the padding value (default 0.0).
    """

    example = {"kwargs": {"mask_value": 0.0}, "input_shape": (2, 3, 4)}

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True
        self._computes_mask = True

    def _keep(self, inputs: Any) -> np.ndarray:
        data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        if data.ndim < 2:
            raise ValueError(
                f"Layer '{self.name}' (Masking) expects inputs with a feature axis (rank >= "
                f"2, typically (batch, timesteps, features)); received shape {data.shape}."
            )
        return np.any(data != self.mask_value, axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        keep = self._keep(inputs)
        return ops.multiply(inputs, keep[..., None].astype(inputs.dtype))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return Tensor._make(self._keep(inputs))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_value": self.mask_value}
