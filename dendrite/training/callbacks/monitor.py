"""Which way a monitored quantity should go: Keras's ``mode='auto'``.

``'loss'``, ``'val_loss'`` and ``'<output>_loss'`` go down; a compiled metric with a
``_direction`` attribute ("up"/"down") says so itself; otherwise the metric's name decides
(accuracy, AUC, precision, recall go up; errors, cross-entropies, divergences go down).
"""

from __future__ import annotations

import warnings
from typing import Any

_UP = ("acc", "auc", "precision", "recall", "f1", "iou", "r2", "top_k", "true_positive")
_DOWN = (
    "loss",
    "error",
    "mse",
    "mae",
    "mape",
    "msle",
    "rmse",
    "crossentropy",
    "hinge",
    "divergence",
    "kld",
    "poisson",
    "cosh",
    "false_",
)


def check_mode(mode: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{owner} mode {mode} is unknown, fallback to auto mode.", stacklevel=3)
        return "auto"
    return mode


def direction(model: Any, monitor: str, mode: str, owner: str) -> str:
    """'min' or 'max' for ``monitor``; a ValueError when ``mode='auto'`` cannot tell."""
    if mode in ("min", "max"):
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    for metric in getattr(model, "metrics", None) or []:
        if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
            return "max" if metric._direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _UP):
        return "max"
    if any(word in lowered for word in _DOWN):
        return "min"
    raise ValueError(
        f"{owner} callback received monitor={monitor}, but dendrite isn't able to "
        f"automatically determine whether that metric should be maximized or minimized. "
        f"Pass `mode='max'` in order to monitor based on the highest metric value, or pass "
        f"`mode='min'` in order to use the lowest value."
    )
