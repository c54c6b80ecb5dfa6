"""Matrix products: matmul (batched, broadcasting) and tensordot.

For ``C = A B`` (over the last two axes, leading axes broadcast):
``dL/dA = G B^T`` and ``dL/dB = A^T G``, each summed over broadcast batch axes. A 1-D
operand is a row (left) or column (right) vector, as in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import unbroadcast


@register("matmul")
class MatMul(Function):
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and "
                f"{b.shape} (use multiply for scalars)."
            )
        self.saved = (a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ValueError(
                f"matmul: incompatible shapes {a.shape} and {b.shape}: the last axis of the "
                f"first ({a.shape[-1]}) must equal the "
                f"{'only' if b.ndim == 1 else 'second-to-last'} axis of the second "
                f"({b.shape[0] if b.ndim == 1 else b.shape[-2]})."
            ) from None

    def backward(self, g: np.ndarray) -> tuple:
        a, b = self.saved
        if a.ndim == 2 and b.ndim == 2:
            ga = g @ b.T if self.needs_grad[0] else None
            gb = a.T @ g if self.needs_grad[1] else None
            return ga, gb
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if self.needs_grad[0]:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_grad[1]:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(x1: Any, x2: Any) -> Tensor:
    """Matrix product of the last two axes, batch axes broadcast (NumPy's ``matmul``)."""
    return MatMul.apply(x1, x2)
