"""``OpCase``: how to exercise one registered primitive, and ``sample``: its inputs.

A case names the op it covers (``op``, its name in the registry), a function of Tensors in
dendrite, the input shapes to try, and optionally the same maths in PyTorch (``torch``,
compared in float32 when PyTorch is installed) and in NumPy (``reference``, the expected
forward value in float64, checked always). The tests run every case through ``gradcheck``
in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OpCase:
    """One way to call a registered op (see the module docstring).

    ``kind`` tells the property-based tests which shapes they may generate: "unary" (any
    shape), "binary" (two mutually broadcastable shapes), "reduce" (any shape, with an axis
    and keepdims; ``fn(x, axis, keepdims)``) or "fixed" (only the listed shapes).
    ``reference(*arrays)`` takes the same float64 arrays as ``fn`` takes Tensors.
    """

    op: str
    fn: Callable[..., Any]
    shapes: tuple
    torch: Callable[..., Any] | None = None
    kind: str = "fixed"
    domain: str = "real"
    name: str = ""
    reference: Callable[..., np.ndarray] | None = None

    @property
    def id(self) -> str:
        return self.name or self.op


def sample(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Random float64 inputs inside an op's domain, away from its kinks and poles."""
    x = rng.standard_normal(shape)
    if domain == "positive":
        return np.abs(x) + 0.5
    if domain == "nonzero":
        return np.where(x >= 0, 1.0, -1.0) * (np.abs(x) + 0.5)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "wide":
        return x * 4
    return x
