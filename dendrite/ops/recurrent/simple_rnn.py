"""The fused SimpleRNN sequence: ``h_t = a(x_t W + b + h_{t-1} U)`` (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Tensor, register
from dendrite.ops._products import product
from dendrite.ops.recurrent._common import (
    Recurrence,
    activate_,
    batch_major,
    columns,
    derivative,
    states,
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
        sequences: bool = True,
    ) -> np.ndarray:
        inputs, xs, keep = self._setup(
            x, kernel, bias, h0, mask, reverse, recurrent_kernel=recurrent_kernel
        )
        rmask = None if recurrent_mask is None else columns(recurrent_mask)
        u_t = columns(recurrent_kernel)
        # The pre-activations xs (units, T, batch) become a(z_t) in place, which the
        # backward pass needs; the states (units, T + 1, batch), h0 in column 0, are the
        # same values except at masked steps.
        hs = states(columns(h0), xs.shape[1], xs.dtype)
        self.saved = (inputs, xs, hs, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, reverse, sequences)
        if activation == "tanh" and _native.usable(xs, hs, u_t):
            self._forward_kernel(u_t)
        else:
            for k in range(xs.shape[1]):
                h, z = hs[:, k], xs[:, k]
                z += product(u_t, h * rmask if rmask is not None else h)
                activate_(activation, z)
                if keep is None:
                    hs[:, k + 1] = z
                else:
                    hs[:, k + 1] = h
                    np.copyto(hs[:, k + 1], z, where=keep[:, k])
        return batch_major(hs, False, start=1) if sequences else columns(hs[:, -1])

    def _forward_kernel(self, u_t: np.ndarray) -> None:
        """The time loop with csrc/recurrent.c (tanh): each step's product
        ``rec = U^T h_{t-1}`` in NumPy, then one kernel call for the rest."""
        _, xs, hs, _, _, keep, rmask = self.saved
        units, steps, batch = xs.shape
        run = _native.kernels.rnn_forward
        keep_f = self._keep_for_kernel(keep, xs.dtype)
        rec = np.empty((units, batch), dtype=xs.dtype)
        for k in range(steps):
            h = hs[:, k]
            product(u_t, h * rmask if rmask is not None else h, out=rec)
            run(xs, rec, hs, keep_f, units, batch, steps, k)

    def backward(self, g: np.ndarray) -> tuple:
        inputs, xs, hs, kernel, recurrent_kernel, keep, rmask = self.saved
        activation, reverse, sequences = self.options
        g, last = self._gradient_in(g, sequences, xs.dtype)
        if activation == "tanh" and self._kernel_takes(g, xs):
            dz, dh = self._backward_kernel(g, last)
        else:
            dz = derivative(activation, xs)  # (units, T, batch); becomes dL/dz in place
            dh = np.zeros((xs.shape[0], xs.shape[2]), dtype=xs.dtype) if last is None else last
            for k in range(xs.shape[1] - 1, -1, -1):
                if g is not None:
                    dh += g[:, k]
                dh_new, carry = self._split(dh, keep, k)
                dz[:, k] *= dh_new
                dh = product(recurrent_kernel, dz[:, k])
                if rmask is not None:
                    dh *= rmask
                if carry is not None:
                    dh += carry
        need_x, need_w, need_b, need_h0, need_u = self.needs_grad
        dx, dw, db = self._input_gradients(inputs, kernel, dz, (need_x, need_w, need_b), reverse)
        du = weight_gradient(self._states_in(hs, rmask), dz) if need_u else None
        return dx, dw, db, (columns(dh) if need_h0 else None), du

    def _backward_kernel(
        self, g: np.ndarray | None, last: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dz (units, T, batch), dL/dh0) with csrc/recurrent.c (tanh, from the outputs
        ``xs``): each step's ``dz = (1 - y^2) dh`` in one kernel call, then its product
        ``U dz_t`` in NumPy."""
        _, ys, _, _, recurrent_kernel, keep, rmask = self.saved
        units, steps, batch = ys.shape
        run = _native.kernels.rnn_backward
        # A transposed (Fortran-order) weight set by a user would cost the per-step product
        # far more than this one copy (none for a C-ordered weight, as initializers give).
        recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        keep_f = self._keep_for_kernel(keep, ys.dtype)
        dz = np.empty_like(ys)
        # What skipped U at masked steps (at first the last state's gradient, if only it has
        # one).
        dh = np.zeros((units, batch), dtype=ys.dtype) if last is None else last
        rec = np.zeros_like(dh)  # U dz of the step after, times the dropout mask
        for k in range(steps - 1, -1, -1):
            run(g, ys, rec, keep_f, dh, dz, units, batch, steps, k)
            product(recurrent_kernel, dz[:, k], out=rec)
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
    sequences: bool = True,
) -> Tensor:
    """All hidden states (batch, T, units) of a SimpleRNN over x (batch, T, features); with
    ``sequences=False`` the last one, (batch, units)."""
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
        sequences=sequences,
    )
