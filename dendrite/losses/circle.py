"""The Circle loss (Sun et al., 2020, https://arxiv.org/abs/2002.10857), Keras 3's form.

For L2-normalised embeddings ``p`` (one row per sample), integer labels ``y`` and reference
embeddings and labels (the batch itself by default), with ``m`` the margin and ``gamma``
the scale:

- ``d_ij = max(1 - p_i . r_j, 0)``, the cosine distance to each reference;
- positives ``P_i = {j: y_j = y_i}`` (without ``j = i`` when ``remove_diagonal``), negatives
  ``N_i = {j: y_j != y_i}``;
- weights ``a_ij = max(m + d_ij, 0)`` on positives and ``b_ij = max(1 + m - d_ij, 0)`` on
  negatives;
- ``L_i = softplus(logsumexp_{j in P_i}(-gamma a_ij (m - d_ij))
  + logsumexp_{j in N_i}(gamma b_ij (1 - m - d_ij)))``.

A sample with no positive (or no negative) gets ``L_i = 0``, and, as in Keras, the class
``Circle`` leaves samples whose loss is 0 out of the mean (Keras' output mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, as_array
from dendrite.losses.loss import Loss, LossFunctionWrapper, as_float_tensor
from dendrite.registry import register


def _labels(labels: Any) -> np.ndarray:
    values = np.asarray(as_array(labels) if isinstance(labels, Tensor) else labels)
    return values.astype(np.int32).reshape(-1, 1) if values.ndim <= 1 else values.astype(np.int32)


def pos_neg_masks(
    query_labels: Any, key_labels: Any, remove_diagonal: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(queries, keys)`` masks of same-label pairs (without the diagonal when
    ``remove_diagonal``) and of different-label pairs."""
    query, key = _labels(query_labels), _labels(key_labels)
    positive = query == key.T
    negative = ~positive
    if remove_diagonal:
        positive &= ~np.eye(query.size, key.size, dtype=bool)
    return positive, negative


@register("loss")
def circle(
    y_true: Any,
    y_pred: Any,
    ref_labels: Any = None,
    ref_embeddings: Any = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
) -> Tensor:
    """Per-sample Circle loss (see the module docstring).

    Args:
        y_true: integer labels, shape ``(batch,)`` or ``(batch, 1)``.
        y_pred: L2-normalised embeddings, ``(batch, dim)``.
        ref_labels, ref_embeddings: the references (default: ``y_true`` and ``y_pred``).
        remove_diagonal: leave each sample out of its own positives.
        gamma: the scale of the similarities (80).
        margin: the relaxation ``m`` (0.4).
    """
    y_pred = as_float_tensor(y_pred)
    ref = y_pred if ref_embeddings is None else as_float_tensor(ref_embeddings, y_pred.dtype)
    positive, negative = pos_neg_masks(
        y_true, y_true if ref_labels is None else ref_labels, remove_diagonal
    )
    dtype = y_pred.dtype
    distances = ops.maximum(1.0 - ops.matmul(y_pred, ops.transpose(ref)), 0.0)
    pos_weights = ops.maximum((margin + distances) * positive.astype(dtype), 0.0)
    neg_weights = ops.maximum((1.0 + margin - distances) * negative.astype(dtype), 0.0)
    pos_terms = -gamma * pos_weights * (margin - distances)
    neg_terms = gamma * neg_weights * (1.0 - margin - distances)
    # Keras fills the left-out pairs with -inf; a finite floor far below any term gives
    # the same values (exp underflows to 0, softplus of it is exactly 0) without an
    # all -inf row, whose log-sum-exp gradient would be NaN.
    floor = np.asarray(np.finfo(dtype).min / 4, dtype=dtype)
    p_loss = ops.logsumexp(ops.where(positive, pos_terms, floor), axis=1)
    n_loss = ops.logsumexp(ops.where(negative, neg_terms, floor), axis=1)
    return ops.softplus(p_loss + n_loss)


circle.integer_targets = True  # labels stay integers (LossFunctionWrapper reads this)


@register("loss")
class Circle(LossFunctionWrapper):
    """The Circle loss between integer labels and L2-normalised embeddings (see the module
    docstring); use it after a ``UnitNormalization`` layer.

    Args:
        gamma: the scale (80).
        margin: the relaxation ``m`` (0.4).
        remove_diagonal: leave each sample out of its own positives (True).
        reduction, name, dtype: as for ``Loss``.
    """

    def __init__(
        self,
        gamma: float = 80.0,
        margin: float = 0.4,
        remove_diagonal: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "circle",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            circle,
            reduction=reduction,
            name=name,
            dtype=dtype,
            gamma=gamma,
            margin=margin,
            remove_diagonal=remove_diagonal,
        )
        self.gamma, self.margin, self.remove_diagonal = gamma, margin, remove_diagonal

    def loss_mask(self, y_true: Any, values: Tensor) -> np.ndarray:
        # Keras masks out the samples whose loss is 0 (no positive or no negative pair).
        return as_array(values) > 0

    def get_config(self) -> dict[str, Any]:
        return {
            **Loss.get_config(self),
            "gamma": self.gamma,
            "margin": self.margin,
            "remove_diagonal": self.remove_diagonal,
        }
