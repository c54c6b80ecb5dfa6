"""The fused LSTM sequence, gates i, f, c, o (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Tensor, register
from dendrite.ops._products import product
from dendrite.ops.recurrent._common import (
    Recurrence,
    activate_,
    activate_into,
    columns,
    derivative,
    sequence_products,
    states,
    swap_axes,
    whole_sequences,
)


@register("lstm_sequence")
class LSTMSequence(Recurrence):
    """Returns ``(2, batch, T, units)``: the hidden states h and the cell states c; with
    ``sequences=False`` only the last step's, ``(2, batch, units)`` (what a layer without
    ``return_sequences`` needs: no sequence to write, and no zeros to read back).

    With tanh and sigmoid (the defaults) and the C kernels loaded, each step's element-wise
    part runs in one kernel call (csrc/recurrent.c, see its header for the equations);
    otherwise, and as the reference, in NumPy (``_forward_numpy``, ``_backward_numpy``)."""

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        h0: np.ndarray,
        c0: np.ndarray,
        recurrent_kernel: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        reverse: bool = False,
        sequences: bool = True,
    ) -> np.ndarray:
        width = recurrent_kernel.shape[1]
        u = width // 4
        fast = recurrent_activation == "sigmoid" and activation == "tanh"
        self.matmul = sequence_products() if fast else product
        scale = None
        scaled = recurrent_kernel
        if fast:
            # s(x) = (1 + tanh(x / 2)) / 2: halve the i, f, o rows once, then one tanh pass
            # gives all four gates.
            scale = np.full(width, 0.5, dtype=x.dtype)
            scale[2 * u : 3 * u] = 1
            scaled = np.multiply(recurrent_kernel, scale, order="C")  # even if U is not
        # The projected inputs become the gate values i f c o, step by step.
        inputs, gates, keep = self._setup(
            x, kernel, bias, h0, mask, reverse, scale, recurrent_kernel
        )
        rmask = None if recurrent_mask is None else columns(recurrent_mask)
        _, steps, batch = gates.shape
        # h and c (units, T + 1, batch), h0 and c0 in column 0; a(c_t) (units, T, batch).
        hs, cs = (states(columns(s), steps, gates.dtype) for s in (h0, c0))
        act_c = np.empty((u, steps, batch), dtype=gates.dtype)
        self.saved = (inputs, gates, hs, cs, act_c, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reverse, sequences)
        last = None
        if self._kernel_cell() and _native.usable(gates, hs, cs, scaled):
            last = self._forward_kernel(scaled, sequences)
        else:
            self._forward_numpy(columns(scaled), scale)
        if not sequences:
            if last is not None:
                return last
            return np.stack([columns(hs[:, -1]), columns(cs[:, -1])])
        out = np.empty((2, batch, steps, u), dtype=gates.dtype)
        swap_axes(hs, 1, out=out[0])
        swap_axes(cs, 1, out=out[1])
        return out

    def _kernel_cell(self) -> bool:
        """Whether csrc/recurrent.c computes this cell (tanh and sigmoid)."""
        activation, recurrent_activation, *_ = self.options
        return recurrent_activation == "sigmoid" and activation == "tanh"

    def _forward_kernel(self, scaled: np.ndarray, sequences: bool) -> np.ndarray | None:
        """The time loop with csrc/recurrent.c (tanh and sigmoid): the whole sequence in
        one call where ``whole_sequences`` allows (csrc/recurrent_sequence.c), which
        without ``sequences`` also returns the last states as the op does, (2, batch,
        units); else each step's product ``rec = U^T h_{t-1}`` in NumPy, then one kernel
        call for the rest of the step (None returned)."""
        _, gates, hs, cs, act_c, _, _, keep, rmask = self.saved
        width, steps, batch = gates.shape
        keep_f = self._keep_for_kernel(keep, gates.dtype)
        if whole_sequences(gates, rmask):
            last = None if sequences else np.empty((2, batch, width // 4), dtype=gates.dtype)
            _native.kernels.lstm_sequence_forward(
                gates, scaled, hs, cs, act_c, keep_f, rmask, width // 4, batch, steps, last
            )
            return last
        u_t = columns(scaled)
        rec = np.empty((width, batch), dtype=gates.dtype)
        run = _native.kernels.lstm_forward
        for k in range(steps):
            h = hs[:, k]
            product(u_t, h * rmask if rmask is not None else h, out=rec)
            run(gates, rec, hs, cs, act_c, keep_f, width // 4, batch, steps, k)
        return None

    def _forward_numpy(self, u_t: np.ndarray, scale: np.ndarray | None) -> None:
        """The reference time loop (any of ``FUSED_ACTIVATIONS``); ``scale`` holds the halved
        sigmoid rows when the gates' sigmoids are computed as tanh (see ``forward``)."""
        _, gates, hs, cs, act_c, _, _, keep, rmask = self.saved
        activation, recurrent_activation, *_ = self.options
        u = hs.shape[0]
        if scale is not None:
            offset = ((scale != 1).astype(gates.dtype) * np.asarray(0.5, gates.dtype))[:, None]
        h, c = hs[:, 0], cs[:, 0]
        for k in range(gates.shape[1]):
            z = gates[:, k]
            z += product(u_t, h * rmask if rmask is not None else h)
            if scale is not None:
                np.tanh(z, out=z)
                z *= scale[:, None]
                z += offset
            else:
                activate_(recurrent_activation, z[: 2 * u])
                activate_(activation, z[2 * u : 3 * u])
                activate_(recurrent_activation, z[3 * u :])
            c_new = np.multiply(z[u : 2 * u], c, out=cs[:, k + 1])
            c_new += z[:u] * z[2 * u : 3 * u]
            a = activate_into(activation, c_new, act_c[:, k])
            h_new = np.multiply(z[3 * u :], a, out=hs[:, k + 1])
            if keep is not None:
                np.copyto(h_new, h, where=~keep[:, k])
                np.copyto(c_new, c, where=~keep[:, k])
            h, c = h_new, c_new

    def backward(self, g: np.ndarray) -> tuple:
        inputs, gates, hs, cs, act_c, kernel, recurrent_kernel, keep, rmask = self.saved
        _, _, reverse, sequences = self.options
        g, last = self._gradient_in(g, sequences, gates.dtype)
        if self._kernel_cell() and self._kernel_takes(g, gates, hs, cs):
            dz, dh, dc = self._backward_kernel(g, last)
        else:
            dz, dh, dc = self._backward_numpy(g, last)
        need_x, need_w, need_b, need_h0, need_c0, need_u = self.needs_grad
        dx, dw, db = self._input_gradients(inputs, kernel, dz, (need_x, need_w, need_b), reverse)
        du = self._recurrent_gradient(hs, rmask, dz) if need_u else None
        dh0 = columns(dh) if need_h0 else None
        return dx, dw, db, dh0, (columns(dc) if need_c0 else None), du

    def _backward_kernel(
        self, g: np.ndarray | None, last: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dL/dz (4 units, T, batch), dL/dh0, dL/dc0) with csrc/recurrent.c (tanh and
        sigmoid): the whole sequence in one call where ``whole_sequences`` allows, else
        each step's element-wise part in one kernel call, then its product ``U dz_t`` in
        NumPy."""
        _, gates, _, cs, act_c, _, recurrent_kernel, keep, rmask = self.saved
        width, steps, batch = gates.shape
        u = width // 4
        # A transposed (Fortran-order) weight set by a user would cost the per-step product
        # far more than this one copy (none for a C-ordered weight, as initializers give).
        recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        keep_f = self._keep_for_kernel(keep, gates.dtype)
        dz = np.empty_like(gates)
        # What skipped U at masked steps (at first the last states' gradient, if only they
        # have one).
        dh, dc = np.zeros((2, u, batch), dtype=gates.dtype) if last is None else last
        if whole_sequences(gates, rmask, recurrent_kernel):
            _native.kernels.lstm_sequence_backward(
                g, gates, cs, act_c, recurrent_kernel, keep_f, rmask, dh, dc, dz, u, batch, steps
            )
            return dz, dh, dc
        rec = np.zeros_like(dh)  # U dz of the step after, times the dropout mask
        run = _native.kernels.lstm_backward
        for k in range(steps - 1, -1, -1):
            run(g, gates, cs, act_c, rec, keep_f, dh, dc, dz, u, batch, steps, k)
            product(recurrent_kernel, dz[:, k], out=rec)
            if rmask is not None:
                rec *= rmask
        rec += dh
        return dz, rec, dc

    def _backward_numpy(
        self, g: np.ndarray | None, last: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reference of ``_backward_kernel`` (any of ``FUSED_ACTIVATIONS``)."""
        _, gates, _, cs, act_c, _, recurrent_kernel, keep, rmask = self.saved
        activation, recurrent_activation, *_ = self.options
        width, steps, batch = gates.shape
        u = width // 4
        i, f, cc, o = (gates[n * u : (n + 1) * u] for n in range(4))
        # Everything that does not depend on the incoming gradient, for all steps at once:
        # dL/dz = [dc * cc * s'(i), dc * c_prev * s'(f), dc * i * a'(cc), dh * a(c) * s'(o)].
        coef = np.empty((4, u, steps, batch), dtype=gates.dtype)
        derivative(recurrent_activation, i, out=coef[0])
        coef[0] *= cc
        derivative(recurrent_activation, f, out=coef[1])
        coef[1] *= cs[:, :-1]  # c_{t-1}
        derivative(activation, cc, out=coef[2])
        coef[2] *= i
        derivative(recurrent_activation, o, out=coef[3])
        coef[3] *= act_c
        dc_dh = derivative(activation, act_c)  # dc_t / dh_t = o * a'(c_t)
        dc_dh *= o
        dz = np.empty_like(coef)
        dh, dc = np.zeros((2, u, batch), dtype=gates.dtype) if last is None else last
        for k in range(steps - 1, -1, -1):
            if g is not None:
                dh += g[0, :, k]
                dc += g[1, :, k]
            dh_new, carry_h = self._split(dh, keep, k)
            dc_new, carry_c = self._split(dc, keep, k)
            dc_new += dh_new * dc_dh[:, k]
            np.multiply(dc_new, coef[:3, :, k], out=dz[:3, :, k])
            np.multiply(dh_new, coef[3, :, k], out=dz[3, :, k])
            dc = dc_new * f[:, k]
            dh = product(recurrent_kernel, dz[:, :, k].reshape(width, batch))
            if rmask is not None:
                dh *= rmask
            if carry_h is not None:
                dh += carry_h
                dc += carry_c
        return dz.reshape(width, steps, batch), dh, dc


def lstm_sequence(
    x: Any,
    kernel: Any,
    bias: Any,
    h0: Any,
    c0: Any,
    recurrent_kernel: Any,
    mask: Any = None,
    recurrent_mask: Any = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    reverse: bool = False,
    sequences: bool = True,
) -> Tensor:
    """Hidden and cell states, stacked as (2, batch, T, units), of an LSTM over x; with
    ``sequences=False`` the last step's, (2, batch, units)."""
    return LSTMSequence.apply(
        x,
        kernel,
        bias,
        h0,
        c0,
        recurrent_kernel,
        mask=mask,
        recurrent_mask=recurrent_mask,
        activation=activation,
        recurrent_activation=recurrent_activation,
        reverse=reverse,
        sequences=sequences,
    )
