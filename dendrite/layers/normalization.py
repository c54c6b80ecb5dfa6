"""Normalisation layers: BatchNormalization, LayerNormalization, GroupNormalization.

Each maps ``x`` to ``gamma * (x - mu) / sqrt(sigma^2 + eps) + beta`` and differs in where
``mu`` and ``sigma^2`` come from: the batch (per channel, over every other axis), each
sample's features, or groups of channels within a sample. The training-mode arithmetic and
its gradient are one fused primitive, ``dendrite.ops.normalization.normalize``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.ops.creation import as_float_tensor
from dendrite.ops.normalization import NormStats, normalize, scale_shift


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


def _mask_array(mask: Any) -> np.ndarray:
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)


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


@register_layer
class BatchNormalization(_Normalization):
    """Batch normalisation (Ioffe and Szegedy, 2015), per channel along ``axis``.

    Training (``training=True`` and the layer trainable), with the statistics over every
    axis but ``axis``:
    ``y = gamma * (x - mean(x)) / sqrt(var(x) + epsilon) + beta`` (biased variance), and
    the moving statistics are updated in place:
    ``moving_mean <- moving_mean * momentum + mean(x) * (1 - momentum)`` (the same for
    ``moving_variance`` with ``var(x)``).

    Inference (``training`` False or None, or ``trainable = False``, as in Keras 3):
    ``y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.

    Weights, in ``get_weights`` order: gamma, beta (trainable), moving_mean,
    moving_variance (non-trainable), each of shape ``(channels,)``.

    Args:
        axis: the channel axis (-1 for channels_last, 1 after a channels_first conv).
        momentum: of the moving averages.
        epsilon: added to the variance.
        center, scale: whether to learn ``beta`` and ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: Keras defaults zeros, ones, zeros, ones.
        beta_regularizer, gamma_regularizer: penalties added to the loss.
        beta_constraint, gamma_constraint: applied to the weights after updates.
        synchronized: Keras' cross-replica flag; only False is supported.

    A ``mask`` of shape ``inputs.shape[:-1]`` (for example from ``Embedding(mask_zero=True)``)
    excludes masked positions from the batch statistics, as in Keras.
    """

    example = {"kwargs": {}, "input_shape": (4, 3)}

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
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
            if len(axis) != 1:
                raise ValueError(
                    f"BatchNormalization normalises one channel axis; received axis={axis}."
                )
            axis = axis[0]
        if synchronized:
            raise ValueError(
                "Argument synchronized=True is only supported with the TensorFlow backend."
            )
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.synchronized = False
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape: tuple) -> None:
        axis = _check_axis(self, self.axis, input_shape)
        channels = int(input_shape[axis])
        shape = (channels,)
        self._add_scale_and_offset(shape)
        self.moving_mean = self.add_weight(
            shape, initializer=self.moving_mean_initializer, trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape,
            initializer=self.moving_variance_initializer,
            trainable=False,
            name="moving_variance",
        )
        rank = len(input_shape)
        self._reduction_axes = tuple(a for a in range(rank) if a != axis)
        self._param_shape = tuple(channels if a == axis else 1 for a in range(rank))
        self.input_spec = InputSpec(ndim=rank, axes={self.axis: channels})
        self.built = True

    def call(self, inputs: Tensor, training: bool | None = None, mask: Any = None) -> Tensor:
        x = self._float(inputs)
        if mask is not None:
            mask = _mask_array(mask)
            if mask.ndim != x.ndim - 1:
                raise ValueError(
                    f"Layer '{self.name}' (BatchNormalization): the mask must have one "
                    f"dimension less than the inputs. Received: mask.shape={mask.shape}, "
                    f"inputs.shape={tuple(x.shape)}"
                )
        if training and self.trainable:
            if mask is not None:
                return self._masked_training_call(x, mask)
            stats = NormStats()
            out = normalize(
                x,
                self.gamma,
                self.beta,
                axes=self._reduction_axes,
                epsilon=self.epsilon,
                param_shape=self._param_shape,
                stats=stats,
            )
            self._update_moving_statistics(stats.mean, stats.variance)
            return out
        # Inference: y = x * a + b with a = gamma / sqrt(moving_variance + eps) and
        # b = beta - moving_mean * a (gradients still reach gamma and beta).
        inv = 1.0 / np.sqrt(self.moving_variance.data + np.asarray(self.epsilon, self.dtype))
        factor = Tensor._make(inv) if self.gamma is None else self.gamma * inv
        offset = -self.moving_mean.data * factor
        if self.beta is not None:
            offset = offset + self.beta
        return scale_shift(
            x,
            ops.reshape(factor, self._param_shape),
            ops.reshape(offset, self._param_shape),
        )

    def _update_moving_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        rate = 1.0 - self.momentum
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            data = moving.data
            data *= np.asarray(self.momentum, data.dtype)
            data += batch.reshape(data.shape).astype(data.dtype, copy=False) * rate

    def _masked_training_call(self, x: Tensor, mask: np.ndarray) -> Tensor:
        """Keras' masked moments: statistics over the unmasked positions only (composed
        from ops; the unmasked path is the fused primitive)."""
        weights = Tensor._make(mask.astype(x.dtype)[..., None])
        axes = self._reduction_axes
        count = np.broadcast_to(weights.data, x.shape).sum(axis=axes, keepdims=True)
        count += np.asarray(_settings.epsilon(), x.dtype)
        weighted = x * weights
        mean = ops.sum(weighted, axis=axes, keepdims=True) / count
        centered = weighted - mean
        variance = ops.sum(weights * centered * centered, axis=axes, keepdims=True) / count
        self._update_moving_statistics(mean.data, variance.data)
        out = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            out = out * ops.reshape(self.gamma, self._param_shape)
        if self.beta is not None:
            out = out + ops.reshape(self.beta, self._param_shape)
        return out

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "synchronized": self.synchronized,
        }


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
            ``y = gamma * x / sqrt(mean_axis(x^2) + epsilon)`` (RMS normalisation).
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
            square_mean = ops.mean(x * x, axis=self._axes, keepdims=True)
            out = x * ops.rsqrt(square_mean + self.epsilon)
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
