"""A bound on the weights one thread may create: loading a model from a stranger's file
builds it under the number of weight values the file holds, so a small file cannot make
``add_weight`` allocate gigabytes. Per thread: another thread building its own model at
the same time is neither counted nor refused."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any


class _Budget(threading.local):
    remaining: int | None = None  # None: no bound in this thread
    refuse: Callable[[Any, tuple], Exception] | None = None


BUDGET = _Budget()


@contextlib.contextmanager
def weight_budget(max_elements: int, refuse: Callable[[Any, tuple], Exception]) -> Iterator[None]:
    """Within the block, in this thread, creating weights of more than ``max_elements``
    values in total (or of a negative size) raises ``refuse(layer, shape)`` before the
    allocation."""
    previous = (BUDGET.remaining, BUDGET.refuse)
    BUDGET.remaining, BUDGET.refuse = int(max_elements), refuse
    try:
        yield
    finally:
        BUDGET.remaining, BUDGET.refuse = previous


def charge(layer: Any, shape: tuple) -> None:
    """Count a weight of ``shape`` against this thread's budget (``Layer.add_weight``)."""
    remaining = BUDGET.remaining
    if remaining is None:
        return
    if any(d < 0 for d in shape) or math.prod(shape) > remaining:
        raise BUDGET.refuse(layer, shape)
    BUDGET.remaining = remaining - math.prod(shape)
