"""Normalisation layers within a sample: LayerNormalization, GroupNormalization and
RMSNormalization.
BatchNormalization is in ``dendrite.layers.batch_normalization`` and importable from here
too; the arguments they share are in ``dendrite.layers.normalization_base``.

Each of the three maps ``x`` to ``gamma * (x - mu) / sqrt(sigma^2 + eps) + beta`` and
differs in where ``mu`` and ``sigma^2`` come from: the batch (per channel, over every other
axis), each sample's features, or groups of channels within a sample. The training-mode
arithmetic and its gradient are one fused primitive, ``dendrite.ops.normalization.normalize``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer

# BatchNormalization has its own module; it stays importable from here.
from dendrite.layers.batch_normalization import BatchNormalization as BatchNormalization
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.normalization_base import _check_axis, _Normalization
from dendrite.layers.registry import register_layer
from dendrite.ops.normalization import normalize, rms_normalization


@register_layer
class LayerNormalization(_Normalization):
    """Layer normalisation (Ba et al., 2016): each sample normalised over ``axis``.

    ``y = gamma * (x - mean_axis(x)) / sqrt(var_axis(x) + epsilon) + beta``, with ``gamma``
    and ``beta`` of the shape of the normalised axes (in ``axis`` order, as Keras).

    Args:
        axis: int or list of ints: the axes to normalise over (default the last).
        epsilon: added to the variance (Keras default 1e-3; PyTorch's is 1e-5).
        center, scale: whether to learn ``beta`` and ``gamma``.
        rms_scaling: ignore ``center`` and ``scale`` and compute
            ``y = gamma * x / sqrt(var_axis(x) + epsilon)``: what Keras computes for it
            (by the variance about the mean, not the root mean square; Keras deprecates
            the argument and so warns dendrite). For root-mean-square normalisation use
            ``RMSNormalization``.
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
        beta_constraint, gamma_constraint: as in Keras (zeros and ones).
    """

    example = {"kwargs": {}, "input_shape": (2, 3, 4)}

    def __init__(
        self,
        axis: int | list[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)):
            self.axis = int(axis)
        else:
            raise TypeError(
                "Expected an int or a list/tuple of ints for the argument 'axis', but "
                f"received: {axis!r}"
            )
        self.rms_scaling = bool(rms_scaling)
        if self.rms_scaling:
            warnings.warn(
                f"LayerNormalization '{self.name}': rms_scaling=True scales the inputs by "
                f"their variance about the mean, as Keras computes it (Keras deprecates "
                f"the argument), not by their root mean square; for RMS normalisation use "
                f"RMSNormalization or ops.rms_normalization.",
                UserWarning,
                stacklevel=2,
            )

    def build(self, input_shape: tuple) -> None:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        positive = [_check_axis(self, a, input_shape) for a in axes]
        shape = tuple(int(input_shape[a]) for a in positive)
        if self.rms_scaling:
            self.gamma = self.add_weight(
                shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                name="gamma",
            )
        else:
            self._add_scale_and_offset(shape)
        rank = len(input_shape)
        self._axes = tuple(positive)
        # Keras reshapes gamma and beta to this broadcast shape (in the inputs' axis order).
        self._param_shape = tuple(int(input_shape[a]) if a in positive else 1 for a in range(rank))
        self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in positive})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        x = self._float(inputs)
        if self.rms_scaling:
            variance = ops.var(x, axis=self._axes, keepdims=True)
            out = x * ops.rsqrt(variance + self.epsilon)
            return out * ops.reshape(self.gamma, self._param_shape)
        return normalize(
            x,
            self.gamma,
            self.beta,
            axes=self._axes,
            epsilon=self.epsilon,
            param_shape=self._param_shape,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "rms_scaling": self.rms_scaling}


@register_layer
class GroupNormalization(_Normalization):
    """Group normalisation (Wu and He, 2018): the channels along ``axis`` are split into
    ``groups`` groups, and each sample is normalised over each group's channels and every
    other non-batch axis:

    ``y = gamma_c * (x - mean_group(x)) / sqrt(var_group(x) + epsilon) + beta_c``.

    ``groups=1`` is layer normalisation over all non-batch axes with per-channel
    parameters; ``groups=-1`` (one channel per group) is instance normalisation.

    Args:
        groups: number of groups; must divide the number of channels (-1: one per channel).
        axis: the channel axis.
        epsilon, center, scale, and the initializers, regularizers and constraints of
            ``beta`` and ``gamma`` (each of shape ``(channels,)``): as BatchNormalization.
    """

    example = {"kwargs": {"groups": 2}, "input_shape": (2, 3, 4)}

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        self.groups = int(groups)
        self.axis = int(axis)

    def build(self, input_shape: tuple) -> None:
        axis = _check_axis(self, self.axis, input_shape)
        if axis == 0:
            raise ValueError(
                f"Layer '{self.name}' (GroupNormalization): axis 0 is the batch axis; pass "
                f"the channel axis. Received input shape {tuple(input_shape)}."
            )
        dim = int(input_shape[axis])
        if self.groups == -1:
            self.groups = dim
        if self.groups <= 0 or dim < self.groups:
            raise ValueError(
                f"Layer '{self.name}' (GroupNormalization): number of groups "
                f"({self.groups}) cannot be more than the number of channels ({dim}); "
                f"received input shape {tuple(input_shape)}."
            )
        if dim % self.groups:
            raise ValueError(
                f"Layer '{self.name}' (GroupNormalization): number of groups "
                f"({self.groups}) must divide the number of channels ({dim}); received "
                f"input shape {tuple(input_shape)}."
            )
        self._add_scale_and_offset((dim,))
        rank = len(input_shape)
        self._channel_axis = axis
        # (..., C, ...) -> (..., G, C/G, ...): statistics over every axis but the batch and G.
        self._axes = tuple(a for a in range(1, rank + 1) if a != axis)
        self._param_shape = tuple(
            [1] * axis + [self.groups, dim // self.groups] + [1] * (rank - axis - 1)
        )
        self.input_spec = InputSpec(ndim=rank, axes={self.axis: dim})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        x = self._float(inputs)
        shape = tuple(x.shape)
        axis = self._channel_axis
        grouped = (*shape[:axis], self.groups, shape[axis] // self.groups, *shape[axis + 1 :])
        out = normalize(
            ops.reshape(x, grouped),
            self.gamma,
            self.beta,
            axes=self._axes,
            epsilon=self.epsilon,
            param_shape=self._param_shape,
        )
        return ops.reshape(out, shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


@register_layer
class RMSNormalization(Layer):
    """Root-mean-square normalisation (Zhang and Sennrich, 2019), as Keras'
    ``RMSNormalization``: each sample is divided by the root mean square of its values
    over ``axis`` and multiplied by a learned ``scale`` (no mean is subtracted, no offset):

    ``y = x / sqrt(mean_axis(x^2) + epsilon) * scale``, ``scale`` of the shape of the
    normalised axes (ones at first).

    Args:
        axis: int or list of ints: the axes to normalise over (default the last).
        epsilon: added to the mean square (Keras' default 1e-6).
    """

    example = {"kwargs": {}, "input_shape": (2, 3, 4)}

    def __init__(self, axis: int | list[int] = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)):
            self.axis = int(axis)
        else:
            raise TypeError(
                "Expected an int or a list/tuple of ints for the argument 'axis', but "
                f"received: {axis!r}"
            )
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        positive = sorted(_check_axis(self, a, input_shape) for a in axes)
        self.scale = self.add_weight(
            tuple(int(input_shape[a]) for a in positive), initializer="ones", name="scale"
        )
        rank = len(input_shape)
        self._axes = tuple(positive)
        self._param_shape = tuple(int(input_shape[a]) if a in positive else 1 for a in range(rank))
        self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in positive})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.data.dtype.kind == "f" else ops.cast(inputs, self.dtype)
        scale = ops.reshape(self.scale, self._param_shape)
        return rms_normalization(x, scale, axis=self._axes, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        self._maybe_build(tuple(input_shape))
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
