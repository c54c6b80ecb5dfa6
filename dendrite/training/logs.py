"""What the loops hand back: logs as Python values, results shaped as Keras returns them,
predictions as ndarrays, and the checks of the loops' small arguments.

A step (``train_step(data)``, ``test_step(data)``) returns its logs: a dict of names to
values (floats, arrays, Tensors, or nested dicts such as the compiled metrics' results,
which are flattened). ``fit`` and ``evaluate`` report the last step's logs, which are
running means over the epoch (the metrics are reset when it starts), as Keras does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor


def logs_to_python(logs: Any, step: str) -> dict[str, Any]:
    """A step's returned logs as a flat dict of floats (arrays for non-scalar values), in
    name order as Keras' ``pythonify_logs`` gives them."""
    if logs is None:
        return {}
    if not isinstance(logs, dict):
        raise TypeError(
            f"{step}(data) must return a dict of logs (e.g. {{m.name: m.result() for m in "
            f"self.metrics}}); it returned {type(logs).__name__}."
        )
    flat: dict[str, Any] = {}
    for name, value in sorted(logs.items()):
        if type(value) is float:
            flat[name] = value
        elif isinstance(value, dict):
            flat.update(logs_to_python(value, step))
        else:
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            flat[name] = float(array) if array.ndim == 0 else array
    return flat


def keras_result(logs: dict[str, Any], return_dict: bool, order: list[str]) -> Any:
    """What evaluate / ``*_on_batch`` return: the logs dict, or its values as a list in
    ``order`` (the model's metric names, the loss first), then any other log in name order;
    one value alone is returned bare (Keras' ``_flatten_metrics_in_order``)."""
    if return_dict:
        return logs
    values = [logs[name] for name in order if name in logs]
    values += [logs[name] for name in sorted(logs) if name not in order]
    return values[0] if len(values) == 1 else values


def to_numpy(out: Any) -> Any:
    """A prediction (a Tensor, or a list / dict of them) as ndarrays."""
    if isinstance(out, Tensor):
        return out.data
    if isinstance(out, dict):
        return {k: to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [to_numpy(v) for v in out]
    return np.asarray(out)


def concatenate(batches: list) -> Any:
    """The predictions of every batch joined along the batch axis."""
    first = batches[0]
    if isinstance(first, dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([b[i] for b in batches]) for i in range(len(first))]
    return np.concatenate(batches)


def verbosity(verbose: Any) -> int:
    """Keras' ``verbose``: 0 (silent), 1 (progress bar), 2 (one line per epoch), "auto"."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}.")
    return int(verbose)


def batch_size_or(batch_size: Any, default: int) -> int:
    """A checked positive ``batch_size`` (``default`` when None)."""
    if batch_size is None:
        return default
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def unpack_validation(validation_data: Any) -> tuple:
    """``(x_val, y_val, val_sample_weight)`` from fit's ``validation_data``."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight)."
        )
    x, y, *rest = validation_data
    return x, y, rest[0] if rest else None
