"""The categorical generalized cross-entropy (Zhang and Sabuncu, 2018,
https://arxiv.org/abs/1805.07836), Keras 3's form: a loss robust to noisy labels.

With ``p_i`` the predicted probability of sample i's true class and ``q`` in (0, 1):

    L_i = (1 - p_i^q) / q

As ``q -> 0`` it tends to the cross-entropy ``-log p_i``; at ``q = 1`` it is ``1 - p_i``,
the mean absolute error against the one-hot target (up to a factor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, as_array
from dendrite.losses.loss import Loss, LossFunctionWrapper, as_float_tensor
from dendrite.registry import register


@register("loss")
def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Tensor:
    """Per-sample ``(1 - p^q) / q``, ``p`` the probability of the true class.

    Args:
        y_true: integer class indices, ``(batch,)`` or ``(batch, 1)``.
        y_pred: class probabilities, ``(batch, classes)``.
        q: the noise parameter.
    """
    y_pred = as_float_tensor(y_pred)
    labels = np.asarray(as_array(y_true) if isinstance(y_true, Tensor) else y_true)
    if labels.ndim == len(y_pred.shape) and labels.shape[-1:] == (1,):
        labels = labels[..., 0]  # (batch, 1) labels: one per sample
    labels = labels.astype(np.int64)
    classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"categorical_generalized_cross_entropy: labels must be in [0, {classes}), got "
            f"values from {labels.min()} to {labels.max()}."
        )
    one_hot = np.eye(classes, dtype=y_pred.dtype)[labels]
    p = ops.sum(y_pred * one_hot, axis=-1)
    return (1.0 - ops.power(p, q)) / q


categorical_generalized_cross_entropy.integer_targets = True  # labels stay integers


@register("loss")
class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """The generalized cross-entropy (see ``categorical_generalized_cross_entropy``).

    Args:
        q: the noise parameter in (0, 1) (0.5): near 0 it acts as the cross-entropy, near 1
            as the mean absolute error.
        reduction, name, dtype: as for ``Loss``.
    """

    def __init__(
        self,
        q: float = 0.5,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_generalized_cross_entropy",
        dtype: Any = None,
    ) -> None:
        if not 0 < q < 1:
            raise ValueError(f"q must be in the interval (0, 1), got q={q!r}.")
        super().__init__(
            categorical_generalized_cross_entropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            q=q,
        )
        self.q = q

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "q": self.q}
