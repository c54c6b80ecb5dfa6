"""Regression, hinge and divergence losses (Keras names and formulas).

Each function returns one value per sample, reducing the last axis (``e = y_pred - y_true``,
``eps = dendrite.backend.epsilon()``, 1e-7 unless set, read at each call):

- mean_squared_error:             ``mean(e^2)``
- mean_absolute_error:            ``mean(|e|)``
- mean_absolute_percentage_error: ``100 mean(|e| / max(|y_true|, eps))``
- mean_squared_logarithmic_error: ``mean((L(y_pred) - L(y_true))^2)``,
  ``L(x) = log(1 + max(x, eps))``
- huber:       ``mean(e^2 / 2 if |e| <= delta else delta |e| - delta^2 / 2)``
- log_cosh:    ``mean(log cosh e)``, computed as ``e + softplus(-2e) - log 2`` (no overflow)
- kl_divergence: ``sum(y log(y / p))`` with both clipped to ``[eps, 1]``
- poisson:     ``mean(p - y log(p + eps))``
- cosine_similarity: ``-sum(y_hat p_hat)`` over ``axis`` with ``x_hat = x / max(|x|, eps)``
  (Keras's sign: -1 for identical directions, so minimising it aligns them)
- hinge:         ``mean(max(1 - y p, 0))``; squared_hinge: ``mean(max(1 - y p, 0)^2)``
  (0/1 labels are mapped to -1/1 first)
- categorical_hinge: ``max(max((1 - y) p) - sum(y p) + 1, 0)``
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.losses.loss import (
    Loss,
    LossFunctionWrapper,
    as_float_tensor,
    squeeze_or_expand,
    targets_like,
)
from dendrite.registry import register


def _pair(y_true: Any, y_pred: Any, align: bool = True) -> tuple[Tensor, Tensor]:
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    if align:
        y_true, y_pred = squeeze_or_expand(y_true, y_pred)
    return y_true, y_pred


@register("loss", aliases=("mse", "MSE"))
def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """Mean of squared errors over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


@register("loss", aliases=("mae", "MAE"))
def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """Mean of absolute errors over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


@register("loss", aliases=("mape", "MAPE"))
def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps))`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    diff = ops.abs((y_true - y_pred) / ops.maximum(ops.abs(y_true), _settings.epsilon()))
    return 100.0 * ops.mean(diff, axis=-1)


@register("loss", aliases=("msle", "MSLE"))
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    """Mean squared difference of ``log(1 + max(x, eps))`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    eps = _settings.epsilon()
    first = ops.log1p(ops.maximum(y_pred, eps))
    second = ops.log1p(ops.maximum(y_true, eps))
    return ops.mean(ops.square(first - second), axis=-1)


@register("loss", aliases=("huber_loss",))
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """Huber loss: quadratic for errors up to ``delta``, linear beyond (mean, last axis)."""
    y_true, y_pred = _pair(y_true, y_pred)
    error = y_pred - y_true
    abs_error = ops.abs(error)
    quadratic = 0.5 * ops.square(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return ops.mean(ops.where(abs_error.data <= delta, quadratic, linear), axis=-1)


@register("loss", aliases=("logcosh",))
def log_cosh(y_true: Any, y_pred: Any) -> Tensor:
    """Mean of ``log(cosh(y_pred - y_true))`` over the last axis, overflow-free."""
    y_true, y_pred = _pair(y_true, y_pred)
    error = y_pred - y_true
    return ops.mean(error + ops.softplus(-2.0 * error) - math.log(2.0), axis=-1)


@register("loss", aliases=("kld", "KLD", "kullback_leibler_divergence"))
def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """Kullback-Leibler divergence ``sum(y log(y / p))`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    eps = _settings.epsilon()
    y_true = ops.clip(y_true, eps, 1.0)
    y_pred = ops.clip(y_pred, eps, 1.0)
    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)


@register("loss")
def poisson(y_true: Any, y_pred: Any) -> Tensor:
    """Poisson negative log-likelihood (up to a constant), mean over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    return ops.mean(y_pred - y_true * ops.log(y_pred + _settings.epsilon()), axis=-1)


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    # x / max(|x|, eps) as Keras (x * min(rsqrt(sum x^2), 1/eps)); the bound goes inside so
    # a zero vector has gradient 0, not NaN.
    squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
    eps = _settings.epsilon()
    return x * ops.rsqrt(ops.maximum(squares, eps * eps))


@register("loss")
def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """Negative cosine similarity along ``axis``: -1 when aligned, 0 when orthogonal."""
    y_true, y_pred = _pair(y_true, y_pred)
    return -ops.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis)


def _signed_labels(y_true: Tensor) -> Tensor:
    """0/1 labels become -1/1 (Keras's hinge convention); -1/1 labels stay."""
    data = y_true.data
    if np.all((data == 0) | (data == 1)):
        return 2.0 * y_true - 1.0
    return y_true


@register("loss")
def hinge(y_true: Any, y_pred: Any) -> Tensor:
    """Hinge loss ``mean(max(1 - y p, 0))`` over the last axis, labels in {-1, 1} (or 0/1)."""
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    return ops.mean(ops.maximum(1.0 - _signed_labels(y_true) * y_pred, 0.0), axis=-1)


@register("loss")
def squared_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """Squared hinge loss ``mean(max(1 - y p, 0)^2)`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    margin = ops.maximum(1.0 - _signed_labels(y_true) * y_pred, 0.0)
    return ops.mean(ops.square(margin), axis=-1)


@register("loss")
def categorical_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """``max(neg - pos + 1, 0)`` with ``pos = sum(y p)``, ``neg = max((1 - y) p)``."""
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(neg - pos + 1.0, 0.0)


class _Wrapper(LossFunctionWrapper):
    """A Keras loss class around one of the functions above; its config is its arguments."""

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


class _Plain(_Wrapper):
    """A loss class whose function takes no options: set ``function`` and ``default_name``."""

    function: Any = None
    default_name = "loss"

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        fn = type(self).function
        super().__init__(fn, reduction=reduction, name=name or self.default_name, dtype=dtype)


@register("loss")
class MeanSquaredError(_Plain):
    """Mean of squared errors (see ``mean_squared_error``)."""

    function = staticmethod(mean_squared_error)
    default_name = "mean_squared_error"


@register("loss")
class MeanAbsoluteError(_Plain):
    """Mean absolute error (see ``mean_absolute_error``)."""

    function = staticmethod(mean_absolute_error)
    default_name = "mean_absolute_error"


@register("loss")
class MeanAbsolutePercentageError(_Plain):
    """Mean absolute percentage error (see ``mean_absolute_percentage_error``)."""

    function = staticmethod(mean_absolute_percentage_error)
    default_name = "mean_absolute_percentage_error"


@register("loss")
class MeanSquaredLogarithmicError(_Plain):
    """Mean squared logarithmic error (see ``mean_squared_logarithmic_error``)."""

    function = staticmethod(mean_squared_logarithmic_error)
    default_name = "mean_squared_logarithmic_error"


@register("loss")
class LogCosh(_Plain):
    """Log of the hyperbolic cosine of the error (see ``log_cosh``)."""

    function = staticmethod(log_cosh)
    default_name = "log_cosh"


@register("loss")
class KLDivergence(_Plain):
    """Kullback-Leibler divergence (see ``kl_divergence``)."""

    function = staticmethod(kl_divergence)
    default_name = "kl_divergence"


@register("loss")
class Poisson(_Plain):
    """Poisson loss (see ``poisson``)."""

    function = staticmethod(poisson)
    default_name = "poisson"


@register("loss")
class Hinge(_Plain):
    """Hinge loss, labels -1/1 or 0/1 (see ``hinge``)."""

    function = staticmethod(hinge)
    default_name = "hinge"


@register("loss")
class SquaredHinge(_Plain):
    """Squared hinge loss (see ``squared_hinge``)."""

    function = staticmethod(squared_hinge)
    default_name = "squared_hinge"


@register("loss")
class CategoricalHinge(_Plain):
    """Categorical hinge loss (see ``categorical_hinge``)."""

    function = staticmethod(categorical_hinge)
    default_name = "categorical_hinge"


@register("loss")
class Huber(_Wrapper):
    """Huber loss (see ``huber``) with threshold ``delta``."""

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "huber_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(huber, reduction=reduction, name=name, dtype=dtype, delta=delta)
        self.delta = delta


@register("loss")
class CosineSimilarity(_Wrapper):
    """Negative cosine similarity along ``axis`` (see ``cosine_similarity``)."""

    def __init__(
        self,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "cosine_similarity",
        dtype: Any = None,
    ) -> None:
        super().__init__(cosine_similarity, reduction=reduction, name=name, dtype=dtype, axis=axis)
        self.axis = axis
