"""Weight constraints, Keras' ``keras.constraints``: a function applied to a weight after
every optimizer update (``fit`` and ``train_on_batch`` apply them), projecting it back
into an allowed set.

With ``n = sqrt(sum_axis w^2)`` the norm of each slice along ``axis`` (kept as a size-1
axis) and ``e`` Keras' epsilon (``dendrite.backend.epsilon()``, 1e-7 unless set):

- ``MaxNorm(m)``: ``w * clip(n, 0, m) / (e + n)`` (slices longer than m are shrunk to m);
- ``MinMaxNorm(lo, hi, rate)``: ``w * (rate clip(n, lo, hi) + (1 - rate) n) / (e + n)``;
- ``UnitNorm``: ``w / (e + n)``;
- ``NonNeg``: ``w [w >= 0]``.

For a Dense kernel (inputs, units) the default ``axis=0`` constrains each unit's incoming
weight vector; for a Conv2D kernel (kh, kw, C, F) use ``axis=[0, 1, 2]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dendrite import _settings, ops, registry
from dendrite.core import Tensor
from dendrite.registry import serialization


@registry.register("constraint")
class Constraint:
    """Base class: ``constraint(w) -> w`` projected; the identity here."""

    def __call__(self, w: Tensor) -> Tensor:
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        return cls(**config)


def _axis(axis: Any) -> Any:
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _norms(w: Tensor, axis: Any) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(w), axis=axis, keepdims=True))


def _config_axis(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


@registry.register("constraint")
class MaxNorm(Constraint):
    """Each slice along ``axis`` gets a norm of at most ``max_value`` (Keras default 2)."""

    def __init__(self, max_value: float = 2.0, axis: Any = 0) -> None:
        self.max_value = float(max_value)
        self.axis = _axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        norms = _norms(w, self.axis)
        desired = ops.clip(norms, 0.0, self.max_value)
        return w * (desired / (_settings.epsilon() + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": _config_axis(self.axis)}


@registry.register("constraint")
class MinMaxNorm(Constraint):
    """Each slice's norm moves towards [min_value, max_value] at ``rate`` (1: all the way)."""

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0
    ) -> None:
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.rate = float(rate)
        self.axis = _axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        norms = _norms(w, self.axis)
        desired = self.rate * ops.clip(norms, self.min_value, self.max_value)
        desired = desired + (1.0 - self.rate) * norms
        return w * (desired / (_settings.epsilon() + norms))

    def get_config(self) -> dict:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": _config_axis(self.axis),
        }


@registry.register("constraint")
class UnitNorm(Constraint):
    """Each slice along ``axis`` is scaled to norm 1."""

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        return w / (_settings.epsilon() + _norms(w, self.axis))

    def get_config(self) -> dict:
        return {"axis": _config_axis(self.axis)}


@registry.register("constraint")
class NonNeg(Constraint):
    """Negative entries become 0."""

    def __call__(self, w: Tensor) -> Tensor:
        return w * ops.cast(ops.greater_equal(w, 0.0), w.dtype)


# Keras' function-style aliases (``keras.constraints.max_norm(3)``).
max_norm = MaxNorm
min_max_norm = MinMaxNorm
unit_norm = UnitNorm
non_neg = NonNeg

#: Every name ``get`` accepts (class names and their snake_case) -> class: a live,
#: read-only view of the registry's "constraint" kind.
CONSTRAINTS: Mapping[str, type[Constraint]] = registry.table("constraint", aliases=True)


def get(identifier: Any) -> Any:
    """A constraint from None, a name ('max_norm', 'NonNeg', ...), a config dict
    (``{"class_name": ..., "config": ...}``) or a callable (returned as it is). Names are
    found by ``dendrite.registry.get("constraint", ...)``."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        found = registry.get("constraint", identifier)
        return found() if isinstance(found, type) else found
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}.")


def serialize(constraint: Any) -> Any:
    """Keras 3's dict of a constraint (None stays None)."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise ValueError(
            f"Cannot serialize the constraint {constraint!r}: only keras.constraints classes "
            f"(or subclasses of Constraint with get_config) can be saved in a model config."
        )
    return _serialize(constraint)


_serialize, deserialize = serialization.for_kind("constraint")
