"""Cross-entropy losses (Keras names), on the fused primitives of ``dendrite.ops.nn``.

With ``from_logits=True`` the prediction is a logit and the fused, stable primitive computes
the loss directly. With probabilities (``from_logits=False``, Keras's default) two cases:

- ``y_pred`` was produced by the softmax (sigmoid) op on the same axis: its input, the
  logits, is taken from the graph and the fused primitive is used, exactly what
  TensorFlow-Keras does; the loss and its gradient are then exact even for saturated
  outputs, and the softmax node is skipped in the backward pass;
- otherwise Keras's formula on probabilities: ``p`` renormalised to sum to 1 along the class
  axis (categorical), clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7``, then
  ``-sum(y log p)`` (or ``-(y log p + (1 - y) log(1 - p))``, binary).

Label smoothing with factor ``a``: categorical ``y <- y (1 - a) + a / C``; binary
``y <- y (1 - a) + a / 2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, as_array
from dendrite.losses.loss import (
    EPSILON,
    Loss,
    LossFunctionWrapper,
    as_float_tensor,
    squeeze_or_expand,
    targets_like,
)
from dendrite.ops.activations import Sigmoid
from dendrite.ops.nn import (
    check_sparse_labels,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from dendrite.ops.softmax import Softmax


def softmax_logits(y_pred: Tensor, axis: int) -> Tensor | None:
    """The logits ``z`` if ``y_pred = softmax(z)`` over ``axis`` is in the recorded graph."""
    ctx = y_pred._ctx
    if not isinstance(ctx, Softmax) or ctx.inputs is None or not isinstance(ctx.saved, tuple):
        return None
    if tuple(ctx.saved[1]) != (axis % max(y_pred.ndim, 1),):
        return None
    return ctx.inputs[0]


def sigmoid_logits(y_pred: Tensor) -> Tensor | None:
    """The logits ``z`` if ``y_pred = sigmoid(z)`` is in the recorded graph."""
    ctx = y_pred._ctx
    if not isinstance(ctx, Sigmoid) or ctx.inputs is None:
        return None
    return ctx.inputs[0]


def _check_axis(axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an int, got {axis!r} of type {type(axis).__name__}.")
    return int(axis)


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Binary cross-entropy, averaged over ``axis``: ``mean(-(y log p + (1-y) log(1-p)))``.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities, or logits with ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in [0, 1]; squeezes targets towards 0.5.
        axis: the axis averaged over.
    """
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    # look for the sigmoid before any reshape hides it
    logits = y_pred if from_logits else sigmoid_logits(y_pred)
    if logits is not None:
        y_true, logits = squeeze_or_expand(y_true, logits)
        values = sigmoid_binary_cross_entropy(y_true, logits)
    else:
        y_true, y_pred = squeeze_or_expand(y_true, y_pred)
        p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        values = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    return ops.mean(values, axis=_check_axis(axis))


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Focal binary cross-entropy (Lin et al., 2017), averaged over ``axis``:
    ``(1 - p_t)^gamma * bce`` with ``p_t = y p + (1 - y)(1 - p)``, times
    ``y alpha + (1 - y)(1 - alpha)`` with ``apply_class_balancing``."""
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = ops.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=_check_axis(axis))


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Categorical cross-entropy ``-sum(y log p)`` over the class ``axis``.

    Args:
        y_true: one-hot (or soft) targets, shaped like ``y_pred``.
        y_pred: probabilities, or logits with ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in [0, 1]; ``y <- y (1 - a) + a / classes``.
        axis: the class axis.
    """
    axis = _check_axis(axis)
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"categorical_crossentropy: y_true and y_pred must have the same shape, got "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)} (integer labels need "
            f"sparse_categorical_crossentropy)."
        )
    if label_smoothing:
        classes = y_true.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    logits = y_pred if from_logits else softmax_logits(y_pred, axis)
    if logits is not None:
        return softmax_cross_entropy(y_true, logits, axis=axis)
    p = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    return -ops.sum(y_true * ops.log(p), axis=axis)


def _sparse_labels(y_true: Any, y_pred: Tensor, axis: int) -> np.ndarray:
    labels = as_array(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    axis = axis % y_pred.ndim
    expected = y_pred.shape[:axis] + y_pred.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"sparse_categorical_crossentropy: y_true must hold one integer label per sample, "
            f"shaped like y_pred without its class axis: expected {expected} (or with a "
            f"trailing 1), got {labels.shape} for y_pred of shape {tuple(y_pred.shape)}."
        )
    return labels


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Tensor:
    """Cross-entropy ``-log p[label]`` for integer labels.

    Args:
        y_true: integer labels in ``[0, classes)``, shaped like ``y_pred`` without the
            class axis (or with a trailing 1); anything else raises ValueError naming the
            bad label.
        y_pred: probabilities, or logits with ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits.
        ignore_class: a label (-1, 255, ...) whose samples get loss 0 (the Loss class also
            leaves them out of the mean, as Keras).
        axis: the class axis.
    """
    axis = _check_axis(axis)
    y_pred = as_float_tensor(y_pred)
    if y_pred.ndim == 0:
        raise ValueError("sparse_categorical_crossentropy: y_pred needs a class axis.")
    labels = _sparse_labels(y_true, y_pred, axis)
    logits = y_pred if from_logits else softmax_logits(y_pred, axis)
    if logits is not None:
        return sparse_softmax_cross_entropy(labels, logits, axis=axis, ignore_class=ignore_class)
    op = "sparse_categorical_crossentropy"
    labels, valid = check_sparse_labels(labels, y_pred.shape[axis], ignore_class, op)
    p = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    p = ops.clip(p, EPSILON, 1.0 - EPSILON)
    picked = ops.take_along_axis(p, np.expand_dims(labels, axis), axis=axis)
    values = -ops.log(ops.squeeze(picked, axis))
    if valid is not None:
        values = values * Tensor._make(valid.astype(values.dtype))
    return values


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy (see ``binary_crossentropy``), reduced over the batch."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        # binary_crossentropy aligns ranks itself, after finding a sigmoid's logits
        return binary_crossentropy(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Focal binary cross-entropy (see ``binary_focal_crossentropy``)."""

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            binary_focal_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            apply_class_balancing=apply_class_balancing,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


class CategoricalCrossentropy(LossFunctionWrapper):
    """Categorical cross-entropy for one-hot labels (see ``categorical_crossentropy``)."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        # no rank alignment: one-hot targets must match y_pred exactly
        return categorical_crossentropy(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for integer labels (see ``sparse_categorical_crossentropy``).

    With ``ignore_class``, samples with that label are left out of the mean.
    """

    integer_targets = True

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        return sparse_categorical_crossentropy(y_true, y_pred, **self._fn_kwargs)

    def loss_mask(self, y_true: Any, values: Tensor) -> np.ndarray | None:
        if self.ignore_class is None:
            return None
        labels = as_array(y_true)
        if labels.ndim == values.ndim + 1 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        return labels != self.ignore_class

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}
