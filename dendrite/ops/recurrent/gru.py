"""The fused GRU sequence, gates z, r, h; reset_after=True or False (see the package docstring)."""

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
    sigmoid_prescaled_,
    states,
    weight_gradient,
)


@register("gru_sequence")
class GRUSequence(Recurrence):
    """Returns the hidden states (batch, T, units). ``recurrent_bias`` (3 units,) is added to
    ``h U`` with reset_after=True; with reset_after=False it is ignored (give zeros), as the
    only bias is the input one."""

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        h0: np.ndarray,
        recurrent_kernel: np.ndarray,
        recurrent_bias: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        reset_after: bool = True,
        reverse: bool = False,
        sequences: bool = True,
    ) -> np.ndarray:
        width = recurrent_kernel.shape[1]
        u = width // 3
        if recurrent_bias.shape != (width,):
            raise ValueError(
                f"{type(self).__name__}: the recurrent bias has shape "
                f"{tuple(recurrent_bias.shape)}, expected {(width,)} (the recurrent kernel "
                f"has shape {tuple(recurrent_kernel.shape)})."
            )
        fast = recurrent_activation == "sigmoid"
        scale = None
        scaled, r_bias = recurrent_kernel, recurrent_bias
        if fast:  # halve the z, r rows once: s(x) = (1 + tanh(x / 2)) / 2
            scale = np.ones(width, dtype=x.dtype)
            scale[: 2 * u] = 0.5
            scaled, r_bias = recurrent_kernel * scale, recurrent_bias * scale
        # The projected inputs become the gate values z r hh, step by step.
        inputs, gates, keep = self._setup(
            x, kernel, bias, h0, mask, reverse, scale, recurrent_kernel
        )
        rmask = None if recurrent_mask is None else columns(recurrent_mask)
        _, steps, batch = gates.shape
        hs = states(columns(h0), steps, gates.dtype)  # (units, T + 1, batch), h0 in column 0
        # reset_after: the recurrent candidate term U_h^T h + b; otherwise r * h_in.
        inner = np.empty((u, steps, batch), dtype=gates.dtype)
        self.saved = (inputs, gates, hs, inner, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reset_after, reverse, sequences)
        u_all = columns(scaled)
        r_bias = np.ascontiguousarray(r_bias)
        if self._kernel_cell() and _native.usable(gates, hs, u_all, r_bias):
            self._forward_kernel(u_all, r_bias)
        else:
            self._forward_numpy(scaled, r_bias, fast)
        return batch_major(hs, False, start=1) if sequences else columns(hs[:, -1])

    def _kernel_cell(self) -> bool:
        """Whether csrc/recurrent.c computes this cell (tanh, sigmoid, reset_after)."""
        activation, recurrent_activation, reset_after, *_ = self.options
        return recurrent_activation == "sigmoid" and activation == "tanh" and reset_after

    def _forward_kernel(self, u_all: np.ndarray, r_bias: np.ndarray) -> None:
        """The time loop with csrc/recurrent.c (reset_after, tanh and sigmoid): each step's
        product ``rec = U^T h_{t-1}`` in NumPy, then one kernel call for the rest."""
        _, gates, hs, inner, _, _, keep, rmask = self.saved
        width, steps, batch = gates.shape
        run = _native.kernels.gru_forward
        keep_f = self._keep_for_kernel(keep, gates.dtype)
        rec = np.empty((width, batch), dtype=gates.dtype)
        for k in range(steps):
            h = hs[:, k]
            product(u_all, h * rmask if rmask is not None else h, out=rec)
            run(gates, rec, r_bias, hs, inner, keep_f, width // 3, batch, steps, k)

    def _forward_numpy(self, scaled: np.ndarray, r_bias: np.ndarray, fast: bool) -> None:
        """The reference time loop (any of ``FUSED_ACTIVATIONS``, either reset_after);
        ``scaled``, ``r_bias``: the recurrent kernel and bias, their z and r parts halved
        when ``fast`` (sigmoids computed as tanh, see ``forward``)."""
        _, gates, hs, inner, _, _, keep, rmask = self.saved
        activation, recurrent_activation, reset_after, *_ = self.options
        u = hs.shape[0]
        u_all, u_zr, u_h = (
            columns(scaled),
            columns(scaled[:, : 2 * u]),
            columns(scaled[:, 2 * u :]),
        )
        r_bias = r_bias[:, None]
        h = hs[:, 0]
        for k in range(gates.shape[1]):
            zr, hh = gates[: 2 * u, k], gates[2 * u :, k]
            h_in = h * rmask if rmask is not None else h
            if reset_after:
                hu = product(u_all, h_in)
                hu += r_bias
                zr += hu[: 2 * u]
                inner[:, k] = hu[2 * u :]
            else:
                zr += product(u_zr, h_in)
            if fast:
                sigmoid_prescaled_(zr)
            else:
                activate_(recurrent_activation, zr)
            if reset_after:
                hh += zr[u:] * inner[:, k]
            else:
                hh += product(u_h, np.multiply(zr[u:], h_in, out=inner[:, k]))
            activate_(activation, hh)
            h_new = np.subtract(h, hh, out=hs[:, k + 1])  # h_t = hh + z (h_{t-1} - hh)
            h_new *= zr[:u]
            h_new += hh
            if keep is not None:
                np.copyto(h_new, h, where=~keep[:, k])
            h = h_new

    def backward(self, g: np.ndarray) -> tuple:
        inputs, gates, hs, inner, kernel, recurrent_kernel, keep, rmask = self.saved
        _, _, reset_after, reverse, sequences = self.options
        g, last = self._gradient_in(g, sequences, gates.dtype)
        width = gates.shape[0]
        u = width // 3
        if self._kernel_cell() and self._kernel_takes(g, gates, hs):
            dx, dhu, dh = self._backward_kernel(g, last)
        else:
            dx, dhu, dh = self._backward_numpy(g, last)
        need_x, need_w, need_b, need_h0, need_u, need_rb = self.needs_grad
        dxs, dw, db = self._input_gradients(inputs, kernel, dx, (need_x, need_w, need_b), reverse)
        du = drb = None
        if need_u:
            h_in = self._states_in(hs, rmask)
            if reset_after:
                du = weight_gradient(h_in, dhu)
            else:
                du = np.empty_like(recurrent_kernel)
                du[:, : 2 * u] = weight_gradient(h_in, dx[: 2 * u])
                du[:, 2 * u :] = weight_gradient(inner, dx[2 * u :])
        if need_rb:
            drb = dhu.sum(axis=(1, 2)) if reset_after else np.zeros(width, dtype=gates.dtype)
        return dxs, dw, db, (columns(dh) if need_h0 else None), du, drb

    def _backward_kernel(
        self, g: np.ndarray | None, last: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dL/dxw, dL/d(U^T h_in + b), both (3 units, T, batch), and dL/dh0) with
        csrc/recurrent.c (reset_after, tanh and sigmoid): each step's element-wise part in
        one kernel call, then its product ``U dhu_t`` in NumPy."""
        _, gates, hs, inner, _, recurrent_kernel, keep, rmask = self.saved
        width, steps, batch = gates.shape
        u = width // 3
        run = _native.kernels.gru_backward
        # A transposed (Fortran-order) weight set by a user would cost the per-step product
        # far more than this one copy (none for a C-ordered weight, as initializers give).
        recurrent_kernel = np.ascontiguousarray(recurrent_kernel)
        keep_f = self._keep_for_kernel(keep, gates.dtype)
        dx = np.empty_like(gates)
        dhu = np.empty_like(gates)
        # z * dh_t, and what skipped U (masks); at first the last state's gradient, if only it
        # has one.
        dh = np.zeros((u, batch), dtype=gates.dtype) if last is None else last
        rec = np.zeros_like(dh)  # U dhu of the step after
        for k in range(steps - 1, -1, -1):
            run(g, gates, hs, inner, rec, keep_f, dh, dx, dhu, u, batch, steps, k)
            product(recurrent_kernel, dhu[:, k], out=rec)
            if rmask is not None:
                rec *= rmask
        rec += dh
        return dx, dhu, rec

    def _backward_numpy(self, g: np.ndarray | None, last: np.ndarray | None) -> tuple:
        """The reference of ``_backward_kernel`` (any of ``FUSED_ACTIVATIONS``, either
        reset_after); without reset_after dL/d(U_zr^T h_in) is dx[:2u] and the second
        array is None."""
        _, gates, hs, inner, _, recurrent_kernel, keep, rmask = self.saved
        activation, recurrent_activation, reset_after, *_ = self.options
        width, steps, batch = gates.shape
        u = width // 3
        z, r, hh = gates[:u], gates[u : 2 * u], gates[2 * u :]
        h_prev = hs[:, :-1]
        h_in = self._states_in(hs, rmask)
        scratch = np.empty_like(inner)
        z_coef = np.subtract(h_prev, hh)  # dh_t / dz_pre = (h_{t-1} - hh) s'(z)
        z_coef *= derivative(recurrent_activation, z, out=scratch)
        hh_coef = derivative(activation, hh)  # dh_t / dhh_pre = (1 - z) a'(hh)
        hh_coef *= np.subtract(1, z, out=scratch)
        # dhh_pre / dr_pre: (U_h^T h + b) s'(r) after, or (via r * h_in) h_in s'(r) before.
        r_coef = derivative(recurrent_activation, r)
        r_coef *= inner if reset_after else h_in
        dx = np.empty_like(gates)  # dL/dxw, processing order
        # reset_after: dL/d(U^T h_in + b) (3 u); otherwise dL/d(U_zr^T h_in) is dx[:2u].
        dhu = np.empty_like(gates) if reset_after else None
        u_zr, u_h = recurrent_kernel[:, : 2 * u], recurrent_kernel[:, 2 * u :]
        dh = np.zeros((u, batch), dtype=gates.dtype) if last is None else last
        for k in range(steps - 1, -1, -1):
            if g is not None:
                dh += g[:, k]
            dh_new, carry = self._split(dh, keep, k)
            dxk = dx[:, k]
            np.multiply(dh_new, z_coef[:, k], out=dxk[:u])
            d_hh = np.multiply(dh_new, hh_coef[:, k], out=dxk[2 * u :])
            if reset_after:
                np.multiply(d_hh, r_coef[:, k], out=dxk[u : 2 * u])
                dhu[: 2 * u, k] = dxk[: 2 * u]
                np.multiply(d_hh, r[:, k], out=dhu[2 * u :, k])
                dh_in = product(recurrent_kernel, dhu[:, k])
            else:
                d_rh = product(u_h, d_hh)
                np.multiply(d_rh, r_coef[:, k], out=dxk[u : 2 * u])
                dh_in = product(u_zr, dxk[: 2 * u])
                dh_in += d_rh * r[:, k]
            if rmask is not None:
                dh_in *= rmask
            dh = dh_new * z[:, k]
            dh += dh_in
            if carry is not None:
                dh += carry
        return dx, dhu, dh


def gru_sequence(
    x: Any,
    kernel: Any,
    bias: Any,
    h0: Any,
    recurrent_kernel: Any,
    recurrent_bias: Any,
    mask: Any = None,
    recurrent_mask: Any = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    reset_after: bool = True,
    reverse: bool = False,
    sequences: bool = True,
) -> Tensor:
    """All hidden states (batch, T, units) of a GRU over x (batch, T, features); with
    ``sequences=False`` the last one, (batch, units)."""
    return GRUSequence.apply(
        x,
        kernel,
        bias,
        h0,
        recurrent_kernel,
        recurrent_bias,
        mask=mask,
        recurrent_mask=recurrent_mask,
        activation=activation,
        recurrent_activation=recurrent_activation,
        reset_after=reset_after,
        reverse=reverse,
        sequences=sequences,
    )
