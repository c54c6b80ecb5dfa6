"""Keras-named losses on dendrite ops: functions of per-sample values and ``Loss`` classes.

    loss = dendrite.losses.SparseCategoricalCrossentropy()
    value = loss(y_true, y_pred)        # a scalar Tensor; value.backward() differentiates it

Any ``fn(y_true, y_pred)`` built from dendrite ops works as a loss too (``get`` returns it
as it is; ``LossFunctionWrapper(fn)`` gives it a reduction and sample weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dendrite import registry
from dendrite.losses.circle import Circle, circle
from dendrite.losses.ctc import CTC, ctc
from dendrite.losses.generalized_cross_entropy import (
    CategoricalGeneralizedCrossEntropy,
    categorical_generalized_cross_entropy,
)
from dendrite.losses.loss import (
    REDUCTIONS,
    Loss,
    LossFunctionWrapper,
    reduce_weighted_values,
    snake_case,
    squeeze_or_expand,
)
from dendrite.losses.overlap import Dice, Tversky, dice, tversky
from dendrite.losses.probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    sparse_categorical_crossentropy,
)
from dendrite.losses.regression import (
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    squared_hinge,
)
from dendrite.registry import serialization

# Keras's short aliases
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
bce = BCE = binary_crossentropy
logcosh = log_cosh

#: every name ``get`` accepts -> class or function: class names (-> a new instance),
#: function names and Keras's aliases (-> the function). A live, read-only view of the
#: registry's "loss" kind.
LOSSES: Mapping[str, Any] = registry.table("loss", aliases=True)
#: The Loss classes that can be built from their name (every registered one but
#: ``LossFunctionWrapper``, which needs a function).
LOSS_CLASSES: tuple[type[Loss], ...] = tuple(
    obj
    for obj in registry.items("loss").values()
    if isinstance(obj, type) and obj is not LossFunctionWrapper
)


def get(identifier: Any) -> Any:
    """Resolve a loss identifier, as ``keras.losses.get``.

    Args:
        identifier: None; a name (a function name or alias such as "mse" or
            "sparse_categorical_crossentropy" gives the function, a class name such as
            "MeanSquaredError" a new instance); a config dict ``{"class_name": ...,
            "config": {...}}``; a Loss class (built with its defaults) or instance; or any
            callable ``fn(y_true, y_pred)`` (returned as it is). Names are found by
            ``dendrite.registry.get("loss", ...)``: custom-object scopes and registered
            objects first, then the built-in losses.

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or an identifier
            that is none of the above.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        found = deserialize(identifier)
        if not (isinstance(found, Loss) or (callable(found) and not isinstance(found, type))):
            raise ValueError(f"The loss config {identifier!r} names {found!r}, not a loss.")
        return found
    if isinstance(identifier, str):
        found = registry.get("loss", identifier)
        if found is LossFunctionWrapper:
            raise ValueError(
                "'LossFunctionWrapper' needs a function: pass LossFunctionWrapper(fn) or the "
                "function itself."
            )
        return found() if isinstance(found, type) else found
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}.")


serialize, deserialize = serialization.for_kind("loss")


__all__ = [
    "categorical_generalized_cross_entropy",
    "CategoricalGeneralizedCrossEntropy",
    "circle",
    "Circle",
    "BCE",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CTC",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Dice",
    "Hinge",
    "Huber",
    "KLD",
    "KLDivergence",
    "LOSSES",
    "LogCosh",
    "Loss",
    "LossFunctionWrapper",
    "MAE",
    "MAPE",
    "MSE",
    "MSLE",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "REDUCTIONS",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
    "bce",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "ctc",
    "deserialize",
    "dice",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "log_cosh",
    "logcosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "reduce_weighted_values",
    "serialize",
    "snake_case",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "squeeze_or_expand",
    "tversky",
]
