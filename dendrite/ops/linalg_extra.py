"""More linear algebra with Keras 3's names (batched over leading axes):

Primitives:

- logabsdet: y = ln |det A|, dL/dA = g A^{-T} (``slogdet`` returns it with the plain sign;
  ``logdet = ln|det| + ln(sign)``: NaN for a negative determinant, as PyTorch's logdet);
- pinv: the Moore-Penrose pseudo-inverse P = A^+ (NumPy's, ``rcond`` relative to the
  largest singular value). For A of constant rank (Golub and Pereyra),
  ``dL/dA = -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A)`` with G = dL/dP.

Compositions: solve_triangular(a, b, lower) = solve(tril(a) or triu(a), b) (the other
triangle is never read and gets no gradient); cholesky_inverse(L) = inv(L L^T) (or
inv(U^T U) for ``upper``).

Plain results (no gradient): matrix_rank (int32), eig (complex eigenvalues and
eigenvectors, as PyTorch returns them: dendrite has no complex autodiff), lu_factor
(LAPACK's packed LU with partial pivoting and 0-based int32 pivots, as Keras returns them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add
from dendrite.ops.linalg import matmul
from dendrite.ops.linalg_decomp import inv, solve
from dendrite.ops.linalg_more import tril, triu
from dendrite.ops.movement import swapaxes
from dendrite.ops.unary_more import _float_input


def _number(value: Any) -> float:
    """A Python float from a number or a 0-d tensor (a Python float as it is: not through
    the float32 of dendrite's conversion policy)."""
    return float(value) if isinstance(value, (int, float)) else float(raw(value))


def _t(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def _square(a: np.ndarray, op: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: needs square matrices in the last two axes, got {a.shape}.")


@register("logabsdet")
class LogAbsDet(Function):
    """y = ln |det A| over the last two axes; dL/dA = g A^{-T}."""

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.saved = a
        _, value = np.linalg.slogdet(a)
        return np.asarray(value, dtype=a.dtype)

    def backward(self, g: np.ndarray) -> np.ndarray:
        a = self.saved
        try:
            inverse = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            inverse = np.linalg.pinv(a)
        return (np.asarray(g)[..., None, None] * _t(inverse)).astype(g.dtype, copy=False)


@register("pinv")
class Pinv(Function):
    """P = A^+; the VJP of the module docstring (exact where A's rank is constant)."""

    def forward(self, a: np.ndarray, rcond: Any = None) -> np.ndarray:
        cut = max(a.shape[-2:]) * np.finfo(a.dtype).eps if rcond is None else rcond
        p = np.linalg.pinv(a, rcond=cut).astype(a.dtype, copy=False)
        self.saved = (a, p)
        return p

    def backward(self, g: np.ndarray) -> np.ndarray:
        a, p = self.saved
        pt, gt = _t(p), _t(g)
        m, n = a.shape[-2], a.shape[-1]
        left = np.eye(m, dtype=a.dtype) - a @ p  # (m, m): I - A P
        right = np.eye(n, dtype=a.dtype) - p @ a  # (n, n): I - P A
        grad = -pt @ g @ pt + left @ gt @ p @ pt + pt @ p @ gt @ right
        return grad.astype(g.dtype, copy=False)


def slogdet(x: Any) -> tuple[Tensor, Tensor]:
    """``(sign, ln |det x|)`` of square matrices; the sign is a plain tensor."""
    x = _float_input(x)
    data = raw(x)
    _square(data, "slogdet")
    sign, _ = np.linalg.slogdet(data)
    return Tensor._make(np.asarray(sign, dtype=data.dtype)), LogAbsDet.apply(x)


def logdet(x: Any) -> Tensor:
    """ln det x of square matrices (NaN where the determinant is negative, -inf where it
    is 0)."""
    sign, value = slogdet(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.log(sign.data)
    return add(value, offset)


def pinv(x: Any, rcond: Any = None) -> Tensor:
    """The Moore-Penrose pseudo-inverse over the last two axes; singular values below
    ``rcond`` times the largest are cut (NumPy's default cut-off when None)."""
    x = _float_input(x)
    if np.ndim(raw(x)) < 2:
        raise ValueError(f"pinv: needs matrices, got shape {np.shape(raw(x))}.")
    return Pinv.apply(x, rcond=None if rcond is None else _number(rcond))


def solve_triangular(a: Any, b: Any, lower: bool = False) -> Tensor:
    """x with ``a x = b`` for triangular a (lower or upper: only that triangle is read);
    b may be one vector per matrix (a.ndim - 1 axes)."""
    data = raw(a)
    _square(data, "solve_triangular")
    triangle = tril(a) if lower else triu(a)
    return solve(triangle, b)


def cholesky_inverse(x: Any, upper: bool = False) -> Tensor:
    """The inverse of A from its Cholesky factor x: A = x x^T (or x^T x for ``upper``)."""
    x = _float_input(x)
    _square(raw(x), "cholesky_inverse")
    product = matmul(swapaxes(x, -1, -2), x) if upper else matmul(x, swapaxes(x, -1, -2))
    return inv(product)


def matrix_rank(x: Any, tol: Any = None) -> Tensor:
    """The number of singular values above ``tol`` (NumPy's default when None): int32."""
    data = raw(x)
    tolerance = None if tol is None else _number(tol)
    return Tensor._make(np.asarray(np.linalg.matrix_rank(data, tol=tolerance), np.int32))


def eig(x: Any) -> tuple[Tensor, Tensor]:
    """Eigenvalues and right eigenvectors of square matrices, complex (complex64 for
    float32 input) as PyTorch returns them; plain tensors."""
    data = raw(x)
    _square(data, "eig")
    values, vectors = np.linalg.eig(data)
    kind = np.complex128 if data.dtype == np.float64 else np.complex64
    return Tensor._make(values.astype(kind)), Tensor._make(vectors.astype(kind))


def lu_factor(x: Any) -> tuple[Tensor, Tensor]:
    """LU with partial pivoting, LAPACK's layout: ``(lu, pivots)``, L (unit diagonal, not
    stored) and U packed in one matrix, and the 0-based row swapped with row i at step i
    (int32). Plain tensors."""
    data = raw(x)
    if data.ndim < 2:
        raise ValueError(f"lu_factor: needs matrices, got shape {data.shape}.")
    if data.dtype.kind != "f":
        data = data.astype(np.float32)
    lu = np.array(data, copy=True)
    m, n = lu.shape[-2:]
    batch = lu.reshape((-1, m, n))
    steps = min(m, n)
    pivots = np.zeros((batch.shape[0], steps), dtype=np.int32)
    rows = np.arange(batch.shape[0])
    for k in range(steps):
        p = k + np.argmax(np.abs(batch[:, k:, k]), axis=1)
        pivots[:, k] = p
        swap = batch[rows, p].copy()
        batch[rows, p] = batch[:, k]
        batch[:, k] = swap
        pivot = batch[:, k, k][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = np.where(pivot != 0, batch[:, k + 1 :, k] / np.where(pivot != 0, pivot, 1), 0)
        batch[:, k + 1 :, k] = factors
        batch[:, k + 1 :, k + 1 :] -= factors[:, :, None] * batch[:, k, k + 1 :][:, None, :]
    return (
        Tensor._make(batch.reshape(lu.shape)),
        Tensor._make(pivots.reshape(lu.shape[:-2] + (steps,))),
    )
