"""Core layers: Dense, Activation, Dropout, Flatten, Reshape.

Dense is the design document's neuron layer: ``y = f(x W + b)`` with ``W`` of shape
(input_dim, units), ``b`` of shape (units,) (Keras' layout).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.ops.dense import dense
from dendrite.ops.windows import standardize_data_format


@register_layer
class Dense(Layer):
    """Densely connected layer: ``y = activation(x @ kernel + bias)`` over the last axis.

    Args:
        units: output size.
        activation: name or callable (None: linear). ReLU is fused into the product.
        use_bias: add a bias vector.
        kernel_initializer, bias_initializer: Keras defaults glorot_uniform and zeros.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the
            training loss.
        kernel_constraint, bias_constraint: callables applied to the weights after updates.
    """

    example = {"kwargs": {"units": 3, "activation": "tanh"}, "input_shape": (4, 5)}

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units` in Dense: expected a positive "
                f"integer, got {units!r}."
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self._fuse_relu = self.activation is getattr(ops, "relu", None)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True  # Keras 3: a mask passes through Dense

    def build(self, input_shape: tuple) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to Dense layer '{self.name}' must be "
                f"defined; received input shape {tuple(input_shape)}."
            )
        self.kernel = self.add_weight(
            (input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = (
            self.add_weight(
                (self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
            if self.use_bias
            else None
        )
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.data.dtype.kind != "f":
            inputs = ops.cast(inputs, self.dtype)
        if self.bias is not None:
            out = dense(inputs, self.kernel, self.bias, relu=self._fuse_relu)
            return out if self._fuse_relu else self.activation(out)
        return self.activation(ops.matmul(inputs, self.kernel))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
        }


@register_layer
class Activation(Layer):
    """Applies an activation function: ``y = f(x)``."""

    example = {"kwargs": {"activation": "sigmoid"}, "input_shape": (3, 4)}

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@register_layer
class Dropout(Layer):
    """Inverted dropout: in training ``y = x * m / (1 - rate)`` with ``m ~ Bernoulli(1 - rate)``;
    at inference ``y = x``.

    Args:
        rate: fraction of the inputs to drop, in [0, 1).
        noise_shape: shape of the mask (broadcast against the input; None axes follow it).
        seed: seed of this layer's own generator (default: dendrite's global one).
    """

    example = {"kwargs": {"rate": 0.5}, "input_shape": (3, 4)}

    def __init__(
        self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(
                f"Invalid value received for argument `rate` of Dropout: expected a float "
                f"in [0, 1), got {rate}."
            )
        self.rate = float(rate)
        self.supports_masking = True
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(shape, self.noise_shape))
        rng = self._rng if self._rng is not None else _settings.rng()
        keep = rng.random(shape, dtype=np.float32) >= self.rate
        mask = keep.astype(inputs.dtype) * np.asarray(1.0 / (1.0 - self.rate), inputs.dtype)
        return inputs * mask

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
            "seed": self.seed,
        }


@register_layer
class Flatten(Layer):
    """Flattens every axis but the batch axis: (batch, d1, d2, ...) -> (batch, d1*d2*...)."""

    keeps_input_dtype = True

    example = {"kwargs": {}, "input_shape": (2, 3, 4)}

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = ops.transpose(x, (0, *range(2, x.ndim), 1))
        # The width is spelled out: with an empty batch, -1 could not be inferred.
        return ops.reshape(x, (x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return (input_shape[0], size)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


@register_layer
class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one axis may be -1); the batch axis stays."""

    keeps_input_dtype = True

    example = {"kwargs": {"target_shape": (2, -1)}, "input_shape": (3, 4)}

    def __init__(self, target_shape: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(1 for s in self.target_shape if s == -1) > 1:
            raise ValueError(
                f"Reshape: at most one axis of target_shape may be -1, got {self.target_shape}."
            )

    def call(self, inputs: Tensor) -> Tensor:
        sample = inputs.shape[1:]
        size = math.prod(sample)
        known = math.prod(s for s in self.target_shape if s != -1)
        if (-1 in self.target_shape and (known == 0 or size % known)) or (
            -1 not in self.target_shape and known != size
        ):
            raise ValueError(
                f"Layer '{self.name}': cannot reshape input of shape {tuple(inputs.shape)} "
                f"({size} values per sample) to target_shape {self.target_shape}."
            )
        return ops.reshape(inputs, (inputs.shape[0], *self.target_shape))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        target = self.target_shape
        if -1 not in target:
            return (input_shape[0], *target)
        sample = input_shape[1:]
        known = math.prod(s for s in target if s != -1)
        if any(s is None for s in sample):
            free = None
        elif known == 0 or math.prod(sample) % known:
            raise ValueError(
                f"Layer '{self.name}': cannot reshape input of shape {tuple(input_shape)} "
                f"to target_shape {target}."
            )
        else:
            free = math.prod(sample) // known
        return (input_shape[0], *(free if s == -1 else s for s in target))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}
