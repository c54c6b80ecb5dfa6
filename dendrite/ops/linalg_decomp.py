"""Matrix functions with Keras 3's names, over the last two axes (leading axes are batches).

Primitives (X^-T is the transposed inverse; products are batched matrix products):

- det:      y = det A,          dL/dA = g y A^-T
- solve:    X = A^-1 B,         dL/dB = A^-T G,  dL/dA = -(A^-T G) X^T
            (a vector b, shape (..., n), is solved as one column)
- cholesky: A = L L^T (L lower), with Phi(M) the lower triangle of M with its diagonal
            halved: S = L^-T Phi(L^T G) L^-1, dL/dA = (S + S^T) / 2  (Murray, 2016)

inv(A) = solve(A, I) (so dL/dA = -A^-T G A^-T). ``cholesky(upper=True)`` is the transpose.

Not differentiable here (plain results; their gradients are defined only for distinct
eigen/singular values): eigh, qr, svd and lstsq.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.movement import swapaxes
from dendrite.ops.unary_more import _float_input


def _transpose(m: np.ndarray) -> np.ndarray:
    return np.swapaxes(m, -1, -2)


def _check_square(a: np.ndarray, op: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: needs square matrices in the last two axes, got {a.shape}.")


@register("det")
class Det(Function):
    """y = det A; dL/dA = g y A^-T."""

    def forward(self, a: np.ndarray) -> np.ndarray:
        _check_square(a, "det")
        out = np.linalg.det(a)
        self.saved = (a, out)
        return np.asarray(out, dtype=a.dtype)

    def backward(self, g: np.ndarray) -> np.ndarray:
        a, y = self.saved
        return (g * y)[..., None, None] * _transpose(np.linalg.inv(a))


@register("solve")
class Solve(Function):
    """X = A^-1 B; dL/dB = A^-T G, dL/dA = -(A^-T G) X^T."""

    def forward(self, a: np.ndarray, b: np.ndarray, vector: bool = False) -> np.ndarray:
        _check_square(a, "solve")
        column = b[..., None] if vector else b
        out = np.linalg.solve(a, column)
        self.saved = (a, out, vector)
        return out[..., 0] if vector else out

    def backward(self, g: np.ndarray) -> tuple:
        a, x, vector = self.saved
        column = g[..., None] if vector else g
        gb = np.linalg.solve(_transpose(a), column)
        ga = -gb @ _transpose(x) if self.needs_grad[0] else None
        return ga, (gb[..., 0] if vector else gb)


@register("cholesky")
class Cholesky(Function):
    """A = L L^T; S = L^-T Phi(L^T G) L^-1, dL/dA = (S + S^T) / 2."""

    def forward(self, a: np.ndarray) -> np.ndarray:
        _check_square(a, "cholesky")
        try:
            out = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise ValueError("cholesky: the matrix is not positive definite.") from None
        self.saved = out
        return out

    def backward(self, g: np.ndarray) -> np.ndarray:
        lower = self.saved
        phi = np.tril(_transpose(lower) @ g)
        phi[..., np.arange(phi.shape[-1]), np.arange(phi.shape[-1])] *= 0.5
        inverse = np.linalg.inv(lower)
        s = _transpose(inverse) @ phi @ inverse
        return 0.5 * (s + _transpose(s))


def det(x: Any) -> Tensor:
    """The determinant of each square matrix in the last two axes."""
    return Det.apply(_float_input(x))


def solve(a: Any, b: Any) -> Tensor:
    """X with ``a X = b`` (a square; b a matrix (..., n, k) or a vector (..., n))."""
    a, b = _float_input(a), _float_input(b)
    nb = np.ndim(raw(b))
    vector = nb == 1 or (nb == np.ndim(raw(a)) - 1)
    return Solve.apply(a, b, vector=vector)


def inv(x: Any) -> Tensor:
    """The inverse of each square matrix in the last two axes (``solve(x, I)``)."""
    x = _float_input(x)
    data = raw(x)
    _check_square(data, "inv")
    eye = np.broadcast_to(np.eye(data.shape[-1], dtype=data.dtype), data.shape)
    return Solve.apply(x, np.ascontiguousarray(eye), vector=False)


def cholesky(x: Any, upper: bool = False) -> Tensor:
    """The Cholesky factor of each symmetric positive definite matrix: L lower with
    ``x = L L^T`` (or its transpose U, ``x = U^T U``, when ``upper``)."""
    lower = Cholesky.apply(_float_input(x))
    return swapaxes(lower, -1, -2) if upper else lower


def eigh(x: Any) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices; plain."""
    values, vectors = np.linalg.eigh(raw(_float_input(x)))
    return Tensor._make(values), Tensor._make(vectors)


def qr(x: Any, mode: str = "reduced") -> tuple[Tensor, Tensor]:
    """Q (orthonormal columns) and R (upper triangular) with x = Q R; mode "reduced" or
    "complete"; plain results."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}.")
    q, r = np.linalg.qr(raw(_float_input(x)), mode=mode)
    return Tensor._make(q), Tensor._make(r)


def svd(x: Any, full_matrices: bool = True, compute_uv: bool = True) -> Any:
    """U, the singular values (descending) and V^T with x = U diag(s) V^T (only s when
    not ``compute_uv``); plain results."""
    data = raw(_float_input(x))
    if not compute_uv:
        return Tensor._make(np.linalg.svd(data, compute_uv=False))
    u, s, vt = np.linalg.svd(data, full_matrices=full_matrices)
    return Tensor._make(u), Tensor._make(s), Tensor._make(vt)


def lstsq(a: Any, b: Any, rcond: float | None = None) -> Tensor:
    """The least-squares solution X of ``a X = b`` (a of shape (m, n)); plain result.
    ``rcond`` cuts singular values below ``rcond * largest`` (NumPy's default when None)."""
    solution = np.linalg.lstsq(raw(_float_input(a)), raw(_float_input(b)), rcond=rcond)[0]
    return Tensor._make(solution)
