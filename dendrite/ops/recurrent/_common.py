"""Shared by the fused recurrences: the activations they run (and their derivatives from
their outputs), the feature-major layout, and the ``Recurrence`` base (checks, the input
projection of every step, masks)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function

FUSED_ACTIVATIONS = frozenset({"tanh", "sigmoid", "relu", "linear", "hard_sigmoid"})


def activate_(name: str, x: np.ndarray) -> None:
    """Apply the activation ``name`` to ``x`` in place (x may be a view)."""
    if name == "tanh":
        np.tanh(x, out=x)
    elif name == "sigmoid":
        # s(x) = (1 + tanh(x / 2)) / 2: no overflow warnings and no temporaries.
        x *= 0.5
        np.tanh(x, out=x)
        x *= 0.5
        x += 0.5
    elif name == "relu":
        np.maximum(x, 0, out=x)
    elif name == "hard_sigmoid":
        x *= 1 / 6
        x += 0.5
        np.clip(x, 0, 1, out=x)
    elif name != "linear":
        raise ValueError(f"No fused recurrence for activation {name!r}.")


def derivative(name: str, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``f'(x)`` from ``y = f(x)`` (each of ``FUSED_ACTIVATIONS`` allows this), written into
    ``out`` when given (no temporaries: these run over whole sequences)."""
    out = np.empty_like(y) if out is None else out
    if name == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    elif name == "sigmoid":
        np.subtract(1, y, out=out)
        out *= y
    elif name == "relu":
        np.greater(y, 0, out=out)
    elif name == "hard_sigmoid":
        np.greater(y, 0, out=out)
        out *= y < 1
        out *= 1 / 6
    else:
        out[...] = 1
    return out


def sigmoid_prescaled_(x: np.ndarray) -> None:
    """``s(2 x)`` in place, for ``x`` that was already halved: ``(1 + tanh(x)) / 2``."""
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def activate_into(name: str, source: np.ndarray, out: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(source, out=out)
    out[...] = source
    activate_(name, out)
    return out


# --- layout -------------------------------------------------------------------------------
# Inside the primitives every per-step array is feature-major, (features, batch): the step
# is ``z = U^T h + xw`` with h of shape (units, batch), so each gate is a contiguous
# (units, batch) block of z. NumPy is an order of magnitude slower on strided gate slices
# such as z[:, u:2u] of a (batch, 4u) array, and these element-wise passes are most of the
# work besides the products. Sequences are (T, features, batch), in processing order.


def time_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """A private contiguous (T, features, batch) copy of ``a`` (batch, T, features), in
    processing order."""
    view = a.transpose(1, 2, 0)
    return np.array(view[::-1] if reverse else view, order="C", copy=True)


def batch_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """The contiguous (batch, T, features), input-order copy of a (T, features, batch)."""
    return np.ascontiguousarray((a[::-1] if reverse else a).transpose(2, 0, 1))


def columns(a: np.ndarray) -> np.ndarray:
    """(batch, n) -> a contiguous (n, batch) copy, and back."""
    return np.ascontiguousarray(a.T)


def previous(first: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``[s_{-1}, s_0, ..., s_{T-2}]``: the state each step started from."""
    return np.concatenate([first[None], states[:-1]], axis=0)


def weight_gradient(inputs: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """``sum_t inputs_t dz_t^T`` for (T, n, batch) and (T, m, batch): one (n, m) GEMM.

    Moving the time axis inside copies whole contiguous batch rows (cheap), and the GEMM
    reads the second operand transposed."""
    n, m = inputs.shape[1], dz.shape[1]
    left = inputs.transpose(1, 0, 2).reshape(n, -1)
    right = dz.transpose(1, 0, 2).reshape(m, -1)
    return left @ right.T


class Recurrence(Function):
    """Shared plumbing: checks, the input projection, masks."""

    def _setup(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        h0: np.ndarray,
        mask: Any,
        reverse: bool,
        scale: Any = None,
    ) -> tuple:
        """(inputs, xw, keep): the (T, features, batch) inputs, their projections
        ``scale * (W^T x_t + b)`` (T, k units, batch), and the (T, 1, batch) step mask."""
        batch, steps, features = x.shape
        if kernel.shape[0] != features:
            raise ValueError(
                f"{type(self).__name__}: the inputs have {features} features (shape "
                f"{x.shape}) but the kernel expects {kernel.shape[0]} (shape {kernel.shape})."
            )
        keep = None
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (batch, steps):
                raise ValueError(
                    f"{type(self).__name__}: expected a mask of shape (batch, timesteps) = "
                    f"{(batch, steps)}, but received a mask of shape {mask.shape}."
                )
            keep = time_major(mask[:, :, None], reverse)  # keep[k]: step k updates the state
        if h0.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: the initial state has batch size {h0.shape[0]} but "
                f"the inputs have batch size {batch}."
            )
        if scale is not None:
            kernel, bias = kernel * scale, bias * scale
        inputs = time_major(x, reverse)
        xw = np.matmul(columns(kernel), inputs)  # (T, k units, batch), batched BLAS
        xw += bias[:, None]
        return inputs, xw, keep

    def _input_gradients(
        self, inputs: np.ndarray, kernel: np.ndarray, dz: np.ndarray, need: tuple, reverse: bool
    ) -> tuple:
        """dL/dx (batch, T, features), dL/dW, dL/db from the pre-activation gradients."""
        need_x, need_w, need_b = need
        dx = batch_major(np.matmul(kernel, dz), reverse) if need_x else None
        dw = weight_gradient(inputs, dz) if need_w else None
        # Over time first: whole contiguous (rows, batch) blocks, 6x faster than axis=(0, 2).
        db = dz.sum(axis=0).sum(axis=1) if need_b else None
        return dx, dw, db

    @staticmethod
    def _split(grad: np.ndarray, keep: Any, k: int) -> tuple:
        """Masked steps pass the state gradient through unchanged (the carry)."""
        if keep is None:
            return grad, None
        new = grad * keep[k]
        return new, grad - new

    @staticmethod
    def _states_in(h0: np.ndarray, hs: np.ndarray, rmask: Any) -> np.ndarray:
        """The states that met the recurrent kernel: ``h_{t-1}`` (times the dropout mask)."""
        h_in = previous(h0, hs)
        if rmask is not None:
            h_in *= rmask
        return h_in

    @staticmethod
    def _gradient_in(g: np.ndarray) -> np.ndarray:
        """The output gradient (..., batch, T, units) as contiguous (..., T, units, batch)."""
        n = g.ndim
        return np.ascontiguousarray(g.transpose(*range(n - 3), n - 2, n - 1, n - 3))
