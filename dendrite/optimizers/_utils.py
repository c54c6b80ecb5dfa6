"""Argument checks and gradient-norm arithmetic shared by the optimizers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_hyperparameter(name: str, value: Any, low: float, high: float | None = None) -> float:
    """``value`` as a float, or a ValueError unless ``low <= value (<= high)``."""
    if not is_number(value) or not (low <= value and (high is None or value <= high)):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"Argument `{name}` must be a number {bounds}. Received: {name}={value!r}")
    return float(value)


def check_positive_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not value > 0:
        raise ValueError(
            f"Argument `{name}` must be a positive number or None. Received: {name}={value!r}"
        )
    return float(value)


def variable_label(variable: Any) -> str:
    """How errors and slot names refer to a variable: its path, else its name."""
    return str(getattr(variable, "path", None) or getattr(variable, "name", None) or "variable")


def squared_norm(array: np.ndarray) -> float:
    """``sum(array ** 2)``, by NumPy's own (pairwise) sum: BLAS' dot product would sum in an
    order that depends on its threads, which the thread governor switches."""
    flat = array.reshape(-1)
    if flat.dtype == np.float16:
        flat = flat.astype(np.float32)  # squares below 6e-8 would flush to zero
    if np.iscomplexobj(flat):
        return float(np.add.reduce((flat.conj() * flat).real))
    return float(np.add.reduce(np.multiply(flat, flat)))


def clipnorm_scales(arrays: Sequence[np.ndarray], clipnorm: float) -> list[float]:
    """Keras' per-gradient clip: ``g * clipnorm / max(||g||, clipnorm)``, as factors."""
    # max(norm, clipnorm) with the norm first, so a NaN norm gives a NaN factor (as in Keras)
    return [clipnorm / max(math.sqrt(squared_norm(a)), clipnorm) for a in arrays]


def global_clipnorm_scale(arrays: Sequence[np.ndarray], clipnorm: float) -> float:
    """Keras' global clip factor ``clipnorm / max(||all g||, clipnorm)``; NaN when the joint
    norm is not finite, so a non-finite gradient is not silently clipped to zeros."""
    norm = math.sqrt(sum(squared_norm(a) for a in arrays))
    return clipnorm / max(norm, clipnorm) if math.isfinite(norm) else math.nan
