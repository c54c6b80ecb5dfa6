"""Overlap losses for segmentation masks (Keras names): Dice and Tversky.

Over ``axis`` (every axis when None), with ``y`` the targets, ``p`` the predictions and
``eps`` Keras' ``epsilon()`` (1e-7):

- Dice: ``1 - 2 sum(y p) / (sum(y) + sum(p) + eps)``;
- Tversky (Salehi et al., 2017): ``1 - TP / (TP + alpha FP + beta FN + eps)`` with
  ``TP = sum(y p)``, ``FP = sum((1 - p) y)``, ``FN = sum(p (1 - y))`` as Keras counts them;
  ``alpha = beta = 0.5`` is the Dice loss.

Compositions of ops: the gradients are theirs.
"""

from __future__ import annotations

from typing import Any

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.losses.loss import Loss, LossFunctionWrapper, as_float_tensor, targets_like
from dendrite.registry import register


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


@register("loss")
def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Tensor:
    """The Dice loss ``1 - 2 sum(y p) / (sum(y) + sum(p) + eps)`` over ``axis`` (None:
    every axis, one number for the batch)."""
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    axis = _axis(axis)
    overlap = ops.sum(y_true * y_pred, axis=axis)
    total = ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis) + _settings.epsilon()
    return 1.0 - 2.0 * overlap / total


@register("loss")
def tversky(
    y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Any = None
) -> Tensor:
    """The Tversky loss ``1 - TP / (TP + alpha FP + beta FN + eps)`` over ``axis`` (see the
    module docstring)."""
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    axis = _axis(axis)
    hits = ops.sum(y_true * y_pred, axis=axis)
    false_positives = ops.sum((1.0 - y_pred) * y_true, axis=axis)
    false_negatives = ops.sum(y_pred * (1.0 - y_true), axis=axis)
    denominator = hits + alpha * false_positives + beta * false_negatives + _settings.epsilon()
    return 1.0 - hits / denominator


@register("loss")
class Dice(LossFunctionWrapper):
    """The Dice loss (see ``dice``)."""

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "dice",
        axis: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(dice, reduction=reduction, name=name, dtype=dtype, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


@register("loss")
class Tversky(LossFunctionWrapper):
    """The Tversky loss (see ``tversky``)."""

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: str | None = "sum_over_batch_size",
        name: str = "tversky",
        axis: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            tversky, reduction=reduction, name=name, dtype=dtype, alpha=alpha, beta=beta, axis=axis
        )

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}
