"""The CTC loss (Keras 3's ``keras.losses.CTC`` and ``keras.losses.ctc``).

For labels ``y`` (batch, max_length), padded with 0, and logits ``z`` (batch, T, classes),
the loss of sample i is the connectionist temporal classification negative log-likelihood

    l_i = -log p(y_i[:L_i] | z_i),   L_i = #{j : y_ij != 0},   all T frames of z_i used,

summed over every alignment of the labels to the frames (``dendrite.ops.ctc_loss`` has the
recursions and the gradient). As in Keras, class 0 is the blank and doubles as the padding,
so it cannot be a label; each label length is the count of non-zero entries of its row, and
the labels are read from the start of the row (so the padding goes at the end). A labelling
that cannot fit in T frames (repeats need a blank between them) costs ``+inf``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, as_array
from dendrite.losses.loss import Loss, LossFunctionWrapper
from dendrite.ops.creation import as_float_tensor
from dendrite.registry import register


@register("loss")
def ctc(y_true: Any, y_pred: Any) -> Tensor:
    """The CTC loss per sample (see the module docstring).

    Args:
        y_true: integer labels, (batch, max_length), padded at the end with 0 (the blank).
        y_pred: logits, (batch, max_length, num_classes); not softmax-normalised.

    Returns:
        ``-log p(labels | logits)`` per sample, (batch,).
    """
    labels = as_array(y_true)
    y_pred = as_float_tensor(y_pred)
    if labels.ndim != 2:
        raise ValueError(
            f"ctc: targets y_true are expected to be integer labels of shape "
            f"(batch_size, max_length); received y_true with shape {labels.shape}."
        )
    if y_pred.ndim != 3:
        raise ValueError(
            f"ctc: logits y_pred are expected to have shape (batch_size, max_length, "
            f"num_classes); received y_pred with shape {tuple(y_pred.shape)}."
        )
    if labels.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"ctc: y_true and y_pred must have the same batch size; received y_true with "
            f"shape {labels.shape} and y_pred with shape {tuple(y_pred.shape)}."
        )
    batch, frames = y_pred.shape[0], y_pred.shape[1]
    mask_index = 0
    label_length = np.count_nonzero(labels != mask_index, axis=-1)
    output_length = np.full(batch, frames, dtype=np.intp)
    return ops.ctc_loss(labels, y_pred, label_length, output_length, mask_index=mask_index)


# The labels stay integer in a LossFunctionWrapper too (compile(loss="ctc")).
ctc.integer_targets = True  # type: ignore[attr-defined]


@register("loss")
class CTC(LossFunctionWrapper):
    """The CTC loss (see ``ctc``): labels (batch, max_length) padded with 0, logits
    (batch, T, num_classes). The labels stay integer (``integer_targets``)."""

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str = "ctc", dtype: Any = None
    ) -> None:
        super().__init__(ctc, reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        return ctc(y_true, y_pred)  # no rank alignment: the ranks differ by design

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)
