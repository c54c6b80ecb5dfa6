"""Metric state summed across ranks, so logs equal what one process would report.

A metric's result is a function of its state; every built-in metric keeps an additive
state (Mean's total and count, accuracy's, AUC's and precision's confusion counts, ...),
so the sum of the ranks' states is the state one process would have after seeing every
shard. The state is found without a list per class: the attributes that ``reset_state``
sets to zero (Python numbers and float arrays) plus the ``add_variable`` variables.
Results are then read from the summed state (reducing results, as an average of AUCs,
would be wrong).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def leaf_metrics(metrics: list) -> list:
    """The metrics holding state: containers (the compiled metrics) opened up."""
    found = []
    for metric in metrics:
        entries = getattr(metric, "entries", None)
        if isinstance(entries, list) and not hasattr(metric, "variables"):
            found += leaf_metrics([entry[-1] for entry in entries])
        else:
            found.append(metric)
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def state_names(metric: Any) -> list[str]:
    """The attributes of ``metric`` that are its additive state (zero after a reset)."""
    fresh = copy.deepcopy(metric)  # reset_state may assign in place
    try:
        fresh.reset_state()
    except NotImplementedError:
        return []
    names = []
    for name, value in sorted(vars(fresh).items()):
        if _is_number(value) and value == 0:
            names.append(name)
        elif (
            isinstance(value, np.ndarray)
            and value.dtype.kind in "fiu"
            and not np.any(value)
            and isinstance(getattr(metric, name, None), np.ndarray)
        ):
            names.append(name)
    return names


def reduce_metric_states(comm: Any, metrics: list) -> None:
    """Sum every metric's state over the ranks, in place (one allreduce)."""
    plan = []
    pieces = []
    for metric in leaf_metrics(metrics):
        for name in state_names(metric):
            value = getattr(metric, name)
            plan.append((metric, name, value))
            pieces.append(np.asarray(value, np.float64).reshape(-1))
        for variable in getattr(metric, "variables", []):
            plan.append((metric, None, variable))
            pieces.append(np.asarray(variable.data, np.float64).reshape(-1))
    buffer = np.concatenate(pieces) if pieces else np.zeros(0)
    lengths = comm.allgather_object(len(buffer))
    if len(set(lengths)) != 1:
        raise RuntimeError(
            f"The metrics' states differ in size across ranks ({lengths}); every rank must "
            "compile the same metrics."
        )
    comm.allreduce_sum(buffer)
    offset = 0
    for metric, name, value in plan:
        size = int(np.size(value.data if name is None else value))
        part = buffer[offset : offset + size]
        offset += size
        if name is None:
            value.data[...] = part.reshape(value.data.shape)
        elif isinstance(value, np.ndarray):
            setattr(metric, name, part.reshape(value.shape).astype(value.dtype))
        elif isinstance(value, (int, np.integer)):
            setattr(metric, name, type(value)(round(float(part[0]))))
        else:
            setattr(metric, name, type(value)(part[0]))
