"""The fused SimpleRNN sequence: ``h_t = a(x_t W + b + h_{t-1} U)`` (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Tensor, register
from dendrite.ops.recurrent._common import (
    Recurrence,
    activate_,
    batch_major,
    columns,
    derivative,
    weight_gradient,
)


@register("simple_rnn_sequence")
class SimpleRNNSequence(Recurrence):
    """Returns the hidden states (batch, T, units)."""

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        h0: np.ndarray,
        recurrent_kernel: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        reverse: bool = False,
    ) -> np.ndarray:
        inputs, xs, keep = self._setup(x, kernel, bias, h0, mask, reverse)
        rmask = None if recurrent_mask is None else columns(recurrent_mask)
        u_t = columns(recurrent_kernel)
        h0 = columns(h0)
        # Without a mask the activated pre-activations are the states themselves.
        hs = xs if keep is None else np.empty_like(xs)
        if activation == "tanh" and _native.usable(xs, h0, u_t):
            self._forward_kernel(xs, u_t, hs, h0, keep, rmask)
        else:
            h = h0
            for k in range(xs.shape[0]):
                z = xs[k]
                z += u_t @ (h * rmask if rmask is not None else h)
                activate_(activation, z)
                if keep is not None:
                    np.copyto(hs[k], h)
                    np.copyto(hs[k], z, where=keep[k])
                h = hs[k]
        self.saved = (inputs, xs, hs, h0, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, reverse)
        return batch_major(hs, False)

    @staticmethod
    def _forward_kernel(
        xs: np.ndarray,
        u_t: np.ndarray,
        hs: np.ndarray,
        h0: np.ndarray,
        keep: np.ndarray | None,
        rmask: np.ndarray | None,
    ) -> None:
        """The time loop by csrc/recurrent.c (tanh): each step's product in NumPy, then one
        kernel pass; xs become tanh of the pre-activations in place."""
        steps, units, batch = xs.shape
        run = _native.kernels.rnn_forward
        keep_f, states = (None, None) if keep is None else (keep.astype(xs.dtype), hs)
        rec = np.empty((units, batch), dtype=xs.dtype)
        for k in range(steps):
            h = h0 if k == 0 else hs[k - 1]
            np.matmul(u_t, h * rmask if rmask is not None else h, out=rec)
            run(xs, rec, states, h0, keep_f, units, batch, steps, k)

    def backward(self, g: np.ndarray) -> tuple:
        inputs, xs, hs, h0, kernel, recurrent_kernel, keep, rmask = self.saved
        activation, reverse = self.options
        g = self._gradient_in(g)
        if activation == "tanh" and _native.usable(g, xs, h0):
            dz, dh = self._backward_kernel(g, xs, recurrent_kernel, keep, rmask)
        else:
            dz = derivative(activation, xs)  # (T, units, batch); becomes dL/dz in place
            dh = np.zeros_like(h0)
            for k in range(xs.shape[0] - 1, -1, -1):
                dh += g[k]
                dh_new, carry = self._split(dh, keep, k)
                dz[k] *= dh_new
                dh = recurrent_kernel @ dz[k]
                if rmask is not None:
                    dh *= rmask
                if carry is not None:
                    dh += carry
        need_x, need_w, need_b, need_h0, need_u = self.needs_grad
        dx, dw, db = self._input_gradients(inputs, kernel, dz, (need_x, need_w, need_b), reverse)
        du = weight_gradient(self._states_in(h0, hs, rmask), dz) if need_u else None
        return dx, dw, db, (columns(dh) if need_h0 else None), du

    @staticmethod
    def _backward_kernel(
        g: np.ndarray,
        ys: np.ndarray,
        recurrent_kernel: np.ndarray,
        keep: np.ndarray | None,
        rmask: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dz (T, units, batch), dL/dh0) by csrc/recurrent.c (tanh, from the outputs
        ``ys``): the step's product in NumPy, ``dz = (1 - y^2) dh`` in one kernel call."""
        steps, units, batch = ys.shape
        run = _native.kernels.rnn_backward
        keep_f = None if keep is None else keep.astype(ys.dtype)
        dz = np.empty_like(ys)
        dh = np.zeros((units, batch), dtype=ys.dtype)  # what skipped U (masks)
        rec = np.zeros_like(dh)  # U dz of the step after
        for k in range(steps - 1, -1, -1):
            run(g, ys, rec, keep_f, dh, dz, units, batch, steps, k)
            np.matmul(recurrent_kernel, dz[k], out=rec)
            if rmask is not None:
                rec *= rmask
        rec += dh
        return dz, rec


def simple_rnn_sequence(
    x: Any,
    kernel: Any,
    bias: Any,
    h0: Any,
    recurrent_kernel: Any,
    mask: Any = None,
    recurrent_mask: Any = None,
    activation: str = "tanh",
    reverse: bool = False,
) -> Tensor:
    """All hidden states (batch, T, units) of a SimpleRNN over x (batch, T, features)."""
    return SimpleRNNSequence.apply(
        x,
        kernel,
        bias,
        h0,
        recurrent_kernel,
        mask=mask,
        recurrent_mask=recurrent_mask,
        activation=activation,
        reverse=reverse,
    )
