"""Keras' protocol for customising ``fit``/``evaluate``/``predict``: a model class that
overrides ``train_step(self, data)``, ``test_step(self, data)`` or ``predict_step(self,
data)`` (one ``data`` argument, as in Keras) receives each batch packed as Keras packs it,
``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, and returns the logs itself: a dict of
names to values (floats, arrays, Tensors, or nested dicts such as the compiled metrics'
results, which are flattened). ``fit`` reports the last batch's logs for the epoch, as
Keras does (the metrics are running means).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.utils import pack_x_y_sample_weight, unpack_x_y_sample_weight

__all__ = [
    "logs_to_python",
    "overrides_with_data",
    "pack_x_y_sample_weight",
    "unpack_x_y_sample_weight",
]

_CACHE: dict[tuple[type, str], bool] = {}


def overrides_with_data(cls: type, name: str, base: Callable[..., Any]) -> bool:
    """Whether ``cls.<name>`` is a user override taking a single ``data`` argument."""
    key = (cls, name)
    found = _CACHE.get(key)
    if found is None:
        method = getattr(cls, name, None)
        found = False
        if method is not None and method is not base:
            parameters = list(inspect.signature(method).parameters.values())[1:]
            positional = [
                p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            found = len(positional) == 1
        _CACHE[key] = found
    return found


def logs_to_python(logs: Any, step: str) -> dict[str, Any]:
    """A step's returned logs as a flat dict of floats (arrays for non-scalar values)."""
    if logs is None:
        return {}
    if not isinstance(logs, dict):
        raise TypeError(
            f"A custom {step}(data) must return a dict of logs (e.g. {{m.name: m.result() for "
            f"m in self.metrics}}); it returned {type(logs).__name__}."
        )
    flat: dict[str, Any] = {}
    for name, value in logs.items():
        if isinstance(value, dict):
            flat.update(logs_to_python(value, step))
            continue
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        flat[name] = float(array) if array.ndim == 0 else array
    return flat
