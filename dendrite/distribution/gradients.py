"""Gradient averaging: one allreduce over one flat buffer per step.

Each rank computes the gradient of the mean loss over its shard of ``n_r`` rows. The
single-process gradient of the mean over the global batch of ``B = sum n_r`` rows is
``sum_r (n_r / B) g_r``, so each rank writes ``n_r g_r`` into one buffer, followed by one
flag per variable (1 where this rank has a gradient for it) and ``n_r`` itself; one
``Allreduce(SUM)`` then gives every rank ``sum n_r g_r``, the flags and ``B``. Dividing
gives the single-process gradient up to float summation order, and every rank takes the
same optimizer step. A penalty in ``model.losses`` enters each shard's loss whole, and the
weights sum to one, so it also enters once. (This holds for losses reduced by the mean
over the batch, Keras' default ``sum_over_batch_size``; a ``"sum"`` reduction would need
the plain sum instead.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _array(grad: Any) -> np.ndarray | None:
    if grad is None:
        return None
    return getattr(grad, "data", grad) if not isinstance(grad, np.ndarray) else grad


class GradientAverager:
    """The flat-buffer layout of a fixed list of variables, and the weighted average.

    Every rank must build it on the same variables in the same order (the optimizer's).
    """

    def __init__(self, comm: Any, variables: Sequence[Any]) -> None:
        self.comm = comm
        self.variables = list(variables)
        self.index = {id(v): i for i, v in enumerate(self.variables)}
        self.shapes = [v.data.shape for v in self.variables]
        sizes = [int(v.data.size) for v in self.variables]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.total = self.offsets[-1]
        dtypes = [v.data.dtype for v in self.variables]
        self.dtype = np.result_type(np.float32, *dtypes) if dtypes else np.dtype(np.float32)

    def average(self, grads: Sequence[Any], variables: Sequence[Any], weight: float) -> list:
        """The averaged gradient of each of ``variables`` (None where no rank had one),
        from this rank's ``grads`` weighted by ``weight`` (its shard's rows)."""
        count = len(self.variables)
        buffer = np.zeros(self.total + count + 1, self.dtype)
        offsets, index = self.offsets, self.index
        for grad, variable in zip(grads, variables):
            grad = _array(grad)
            if grad is None:
                continue
            i = index.get(id(variable))
            if i is None:
                raise ValueError(
                    f"Variable {getattr(variable, 'path', variable)!r} is not among the "
                    "variables the optimizer was built with; under data parallelism every "
                    "rank averages the gradients of those variables."
                )
            buffer[offsets[i] : offsets[i + 1]] = grad.reshape(-1)
            buffer[self.total + i] = 1
        if weight != 1:
            buffer[: self.total] *= weight
        buffer[-1] = weight
        self.comm.allreduce_sum(buffer)
        total_weight = float(buffer[-1])
        if total_weight > 0:
            buffer[: self.total] /= total_weight
        out = []
        for variable in variables:
            i = index.get(id(variable))
            if i is None or buffer[self.total + i] == 0:
                out.append(None)
                continue
            grad = buffer[offsets[i] : offsets[i + 1]].reshape(self.shapes[i])
            out.append(grad.astype(variable.data.dtype, copy=False))
        return out


class AveragingApply:
    """Installed as ``optimizer.apply`` during ``fit`` (``apply_gradients`` calls it):
    averages the gradients over the ranks, weighted by ``shard_size`` (the rows of this
    rank's shard, set by the trainer before each step), then applies them."""

    def __init__(self, comm: Any, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.original = optimizer.apply  # the bound method of the class
        self.averager = GradientAverager(comm, optimizer._trainable_variables)
        self.shard_size = 1

    def __call__(self, grads: Sequence[Any], trainable_variables: Any = None) -> None:
        grads = list(grads)
        variables = (
            self.averager.variables if trainable_variables is None else list(trainable_variables)
        )
        averaged = self.averager.average(grads, variables, self.shard_size)
        self.original(averaged, variables)

    def empty_step(self) -> None:
        """This rank's shard of the batch is empty: contribute nothing (weight 0) to the
        allreduce and take the same step as every other rank."""
        self.shard_size = 0
        self(list([None] * len(self.averager.variables)))


def install(comm: Any, optimizer: Any) -> AveragingApply:
    hook = AveragingApply(comm, optimizer)
    optimizer.apply = hook  # an instance attribute shadows the class's method
    return hook


def uninstall(optimizer: Any) -> None:
    if isinstance(optimizer.__dict__.get("apply"), AveragingApply):
        del optimizer.__dict__["apply"]
