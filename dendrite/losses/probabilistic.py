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
``y <- y (1 - a) + a / 2``. The cross-entropies themselves are ``dendrite.ops.nn``'s
Keras-named ops.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, as_array
from dendrite.losses.loss import (
    Loss,
    LossFunctionWrapper,
    as_float_tensor,
    squeeze_or_expand,
    targets_like,
)
from dendrite.ops import nn
from dendrite.registry import register


def _check_axis(axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an int, got {axis!r} of type {type(axis).__name__}.")
    return int(axis)


@register("loss", aliases=("bce", "BCE"))
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
    axis = _check_axis(axis)
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    # find a sigmoid's logits before rank alignment could hide it behind a reshape
    logits = y_pred if from_logits else nn.sigmoid_logits(y_pred)
    if logits is not None:
        y_true, logits = squeeze_or_expand(y_true, logits)
        values = nn.binary_crossentropy(y_true, logits, from_logits=True)
    else:
        y_true, y_pred = squeeze_or_expand(y_true, y_pred)
        values = nn.binary_crossentropy(y_true, y_pred)
    return ops.mean(values, axis=axis)


@register("loss")
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
    ``y alpha + (1 - y)(1 - alpha)`` with ``apply_class_balancing`` (Keras computes it
    from clipped probabilities, also for logits)."""
    axis = _check_axis(axis)
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    p = nn.clip_probabilities(y_pred)
    bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = ops.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=axis)


@register("loss")
def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Any = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Focal categorical cross-entropy (Lin et al., 2017) over the class ``axis``, Keras'
    formula: ``sum(alpha (1 - p)^gamma (-y log p))`` with ``p`` the predictions (their
    softmax with ``from_logits``) renormalised to sum to 1 and clipped to ``[eps, 1 -
    eps]``.

    Args:
        y_true: one-hot (or soft) targets, shaped like ``y_pred``.
        y_pred: probabilities, or logits with ``from_logits=True``.
        alpha: a weight for every class (a scalar, or one per class).
        gamma: the focusing power; 0 gives ``alpha`` times the cross-entropy.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in [0, 1]; ``y <- y (1 - a) + a / classes``.
        axis: the class axis.
    """
    axis = _check_axis(axis)
    y_pred = as_float_tensor(y_pred)
    y_true = targets_like(y_true, y_pred)
    if y_pred.shape and y_pred.shape[-1] == 1:
        warnings.warn(
            f"categorical_focal_crossentropy expects y_pred of shape (batch, classes) with "
            f"more than one class, got {tuple(y_pred.shape)}; for two classes use "
            f"binary_focal_crossentropy.",
            stacklevel=2,
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    p = nn.clip_probabilities(y_pred / ops.sum(y_pred, axis=axis, keepdims=True))
    weights = np.asarray(alpha, dtype=y_pred.dtype)
    focal = ops.power(1.0 - p, gamma) * weights * (-y_true * ops.log(p))
    return ops.sum(focal, axis=axis)


@register("loss")
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
    if label_smoothing and y_true.shape == y_pred.shape:
        classes = y_true.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    return nn.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


@register("loss")
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
    return nn.sparse_categorical_crossentropy(
        y_true, y_pred, from_logits=from_logits, axis=_check_axis(axis), ignore_class=ignore_class
    )


@register("loss")
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


@register("loss")
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


@register("loss")
class CategoricalFocalCrossentropy(LossFunctionWrapper):
    """Focal categorical cross-entropy (see ``categorical_focal_crossentropy``)."""

    def __init__(
        self,
        alpha: Any = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            categorical_focal_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        # no rank alignment: one-hot targets must match y_pred exactly
        return categorical_focal_crossentropy(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}


@register("loss")
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


# A LossFunctionWrapper around it (compile(loss="sparse_categorical_crossentropy")) keeps
# the labels integer, as the class does: casting them to float and back costs four array
# passes a step and loses labels above 2**24 in float32.
sparse_categorical_crossentropy.integer_targets = True  # type: ignore[attr-defined]


@register("loss")
class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for integer labels (see ``sparse_categorical_crossentropy``).

    With ``ignore_class``, samples with that label are left out of the mean. The labels stay
    integer (``integer_targets``, from the function).
    """

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
