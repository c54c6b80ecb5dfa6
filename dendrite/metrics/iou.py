"""Intersection-over-union metrics for segmentation and classification: IoU, MeanIoU,
BinaryIoU, OneHotIoU, OneHotMeanIoU.

Every one accumulates a ``num_classes x num_classes`` confusion matrix ``C`` (rows: true
class, columns: predicted class; each pair adds its sample weight) and reports, for class
``c``,

    IoU_c = TP_c / (TP_c + FP_c + FN_c) = C[c, c] / (sum_j C[j, c] + sum_j C[c, j] - C[c, c])

averaged over the target classes whose denominator is positive (a class never seen in
either labels or predictions does not count): ``sum_c IoU_c / (valid + eps)``, each ``IoU_c``
computed as ``TP_c / (denominator + eps)``, ``eps = 1e-7`` as in Keras.

As in Keras: labels and predictions are class ids (or one-hot / scores, arg-maxed over
``axis``, with ``sparse_y_true=False`` / ``sparse_y_pred=False``), flattened; ids are cast
to integers (truncating), pairs with an id outside ``[0, num_classes)`` or a label equal to
``ignore_class`` are dropped. The metric's dtype defaults to "int32", and weights are cast
to it: float weights are truncated (with Keras's warning); pass ``dtype="float32"`` to keep
them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.metrics.base import Metric, to_array
from dendrite.registry import register


def _class_ids(values: Any, sparse: bool, axis: int) -> np.ndarray:
    """Flat integer class ids: arg-maxed over ``axis`` unless ``sparse``, then truncated."""
    values = to_array(values)
    if not sparse:
        values = np.argmax(values, axis=axis)
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        values = np.trunc(np.asarray(values, dtype=np.float64))
    return values.ravel().astype(np.int64)


class _IoUBase(Metric):
    """The confusion-matrix accumulator shared by the IoU metrics."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        cls = type(self).__name__
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(
                f"{cls}: `num_classes` must be a positive integer. "
                f"Received: num_classes={num_classes!r}"
            )
        super().__init__(name=name, dtype=dtype or "int32")
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        dtype = np.dtype(self.dtype)
        labels = _class_ids(y_true, self.sparse_y_true, self.axis)
        preds = _class_ids(y_pred, self.sparse_y_pred, self.axis)
        if labels.shape != preds.shape:
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred hold {labels.size} and {preds.size} "
                "class ids; they must hold as many."
            )
        if sample_weight is None:
            weights = np.ones(labels.shape)
        else:
            weights = np.asarray(to_array(sample_weight))
            if np.issubdtype(dtype, np.integer) and np.issubdtype(weights.dtype, np.floating):
                warnings.warn(
                    "You are passing weight as `float`, but dtype is `int`. This may result in "
                    "an incorrect weight due to type casting Consider using integer weights.",
                    stacklevel=2,
                )
            weights = np.asarray(weights, dtype=np.float64)
            if np.issubdtype(dtype, np.integer):
                weights = np.trunc(weights)
            try:
                weights = np.broadcast_to(weights.ravel() if weights.ndim > 1 else weights,
                                          labels.shape)  # fmt: skip
            except ValueError:
                raise ValueError(
                    f"{type(self).__name__}: sample_weight of shape {np.shape(sample_weight)} "
                    f"cannot be broadcast to the {labels.size} class ids."
                ) from None
        n = self.num_classes
        keep = (labels >= 0) & (labels < n) & (preds >= 0) & (preds < n)
        if self.ignore_class is not None:
            keep &= labels != self.ignore_class
        flat = labels[keep] * n + preds[keep]
        self.total_cm += np.bincount(flat, weights[keep], minlength=n * n).reshape(n, n)

    def reset_state(self) -> None:
        self.total_cm = np.zeros((self.num_classes, self.num_classes))


@register("metric")
class IoU(_IoUBase):
    """Mean intersection-over-union over the classes ``target_class_ids``.

    Args:
        num_classes: number of classes (the confusion matrix is square of this size).
        target_class_ids: the classes to average over (each in ``[0, num_classes)``).
        name, dtype: as for ``Metric`` (dtype defaults to "int32", see the module
            docstring).
        ignore_class: a label to leave out (e.g. a "void" class); None keeps all.
        sparse_y_true: labels are class ids (True) or one-hot / scores (False).
        sparse_y_pred: predictions are class ids (True) or scores (False, arg-maxed).
        axis: the class axis, for non-sparse inputs.
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Any,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )
        ids = [int(i) for i in target_class_ids]
        if not ids:
            raise ValueError(f"{type(self).__name__}: `target_class_ids` is empty.")
        bad = [i for i in ids if not 0 <= i < num_classes]
        if bad:
            raise ValueError(
                f"{type(self).__name__}: target class id {bad[0]} is out of range, which is "
                f"[0, {num_classes})."
            )
        self.target_class_ids = ids

    def result(self) -> float:
        cm = self.total_cm
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = self.target_class_ids
        tp, denominator = tp[ids], denominator[ids]
        valid = denominator > 1e-9
        eps = _settings.epsilon()
        iou = np.where(valid, tp / (denominator + eps), 0.0)
        return float(np.sum(iou) / (np.sum(valid) + eps))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "target_class_ids": self.target_class_ids,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


@register("metric")
class BinaryIoU(IoU):
    """IoU of binary labels (0/1) and probabilities, a prediction being class 1 when it is
    at least ``threshold``.

    Args:
        target_class_ids: which of the classes 0 and 1 to average over (default both).
        threshold: predictions ``>= threshold`` are class 1.
        name, dtype: as for ``IoU``.
    """

    def __init__(
        self,
        target_class_ids: Any = (0, 1),
        threshold: float = 0.5,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        preds = (np.asarray(to_array(y_pred), dtype=np.float32) >= self.threshold).astype(int)
        super().update_state(y_true, preds, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "target_class_ids": self.target_class_ids,
            "threshold": self.threshold,
            "name": self.name,
            "dtype": self.dtype,
        }


@register("metric")
class MeanIoU(IoU):
    """IoU averaged over every class.

    Args:
        num_classes, name, dtype, ignore_class, sparse_y_true, sparse_y_pred, axis: as for
            ``IoU``.
    """

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes,
            target_class_ids=list(range(num_classes if isinstance(num_classes, int) else 0)),
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["target_class_ids"]
        return config


@register("metric")
class OneHotIoU(IoU):
    """IoU of one-hot labels and class scores (both arg-maxed over ``axis``).

    Args:
        num_classes, target_class_ids, name, dtype, ignore_class, axis: as for ``IoU``.
        sparse_y_pred: predictions are class ids already (default False: scores).
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Any,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes,
            target_class_ids,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


@register("metric")
class OneHotMeanIoU(MeanIoU):
    """Mean IoU of one-hot labels and class scores (both arg-maxed over ``axis``).

    Args:
        num_classes, name, dtype, ignore_class, axis: as for ``IoU``.
        sparse_y_pred: predictions are class ids already (default False: scores).
    """

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["sparse_y_true"]
        return config
