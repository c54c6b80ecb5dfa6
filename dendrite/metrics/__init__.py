"""Keras-named metrics: stateful accumulators over NumPy arrays (no autodiff graph).

    m = dendrite.metrics.SparseCategoricalAccuracy()
    m.update_state(y_true, y_pred)      # every batch
    m.result()                          # running value (a float; an array for several
    m.reset_state()                     # thresholds), then clear at the next epoch

``get`` resolves names ("accuracy", "mse", "auc", ...), configs, classes, instances and
plain ``fn(y_true, y_pred)`` callables; ``resolve_accuracy`` picks the accuracy variant that
fits a loss or the data, as Keras's ``compile`` does for ``metrics=["accuracy"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dendrite import registry
from dendrite.core import Tensor
from dendrite.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from dendrite.metrics.base import Mean, MeanMetricWrapper, Metric, Sum, snake_case
from dendrite.metrics.condition_counts import (
    FalseNegatives,
    FalsePositives,
    TrueNegatives,
    TruePositives,
)
from dendrite.metrics.confusion import AUC, Precision, Recall
from dendrite.metrics.correlation import (
    ConcordanceCorrelation,
    PearsonCorrelation,
    concordance_correlation,
    pearson_correlation,
)
from dendrite.metrics.f_score import F1Score, FBetaScore
from dendrite.metrics.hinge import (
    CategoricalHinge,
    Hinge,
    SquaredHinge,
    categorical_hinge,
    hinge,
    squared_hinge,
)
from dendrite.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from dendrite.metrics.loss_functions import (
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    huber,
)
from dendrite.metrics.probabilistic import KLDivergence, Poisson, kl_divergence, poisson
from dendrite.metrics.r2_score import R2Score
from dendrite.metrics.regression import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    sparse_categorical_crossentropy,
)
from dendrite.metrics.thresholds_at import (
    PrecisionAtRecall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
)
from dendrite.registry import serialization

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error

#: every name ``get`` accepts (class names, their snake_case and Keras's aliases such as
#: "acc", "mse", "rmse") -> class: a live, read-only view of the registry's "metric" kind.
METRICS: Mapping[str, type[Metric]] = registry.table("metric", aliases=True)


serialize, deserialize = serialization.for_kind("metric")


def get(identifier: Any) -> Metric | None:
    """Resolve a metric identifier to a Metric instance.

    Args:
        identifier: None; a name ("accuracy", "acc", "mse", "auc", a class name, ...); a
            config dict ``{"class_name": ..., "config": {...}}``; a Metric class (built with
            its defaults) or instance (returned as is); or any ``fn(y_true, y_pred)``
            returning per-sample values (wrapped in ``MeanMetricWrapper``). Names are found
            by ``dendrite.registry.get("metric", ...)``: custom-object scopes and registered
            objects first, then the built-in metrics.

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or an identifier
            that is none of the above.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):
        found = deserialize(identifier)
        if isinstance(found, Metric):
            return found
        if callable(found) and not isinstance(found, type):
            return MeanMetricWrapper(found)
        raise ValueError(f"The metric config {identifier!r} names {found!r}, not a Metric.")
    if isinstance(identifier, str):
        found = registry.get("metric", identifier)
        if isinstance(found, str):  # a custom_objects entry naming another name
            raise ValueError(f"The metric {identifier!r} resolves to a name, {found!r}.")
        return get(found)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}.")


_ACCURACY_FOR_LOSS: dict[str, type[Metric]] = {
    "sparse_categorical_crossentropy": SparseCategoricalAccuracy,
    "categorical_crossentropy": CategoricalAccuracy,
    "categorical_focal_crossentropy": CategoricalAccuracy,
    "binary_crossentropy": BinaryAccuracy,
    "binary_focal_crossentropy": BinaryAccuracy,
    "bce": BinaryAccuracy,
}


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    if isinstance(loss, str):
        return snake_case(loss) if loss[:1].isupper() else loss.lower()
    fn = getattr(loss, "fn", None)  # a LossFunctionWrapper names its function
    if callable(fn) and getattr(fn, "__name__", None):
        return fn.__name__
    if isinstance(loss, type):
        return snake_case(loss.__name__)
    if hasattr(loss, "__name__"):
        return loss.__name__
    return snake_case(type(loss).__name__)


def _shape(value: Any) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, tuple) and all(isinstance(d, int) or d is None for d in value):
        return value
    if isinstance(value, Tensor) or hasattr(value, "shape"):
        return tuple(value.shape)
    return np.shape(value)


def resolve_accuracy(
    name: str, loss: Any = None, y_true: Any = None, y_pred: Any = None
) -> Metric | None:
    """The accuracy metric that ``metrics=["accuracy"]`` means for this loss or data.

    As Keras's compile: from the loss first (sparse_categorical_crossentropy ->
    SparseCategoricalAccuracy, categorical_crossentropy -> CategoricalAccuracy,
    binary_crossentropy -> BinaryAccuracy); otherwise from the shapes of ``y_true`` and
    ``y_pred`` (arrays, Tensors or shape tuples): ``y_pred`` with last axis 1 -> binary;
    ``y_true`` of lower rank, or ending in 1 while ``y_pred`` does not -> sparse; else
    categorical. The metric is named ``name`` ("accuracy" or "acc").

    Any other ``name`` is resolved with ``get``. Returns None when neither the loss nor
    shapes decide; call again once ``y_true`` and ``y_pred`` are known.
    """
    if str(name).lower() not in ("accuracy", "acc"):
        return get(name)
    cls: Callable[..., Metric] | None = _ACCURACY_FOR_LOSS.get(_loss_name(loss) or "")
    true_shape, pred_shape = _shape(y_true), _shape(y_pred)
    if cls is None and true_shape is not None and pred_shape is not None:
        true_last = true_shape[-1] if true_shape else 1
        pred_last = pred_shape[-1] if pred_shape else 1
        if pred_last == 1:
            cls = BinaryAccuracy
        elif len(true_shape) < len(pred_shape) or true_last == 1:
            cls = SparseCategoricalAccuracy
        else:
            cls = CategoricalAccuracy
    return None if cls is None else cls(name=str(name))


__all__ = [
    "huber",
    "categorical_focal_crossentropy",
    "binary_focal_crossentropy",
    "pearson_correlation",
    "concordance_correlation",
    "PearsonCorrelation",
    "ConcordanceCorrelation",
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "BinaryIoU",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "IoU",
    "KLDivergence",
    "LogCoshError",
    "MAE",
    "MAPE",
    "METRICS",
    "MSE",
    "MSLE",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "OneHotIoU",
    "OneHotMeanIoU",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "R2Score",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "get",
    "hinge",
    "kl_divergence",
    "log_cosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "resolve_accuracy",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]
