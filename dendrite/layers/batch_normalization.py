"""BatchNormalization (Ioffe and Szegedy, 2015): per channel, with the statistics of the
batch in training and moving averages of them at inference.

Training: ``y = gamma * (x - mean(x)) / sqrt(var(x) + epsilon) + beta`` over every axis but
the channel axis, as one fused primitive (``dendrite.ops.normalization.normalize``), and
``moving <- moving * momentum + batch * (1 - momentum)`` for the mean and the variance.
Inference: ``y = x * a + b`` with ``a = gamma / sqrt(moving_variance + epsilon)`` and
``b = beta - moving_mean * a``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import initializers
from dendrite.layers.calling import mask_array
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.normalization_base import _check_axis, _Normalization
from dendrite.layers.registry import register_layer
from dendrite.ops.normalization import NormStats, normalize, scale_shift


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
            mask = mask_array(mask)
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
