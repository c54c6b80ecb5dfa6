"""Shared helpers of the Keras-guide compatibility programs (tests/keras_guides/).

Every guide module defines its models as ``build_*(keras)`` functions that take the
framework module, so the same definition builds with ``dendrite`` and, where it is
installed, with real Keras 3; ``assert_same_structure`` compares the two builds' output
shapes and parameter counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import dendrite


def real_keras() -> Any:
    """Real Keras 3, or skip (it is not installed in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3."):
        pytest.skip(f"needs Keras 3, found {keras.__version__}")
    return keras


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    if isinstance(out, (list, tuple)):
        flat: list[Any] = []
        for item in out:
            flat.extend(_flatten(item))
        return flat
    return [out]


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a PyTorch tensor (Keras' torch backend) that needs grad
        x = x.detach()
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def structure(
    keras: Any, build: Callable[[Any], Any], sample: Callable[[], Any] | None = None
) -> tuple[list[tuple], int]:
    """(output shapes, parameter count) of ``build(keras)``: the symbolic output shapes,
    or, for models without a graph, the shapes of the outputs on ``sample()``."""
    model = build(keras)
    if sample is not None:
        shapes = [tuple(to_numpy(o).shape) for o in _flatten(model(sample()))]
    else:
        shapes = [tuple(o.shape) for o in _flatten(model.outputs)]
    return shapes, int(model.count_params())


def assert_same_structure(
    build: Callable[[Any], Any], sample: Callable[[], Any] | None = None
) -> None:
    keras = real_keras()
    ours = structure(dendrite, build, sample)
    theirs = structure(keras, build, sample)
    assert ours == theirs, f"dendrite {ours} != keras {theirs}"


def last_and_first(history: dict[str, list[float]], key: str = "loss") -> tuple[float, float]:
    values = history[key]
    return values[0], values[-1]
