"""Weight regularizers (the design document's 9.3: L1/L2 against over-fitting).

A regularizer maps a weight ``w`` to a penalty added to the training loss:
``L1: l1 * sum(|w|)``, ``L2: l2 * sum(w^2)``, ``L1L2: both``. Keras' defaults: 0.01.
"""

from __future__ import annotations

from typing import Any

from dendrite import ops
from dendrite.core import Tensor


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


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w^2)``."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras' convenience constructor (defaults 0.01 each)."""
    return L1L2(l1=l1, l2=l2)


l1 = L1
l2 = L2

REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
_BY_CLASS_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier: Any) -> Any:
    """A regularizer from None, a name ('l2'), a config dict, an instance or a callable."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = REGULARIZERS.get(identifier.lower()) or _BY_CLASS_NAME.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown regularizer {identifier!r}. Valid names: {', '.join(REGULARIZERS)}."
            )
        return cls()
    if isinstance(identifier, dict):
        cls = _BY_CLASS_NAME.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown regularizer class {identifier.get('class_name')!r}.")
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer: {identifier!r}.")


def serialize(regularizer: Any) -> Any:
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
