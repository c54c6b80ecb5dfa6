"""Weight regularizers (the design document's 9.3: L1/L2 against over-fitting).

A regularizer maps a weight ``w`` to a penalty added to the training loss:
``L1: l1 * sum(|w|)``, ``L2: l2 * sum(w^2)``, ``L1L2: both``. Keras' defaults: 0.01.
``OrthogonalRegularizer`` penalises the overlap between the rows (or columns) of a matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from dendrite import _settings, ops, registry
from dendrite.core import Tensor
from dendrite.registry import serialization


class Regularizer:
    """Base class: ``regularizer(weight) -> scalar Tensor``."""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)


def _check(name: str, value: Any) -> float:
    value = float(value)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}.")
    return value


@registry.register("regularizer", aliases=("l1_l2",))
class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w^2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check("l1", l1)
        self.l2 = _check("l2", l2)

    def __call__(self, x: Tensor) -> Tensor:
        penalty = None
        if self.l1:
            penalty = self.l1 * ops.sum(ops.abs(x))
        if self.l2:
            term = self.l2 * ops.sum(x * x)
            penalty = term if penalty is None else penalty + term
        return penalty if penalty is not None else Tensor(0.0, dtype=x.dtype)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


@registry.register("regularizer")
class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


@registry.register("regularizer")
class L2(L1L2):
    """``l2 * sum(w^2)``."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


def _non_negative_float(name: str, value: Any) -> float:
    """Keras' check of a penalty factor (``validate_float_arg``), with its message."""
    if (
        not isinstance(value, (float, int, np.floating, np.integer))
        or math.isinf(value)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float."
            f"Received: {name}={value}"
        )
    return float(value)


@registry.register("regularizer")
class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or the columns (``mode="columns"``) of a rank-2
    weight towards being orthogonal to each other.

    With ``u_1 ... u_n`` the rows (or columns) scaled to unit L2 norm, ``n`` of them::

        penalty = factor * 0.5 * sum_{i != j} |u_i . u_j| / (n (n - 1) / 2)

    i.e. ``factor`` times the mean absolute cosine over the pairs. A vector is scaled by
    ``1 / max(|v|, epsilon)`` (``keras.config.epsilon()``, as Keras' ``normalize``), so an
    all-zero row contributes 0 with a finite gradient. ``n = 1`` divides 0 by 0 (NaN), as in
    Keras. For a ``Dense`` kernel of shape ``(input_dim, units)``, rows mode makes the
    vectors that each input feature maps to orthogonal.

    Args:
        factor: the non-negative penalty factor; default 0.01.
        mode: "rows" (default) or "columns".
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _non_negative_float("factor", factor)
        if mode not in {"rows", "columns"}:
            raise ValueError(
                "Invalid value for argument `mode`. Expected one of "
                f'{{"rows", "columns"}}. Received: mode={mode}'
            )
        self.mode = mode

    def __call__(self, x: Tensor) -> Tensor:
        x = ops.convert_to_tensor(x)
        if len(x.shape) != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2. Received: "
                f"inputs.shape={tuple(x.shape)}"
            )
        axis = 1 if self.mode == "rows" else 0
        epsilon = _settings.epsilon()
        squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
        unit = x * ops.rsqrt(ops.maximum(squares, epsilon * epsilon))
        if self.mode == "rows":
            product = ops.matmul(unit, ops.transpose(unit))
        else:
            product = ops.matmul(ops.transpose(unit), unit)
        size = x.shape[1 - axis]
        off_diagonal = product * (1.0 - ops.eye(size, dtype=x.dtype))
        pairs = size * (size - 1.0) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):  # one vector: 0 / 0, as Keras
            return self.factor * 0.5 * ops.sum(ops.abs(off_diagonal)) / pairs

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras' convenience constructor (defaults 0.01 each)."""
    return L1L2(l1=l1, l2=l2)


l1 = L1
l2 = L2
orthogonal_regularizer = OrthogonalRegularizer

#: Every name ``get`` accepts ("l1", "L1", "l2", "L2", "l1_l2", "l1l2", "L1L2") -> class:
#: a live, read-only view of the registry's "regularizer" kind.
REGULARIZERS: Mapping[str, type[Regularizer]] = registry.table("regularizer", aliases=True)


def get(identifier: Any) -> Any:
    """A regularizer from None, a name ('l2', any case), a config dict, an instance or a
    callable. Names and config class names are found by
    ``dendrite.registry.get("regularizer", ...)``."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        found = registry.get("regularizer", identifier)
        return found() if isinstance(found, type) else found
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer: {identifier!r}.")


def serialize(regularizer: Any) -> Any:
    """Keras 3's dict of a regularizer (None stays None)."""
    return None if regularizer is None else _serialize(regularizer)


_serialize, deserialize = serialization.for_kind("regularizer")
