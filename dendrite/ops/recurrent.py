"""Fused recurrences: a whole SimpleRNN, LSTM or GRU layer call as one primitive each.

The primitive takes the input sequence x (batch, T, features) and every weight, projects
the inputs of all steps at once (``xw_t = x_t W + b``, batched BLAS), runs the time loop on
raw arrays (every step whole-batch) and back-propagates through time by hand, so a
sequence of T steps is one graph node instead of ~10 T. Keras' gate orders and equations,
with ``a`` the activation, ``s`` the recurrent activation, ``U`` the recurrent kernel and
``*`` the element-wise product:

- SimpleRNN: ``h_t = a(xw_t + h_{t-1} U)``
- LSTM (gates i, f, c, o): ``[z_i, z_f, z_c, z_o] = xw_t + h_{t-1} U``;
  ``c_t = s(z_f) * c_{t-1} + s(z_i) * a(z_c)``; ``h_t = s(z_o) * a(c_t)``
- GRU (gates z, r, h), reset_after=True (Keras 3's default, cuDNN's and PyTorch's form):
  ``[u_z, u_r, u_h] = h_{t-1} U + b_rec``; ``z = s(xw_z + u_z)``, ``r = s(xw_r + u_r)``,
  ``hh = a(xw_h + r * u_h)``; reset_after=False: ``hh = a(xw_h + (r * h_{t-1}) U_h)``;
  then ``h_t = z * h_{t-1} + (1 - z) * hh``

Backward, with ``g_h`` flowing back from step t+1 plus the output gradient at t, the
chain rule per step gives the pre-activation gradients ``dz_t`` (kept for every step), then
``g_{h_{t-1}} = dz_t U^T`` (plus the direct paths: ``z * g`` in the GRU, ``f * g_c`` for
the LSTM cell). The weight gradients are one GEMM each over all steps at the end:
``dL/dU = sum_t h_{t-1}^T dz_t``, ``dL/dW = sum_t x_t^T dz_t``, ``dL/db = sum_t dz_t``, and
``dL/dx_t = dz_t W^T``.

Options shared by the three:

- ``mask`` (batch, T) bool: where False, the step keeps the previous state (Keras masking);
- ``recurrent_mask`` (batch, units): a dropout mask multiplied into ``h_{t-1}`` before
  ``U`` (recurrent dropout; the state itself is not dropped);
- ``reverse``: process t = T-1 ... 0 (``go_backwards``); outputs are in processing order;
- ``activation`` / ``recurrent_activation``: one of ``FUSED_ACTIVATIONS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register

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


def _sigmoid_prescaled_(x: np.ndarray) -> None:
    """``s(2 x)`` in place, for ``x`` that was already halved: ``(1 + tanh(x)) / 2``."""
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def _activate_into(name: str, source: np.ndarray, out: np.ndarray) -> np.ndarray:
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


def _time_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """A private contiguous (T, features, batch) copy of ``a`` (batch, T, features), in
    processing order."""
    view = a.transpose(1, 2, 0)
    return np.array(view[::-1] if reverse else view, order="C", copy=True)


def _batch_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """The contiguous (batch, T, features), input-order copy of a (T, features, batch)."""
    return np.ascontiguousarray((a[::-1] if reverse else a).transpose(2, 0, 1))


def _columns(a: np.ndarray) -> np.ndarray:
    """(batch, n) -> a contiguous (n, batch) copy, and back."""
    return np.ascontiguousarray(a.T)


def _previous(first: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``[s_{-1}, s_0, ..., s_{T-2}]``: the state each step started from."""
    return np.concatenate([first[None], states[:-1]], axis=0)


def _weight_gradient(inputs: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """``sum_t inputs_t dz_t^T`` for (T, n, batch) and (T, m, batch): one (n, m) GEMM.

    Moving the time axis inside copies whole contiguous batch rows (cheap), and the GEMM
    reads the second operand transposed."""
    n, m = inputs.shape[1], dz.shape[1]
    left = inputs.transpose(1, 0, 2).reshape(n, -1)
    right = dz.transpose(1, 0, 2).reshape(m, -1)
    return left @ right.T


class _Recurrence(Function):
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
            keep = _time_major(mask[:, :, None], reverse)  # keep[k]: step k updates the state
        if h0.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: the initial state has batch size {h0.shape[0]} but "
                f"the inputs have batch size {batch}."
            )
        if scale is not None:
            kernel, bias = kernel * scale, bias * scale
        inputs = _time_major(x, reverse)
        xw = np.matmul(_columns(kernel), inputs)  # (T, k units, batch), batched BLAS
        xw += bias[:, None]
        return inputs, xw, keep

    def _input_gradients(
        self, inputs: np.ndarray, kernel: np.ndarray, dz: np.ndarray, need: tuple, reverse: bool
    ) -> tuple:
        """dL/dx (batch, T, features), dL/dW, dL/db from the pre-activation gradients."""
        need_x, need_w, need_b = need
        dx = _batch_major(np.matmul(kernel, dz), reverse) if need_x else None
        dw = _weight_gradient(inputs, dz) if need_w else None
        db = dz.sum(axis=(0, 2)) if need_b else None
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
        h_in = _previous(h0, hs)
        if rmask is not None:
            h_in *= rmask
        return h_in

    @staticmethod
    def _gradient_in(g: np.ndarray) -> np.ndarray:
        """The output gradient (..., batch, T, units) as contiguous (..., T, units, batch)."""
        n = g.ndim
        return np.ascontiguousarray(g.transpose(*range(n - 3), n - 2, n - 1, n - 3))


@register("simple_rnn_sequence")
class SimpleRNNSequence(_Recurrence):
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
        rmask = None if recurrent_mask is None else _columns(recurrent_mask)
        u_t = _columns(recurrent_kernel)
        h0 = _columns(h0)
        # Without a mask the activated pre-activations are the states themselves.
        hs = xs if keep is None else np.empty_like(xs)
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
        return _batch_major(hs, False)

    def backward(self, g: np.ndarray) -> tuple:
        inputs, xs, hs, h0, kernel, recurrent_kernel, keep, rmask = self.saved
        activation, reverse = self.options
        dz = derivative(activation, xs)  # (T, units, batch); becomes dL/dz in place
        g = self._gradient_in(g)
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
        du = _weight_gradient(self._states_in(h0, hs, rmask), dz) if need_u else None
        return dx, dw, db, (_columns(dh) if need_h0 else None), du


@register("lstm_sequence")
class LSTMSequence(_Recurrence):
    """Returns ``(2, batch, T, units)``: the hidden states h and the cell states c."""

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
    ) -> np.ndarray:
        width = recurrent_kernel.shape[1]
        u = width // 4
        fast = recurrent_activation == "sigmoid" and activation == "tanh"
        scale = offset = None
        scaled = recurrent_kernel
        if fast:
            # s(x) = (1 + tanh(x / 2)) / 2: halve the i, f, o rows once, then one tanh pass
            # gives all four gates.
            scale = np.full(width, 0.5, dtype=x.dtype)
            scale[2 * u : 3 * u] = 1
            offset = ((scale != 1).astype(x.dtype) * np.asarray(0.5, x.dtype))[:, None]
            scaled = recurrent_kernel * scale
        # The projected inputs become the gate values i f c o, step by step.
        inputs, gates, keep = self._setup(x, kernel, bias, h0, mask, reverse, scale)
        rmask = None if recurrent_mask is None else _columns(recurrent_mask)
        u_t = _columns(scaled)
        steps, _, batch = gates.shape
        hs = np.empty((steps, u, batch), dtype=gates.dtype)
        cs = np.empty_like(hs)
        act_c = np.empty_like(hs)
        h0, c0 = _columns(h0), _columns(c0)
        h, c = h0, c0
        for k in range(steps):
            z = gates[k]
            z += u_t @ (h * rmask if rmask is not None else h)
            if fast:
                np.tanh(z, out=z)
                z *= scale[:, None]
                z += offset
            else:
                activate_(recurrent_activation, z[: 2 * u])
                activate_(activation, z[2 * u : 3 * u])
                activate_(recurrent_activation, z[3 * u :])
            c_new = np.multiply(z[u : 2 * u], c, out=cs[k])
            c_new += z[:u] * z[2 * u : 3 * u]
            a = _activate_into(activation, c_new, act_c[k])
            h_new = np.multiply(z[3 * u :], a, out=hs[k])
            if keep is not None:
                np.copyto(h_new, h, where=~keep[k])
                np.copyto(c_new, c, where=~keep[k])
            h, c = h_new, c_new
        self.saved = (inputs, gates, hs, cs, act_c, h0, c0, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reverse)
        out = np.empty((2, batch, steps, u), dtype=gates.dtype)
        out[0] = hs.transpose(2, 0, 1)
        out[1] = cs.transpose(2, 0, 1)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        inputs, gates, hs, cs, act_c, h0, c0, kernel, recurrent_kernel, keep, rmask = self.saved
        activation, recurrent_activation, reverse = self.options
        steps, width, batch = gates.shape
        u = width // 4
        i, f, cc, o = (gates[:, n * u : (n + 1) * u] for n in range(4))
        # Everything that does not depend on the incoming gradient, for all steps at once:
        # dL/dz = [dc * cc * s'(i), dc * c_prev * s'(f), dc * i * a'(cc), dh * a(c) * s'(o)].
        coef = np.empty((steps, 4, u, batch), dtype=gates.dtype)
        derivative(recurrent_activation, i, out=coef[:, 0])
        coef[:, 0] *= cc
        derivative(recurrent_activation, f, out=coef[:, 1])
        coef[0, 1] *= c0
        coef[1:, 1] *= cs[:-1]  # c_{t-1}
        derivative(activation, cc, out=coef[:, 2])
        coef[:, 2] *= i
        derivative(recurrent_activation, o, out=coef[:, 3])
        coef[:, 3] *= act_c
        dc_dh = derivative(activation, act_c)  # dc_t / dh_t = o * a'(c_t)
        dc_dh *= o
        g = self._gradient_in(g)  # (2, T, u, batch)
        dz = np.empty_like(coef)
        dh = np.zeros_like(h0)
        dc = np.zeros_like(c0)
        for k in range(steps - 1, -1, -1):
            dh += g[0, k]
            dc += g[1, k]
            dh_new, carry_h = self._split(dh, keep, k)
            dc_new, carry_c = self._split(dc, keep, k)
            dc_new += dh_new * dc_dh[k]
            np.multiply(dc_new, coef[k, :3], out=dz[k, :3])
            np.multiply(dh_new, coef[k, 3], out=dz[k, 3])
            dc = dc_new * f[k]
            dh = recurrent_kernel @ dz[k].reshape(width, batch)
            if rmask is not None:
                dh *= rmask
            if carry_h is not None:
                dh += carry_h
                dc += carry_c
        dz = dz.reshape(steps, width, batch)
        need_x, need_w, need_b, need_h0, need_c0, need_u = self.needs_grad
        dx, dw, db = self._input_gradients(inputs, kernel, dz, (need_x, need_w, need_b), reverse)
        du = _weight_gradient(self._states_in(h0, hs, rmask), dz) if need_u else None
        dh0 = _columns(dh) if need_h0 else None
        return dx, dw, db, dh0, (_columns(dc) if need_c0 else None), du


@register("gru_sequence")
class GRUSequence(_Recurrence):
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
    ) -> np.ndarray:
        width = recurrent_kernel.shape[1]
        u = width // 3
        fast = recurrent_activation == "sigmoid"
        scale = None
        scaled, r_bias = recurrent_kernel, recurrent_bias
        if fast:  # halve the z, r rows once: s(x) = (1 + tanh(x / 2)) / 2
            scale = np.ones(width, dtype=x.dtype)
            scale[: 2 * u] = 0.5
            scaled, r_bias = recurrent_kernel * scale, recurrent_bias * scale
        # The projected inputs become the gate values z r hh, step by step.
        inputs, gates, keep = self._setup(x, kernel, bias, h0, mask, reverse, scale)
        rmask = None if recurrent_mask is None else _columns(recurrent_mask)
        r_bias = r_bias[:, None]
        u_all, u_zr, u_h = (
            _columns(scaled),
            _columns(scaled[:, : 2 * u]),
            _columns(scaled[:, 2 * u :]),
        )
        steps, _, batch = gates.shape
        hs = np.empty((steps, u, batch), dtype=gates.dtype)
        # reset_after: the recurrent candidate term U_h^T h + b; otherwise r * h_in.
        inner = np.empty_like(hs)
        h0 = _columns(h0)
        h = h0
        for k in range(steps):
            zr, hh = gates[k, : 2 * u], gates[k, 2 * u :]
            h_in = h * rmask if rmask is not None else h
            if reset_after:
                hu = u_all @ h_in
                hu += r_bias
                zr += hu[: 2 * u]
                inner[k] = hu[2 * u :]
            else:
                zr += u_zr @ h_in
            if fast:
                _sigmoid_prescaled_(zr)
            else:
                activate_(recurrent_activation, zr)
            if reset_after:
                hh += zr[u:] * inner[k]
            else:
                hh += u_h @ np.multiply(zr[u:], h_in, out=inner[k])
            activate_(activation, hh)
            h_new = np.subtract(h, hh, out=hs[k])  # h_t = hh + z (h_{t-1} - hh)
            h_new *= zr[:u]
            h_new += hh
            if keep is not None:
                np.copyto(h_new, h, where=~keep[k])
            h = h_new
        self.saved = (inputs, gates, hs, inner, h0, kernel, recurrent_kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reset_after, reverse)
        return _batch_major(hs, False)

    def backward(self, g: np.ndarray) -> tuple:
        inputs, gates, hs, inner, h0, kernel, recurrent_kernel, keep, rmask = self.saved
        activation, recurrent_activation, reset_after, reverse = self.options
        steps, width, batch = gates.shape
        u = width // 3
        z, r, hh = gates[:, :u], gates[:, u : 2 * u], gates[:, 2 * u :]
        h_prev = _previous(h0, hs)
        h_in = h_prev * rmask if rmask is not None else h_prev
        scratch = np.empty_like(hs)
        z_coef = np.subtract(h_prev, hh)  # dh_t / dz_pre = (h_{t-1} - hh) s'(z)
        z_coef *= derivative(recurrent_activation, z, out=scratch)
        hh_coef = derivative(activation, hh)  # dh_t / dhh_pre = (1 - z) a'(hh)
        hh_coef *= np.subtract(1, z, out=scratch)
        # dhh_pre / dr_pre: (U_h^T h + b) s'(r) after, or (via r * h_in) h_in s'(r) before.
        r_coef = derivative(recurrent_activation, r)
        r_coef *= inner if reset_after else h_in
        g = self._gradient_in(g)
        dx = np.empty_like(gates)  # dL/dxw, processing order
        # reset_after: dL/d(U^T h_in + b) (3 u); otherwise dL/d(U_zr^T h_in) is dx[:, :2u].
        dhu = np.empty_like(gates) if reset_after else None
        u_zr, u_h = recurrent_kernel[:, : 2 * u], recurrent_kernel[:, 2 * u :]
        dh = np.zeros_like(h0)
        for k in range(steps - 1, -1, -1):
            dh += g[k]
            dh_new, carry = self._split(dh, keep, k)
            dxk = dx[k]
            np.multiply(dh_new, z_coef[k], out=dxk[:u])
            d_hh = np.multiply(dh_new, hh_coef[k], out=dxk[2 * u :])
            if reset_after:
                np.multiply(d_hh, r_coef[k], out=dxk[u : 2 * u])
                dhu[k, : 2 * u] = dxk[: 2 * u]
                np.multiply(d_hh, r[k], out=dhu[k, 2 * u :])
                dh_in = recurrent_kernel @ dhu[k]
            else:
                d_rh = u_h @ d_hh
                np.multiply(d_rh, r_coef[k], out=dxk[u : 2 * u])
                dh_in = u_zr @ dxk[: 2 * u]
                dh_in += d_rh * r[k]
            if rmask is not None:
                dh_in *= rmask
            dh = dh_new * z[k]
            dh += dh_in
            if carry is not None:
                dh += carry
        need_x, need_w, need_b, need_h0, need_u, need_rb = self.needs_grad
        dxs, dw, db = self._input_gradients(inputs, kernel, dx, (need_x, need_w, need_b), reverse)
        du = drb = None
        if need_u:
            if reset_after:
                du = _weight_gradient(h_in, dhu)
            else:
                du = np.empty_like(recurrent_kernel)
                du[:, : 2 * u] = _weight_gradient(h_in, dx[:, : 2 * u])
                du[:, 2 * u :] = _weight_gradient(inner, dx[:, 2 * u :])
        if need_rb:
            drb = dhu.sum(axis=(0, 2)) if reset_after else np.zeros(width, dtype=gates.dtype)
        return dxs, dw, db, (_columns(dh) if need_h0 else None), du, drb


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
) -> Tensor:
    """Hidden and cell states, stacked as (2, batch, T, units), of an LSTM over x."""
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
    )


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
) -> Tensor:
    """All hidden states (batch, T, units) of a GRU over x (batch, T, features)."""
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
    )
