"""Sorting with Keras 3's names: sort, argsort, top_k.

``sort`` and ``top_k``'s values are gathers (``take_along_axis`` with the sorting
permutation), so their gradient routes g back to the positions the values came from;
``argsort`` and ``top_k``'s indices are plain integer tensors. Ties keep their original
order (a stable sort), and ``top_k`` takes the largest values, ties to the lower index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.indexing import take_along_axis


def argsort(x: Any, axis: int = -1) -> Tensor:
    """The indices that sort ``x`` along ``axis`` (ascending, stable); plain int32."""
    return Tensor._make(np.argsort(raw(x), axis=axis, kind="stable").astype(np.int32))


def sort(x: Any, axis: int = -1) -> Tensor:
    """``x`` sorted along ``axis`` in ascending order; differentiable (a gather)."""
    order = np.argsort(raw(x), axis=axis, kind="stable")
    return take_along_axis(x, order, axis=axis)


def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The ``k`` largest values along the last axis and their indices (int32).

    Values come largest first (when ``sorted``; otherwise in index order); the values are
    differentiable, the indices are not.
    """
    data = raw(x)
    if not isinstance(k, (int, np.integer)) or not 0 < k <= data.shape[-1]:
        raise ValueError(
            f"top_k: k must be an integer in [1, {data.shape[-1]}] (the last axis); got {k!r}."
        )
    order = np.argsort(-data, axis=-1, kind="stable")[..., :k]
    if not sorted:
        order = np.sort(order, axis=-1)
    return take_along_axis(x, order, axis=-1), Tensor._make(order.astype(np.int32))
