"""Per-sample loss functions that Keras 3 also exports under ``keras.metrics``: ``huber``,
``binary_focal_crossentropy`` and ``categorical_focal_crossentropy``.

Each runs the loss of the same name (``dendrite.losses``, where the maths is written) under
``no_grad`` and returns its per-sample values as a NumPy array, as the other functions of
``dendrite.metrics`` do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import losses
from dendrite.core import no_grad
from dendrite.metrics.base import to_array


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss (see ``dendrite.losses.huber``)."""
    with no_grad():
        return to_array(losses.huber(y_true, y_pred, delta=delta))


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """Per-sample focal binary cross-entropy (see ``dendrite.losses``)."""
    with no_grad():
        return to_array(
            losses.binary_focal_crossentropy(
                y_true,
                y_pred,
                apply_class_balancing=apply_class_balancing,
                alpha=alpha,
                gamma=gamma,
                from_logits=from_logits,
                label_smoothing=label_smoothing,
                axis=axis,
            )
        )


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Any = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """Per-sample focal categorical cross-entropy (see ``dendrite.losses``)."""
    with no_grad():
        return to_array(
            losses.categorical_focal_crossentropy(
                y_true,
                y_pred,
                alpha=alpha,
                gamma=gamma,
                from_logits=from_logits,
                label_smoothing=label_smoothing,
                axis=axis,
            )
        )
