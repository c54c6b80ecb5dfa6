"""Matrix products: matmul (batched, broadcasting; the primitive) and tensordot.

For ``C = A B`` (over the last two axes, leading axes broadcast):
``dL/dA = G B^T`` and ``dL/dB = A^T G``, each summed over broadcast batch axes. A 1-D
operand is a row (left) or column (right) vector, as in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._products import product
from dendrite.ops._util import unbroadcast
from dendrite.ops.movement import reshape, transpose


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
            return product(a, b)
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
            ga = product(g, b.T) if self.needs_grad[0] else None
            gb = product(a.T, g) if self.needs_grad[1] else None
            return ga, gb
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # Put back the axes NumPy dropped for 1-D operands: b's column axis, then a's row axis.
        g2 = g[..., None] if b.ndim == 1 else g
        if a.ndim == 1:
            g2 = g2[..., None, :]
        ga = gb = None
        if self.needs_grad[0]:
            ga = unbroadcast(product(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.needs_grad[1]:
            gb = unbroadcast(product(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


def matmul(x1: Any, x2: Any) -> Tensor:
    """Matrix product of the last two axes, batch axes broadcast (NumPy's ``matmul``)."""
    return MatMul.apply(x1, x2)


def tensordot(x1: Any, x2: Any, axes: Any = 2) -> Tensor:
    """Sum of products over the last ``axes`` axes of x1 and the first ``axes`` of x2.

    ``axes`` may also be a pair of axis lists ``(axes_of_x1, axes_of_x2)``, contracted in
    order. A composition: transpose and reshape both operands to matrices, then ``matmul``
    (BLAS), then reshape to the free axes of x1 followed by those of x2.
    """
    a = x1 if isinstance(x1, Tensor) else Tensor(x1)
    b = x2 if isinstance(x2, Tensor) else Tensor(x2)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > a.ndim or n > b.ndim:
            raise ValueError(
                f"tensordot: cannot contract {n} axes of shapes {a.shape} and {b.shape}."
            )
        axes_a = list(range(a.ndim - n, a.ndim))
        axes_b = list(range(n))
    else:
        axes_a, axes_b = ([ax] if np.ndim(ax) == 0 else list(ax) for ax in axes)
        axes_a = [int(i) % max(a.ndim, 1) for i in axes_a]
        axes_b = [int(i) % max(b.ndim, 1) for i in axes_b]
    contracted_a = [a.shape[i] for i in axes_a]
    contracted_b = [b.shape[i] for i in axes_b]
    if contracted_a != contracted_b:
        raise ValueError(
            f"tensordot: incompatible shapes {a.shape} and {b.shape}: axes {axes_a} of the "
            f"first have sizes {contracted_a} but axes {axes_b} of the second have sizes "
            f"{contracted_b}."
        )
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    k = int(np.prod(contracted_a))
    rows = int(np.prod([a.shape[i] for i in free_a]))
    cols = int(np.prod([b.shape[i] for i in free_b]))
    left = reshape(transpose(a, free_a + axes_a), (rows, k))
    right = reshape(transpose(b, axes_b + free_b), (k, cols))
    out_shape = tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b)
    return reshape(matmul(left, right), out_shape)
