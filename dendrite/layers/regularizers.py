"""Weight regularizers (the design document's 9.3: L1/L2 against over-fitting).

A regularizer maps a weight ``w`` to a penalty added to the training loss:
``L1: l1 * sum(|w|)``, ``L2: l2 * sum(w^2)``, ``L1L2: both``. Keras' defaults: 0.01.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dendrite import ops, registry
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


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras' convenience constructor (defaults 0.01 each)."""
    return L1L2(l1=l1, l2=l2)


l1 = L1
l2 = L2

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
