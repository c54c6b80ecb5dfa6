"""Fused recurrences: a whole SimpleRNN, LSTM or GRU sequence as one primitive each.

Each layer computes the input projection ``xw_t = x_t W + b`` for all time steps in one GEMM
(``ops.dense``) and hands it here. The primitive runs the time loop on raw arrays (every
step whole-batch) and back-propagates through time by hand, so a sequence of T steps is
one graph node instead of ~10 T. Keras' gate orders and equations, with ``a`` the
activation, ``s`` the recurrent activation, ``U`` the recurrent kernel and ``*`` the
element-wise product:

- SimpleRNN: ``h_t = a(xw_t + h_{t-1} U)``
- LSTM (gates i, f, c, o): ``[z_i, z_f, z_c, z_o] = xw_t + h_{t-1} U``;
  ``c_t = s(z_f) * c_{t-1} + s(z_i) * a(z_c)``; ``h_t = s(z_o) * a(c_t)``
- GRU (gates z, r, h), reset_after=True (Keras 3's default, cuDNN's and PyTorch's form):
  ``[u_z, u_r, u_h] = h_{t-1} U + b_rec``; ``z = s(xw_z + u_z)``, ``r = s(xw_r + u_r)``,
  ``hh = a(xw_h + r * u_h)``; reset_after=False: ``hh = a(xw_h + (r * h_{t-1}) U_h)``;
  then ``h_t = z * h_{t-1} + (1 - z) * hh``

Backward, with ``g_h`` flowing back from step t+1 plus the output gradient at t, the
chain rule per step gives the pre-activation gradients ``dz`` (stored for every step), then
``g_{h_{t-1}} = dz U^T`` (plus the direct paths: ``z * g`` in the GRU, ``f * g_c`` for the
LSTM cell). The weight gradient is one GEMM over all steps at the end:
``dL/dU = sum_t h_{t-1}^T dz_t``, and ``dL/dxw_t = dz_t``.

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


def derivative(name: str, y: np.ndarray) -> np.ndarray:
    """``f'(x)`` from ``y = f(x)`` (each of ``FUSED_ACTIVATIONS`` allows this)."""
    if name == "tanh":
        return 1 - y * y
    if name == "sigmoid":
        return y * (1 - y)
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "hard_sigmoid":
        return ((y > 0) & (y < 1)).astype(y.dtype) * np.asarray(1 / 6, y.dtype)
    return np.ones_like(y)


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


def _time_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """A private, contiguous (T, batch, ...) copy of ``a`` (batch, T, ...) in processing order
    (contiguous steps make every per-step array operation about twice as fast)."""
    a = a.swapaxes(0, 1)
    return np.array(a[::-1] if reverse else a, order="C", copy=True)


def _batch_major(a: np.ndarray, reverse: bool) -> np.ndarray:
    """The (batch, T, ...) view, in input order, of a (T, batch, ...) processing-order array."""
    return (a[::-1] if reverse else a).swapaxes(0, 1)


def _previous(first: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``[s_{-1}, s_0, ..., s_{T-2}]`` (time-major): the state each step started from."""
    return np.concatenate([first[None], states[:-1]], axis=0)


class _Recurrence(Function):
    """Shared plumbing: checks, time order, masks."""

    def _setup(self, xw: np.ndarray, h0: np.ndarray, mask: Any, reverse: bool) -> tuple:
        batch, steps, _ = xw.shape
        keep = None
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (batch, steps):
                raise ValueError(
                    f"{type(self).__name__}: expected a mask of shape (batch, timesteps) = "
                    f"{(batch, steps)}, but received a mask of shape {mask.shape}."
                )
            # keep[k]: (batch, 1), whether processing step k updates the state.
            keep = _time_major(mask[:, :, None], reverse)
        if h0.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: the initial state has batch size {h0.shape[0]} but "
                f"the inputs have batch size {batch}."
            )
        return _time_major(xw, reverse), keep

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


@register("simple_rnn_sequence")
class SimpleRNNSequence(_Recurrence):
    def forward(
        self,
        xw: np.ndarray,
        h0: np.ndarray,
        kernel: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        reverse: bool = False,
    ) -> np.ndarray:
        xs, keep = self._setup(xw, h0, mask, reverse)
        rmask = recurrent_mask
        # Without a mask the activated pre-activations are the states themselves.
        hs = xs if keep is None else np.empty_like(xs)
        h = h0
        for k in range(xs.shape[0]):
            z = xs[k]
            z += (h * rmask if rmask is not None else h) @ kernel
            activate_(activation, z)
            if keep is not None:
                np.copyto(hs[k], h)
                np.copyto(hs[k], z, where=keep[k])
            h = hs[k]
        self.saved = (xs, hs, h0, kernel, keep, rmask, activation, reverse)
        return np.array(_batch_major(hs, False))

    def backward(self, g: np.ndarray) -> tuple:
        xs, hs, h0, kernel, keep, rmask, activation, reverse = self.saved
        dz = derivative(activation, xs)  # (T, batch, units), becomes dL/dz in place
        g = g.swapaxes(0, 1)
        kernel_t = kernel.T
        dh = np.zeros_like(h0)
        for k in range(xs.shape[0] - 1, -1, -1):
            dh += g[k]
            dh_new, carry = self._split(dh, keep, k)
            dz[k] *= dh_new
            dh = dz[k] @ kernel_t
            if rmask is not None:
                dh *= rmask
            if carry is not None:
                dh += carry
        need_x, need_h0, need_u = self.needs_grad
        du = None
        if need_u:
            units = kernel.shape[0]
            du = self._states_in(h0, hs, rmask).reshape(-1, units).T @ dz.reshape(-1, units)
        return (_batch_major(dz, reverse) if need_x else None), (dh if need_h0 else None), du


@register("lstm_sequence")
class LSTMSequence(_Recurrence):
    """Returns ``(2, batch, T, units)``: the hidden states h and the cell states c."""

    def forward(
        self,
        xw: np.ndarray,
        h0: np.ndarray,
        c0: np.ndarray,
        kernel: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        reverse: bool = False,
    ) -> np.ndarray:
        gates, keep = self._setup(xw, h0, mask, reverse)  # becomes the gate values i f c o
        rmask = recurrent_mask
        steps, batch, width = gates.shape
        u = width // 4
        hs = np.empty((steps, batch, u), dtype=gates.dtype)
        cs = np.empty_like(hs)
        act_c = np.empty_like(hs)
        fast = recurrent_activation == "sigmoid" and activation == "tanh"
        scaled = kernel
        if fast:
            # s(x) = (1 + tanh(x / 2)) / 2: halve the i, f, o columns once, then a single
            # tanh pass gives all four gates.
            scale = np.full(width, 0.5, dtype=gates.dtype)
            scale[2 * u : 3 * u] = 1
            offset = (scale != 1).astype(gates.dtype) * np.asarray(0.5, gates.dtype)
            gates *= scale
            scaled = kernel * scale
        h, c = h0, c0
        for k in range(steps):
            z = gates[k]
            z += (h * rmask if rmask is not None else h) @ scaled
            if fast:
                np.tanh(z, out=z)
                z *= scale
                z += offset
            else:
                activate_(recurrent_activation, z[:, : 2 * u])
                activate_(activation, z[:, 2 * u : 3 * u])
                activate_(recurrent_activation, z[:, 3 * u :])
            c_new = np.multiply(z[:, u : 2 * u], c, out=cs[k])
            c_new += z[:, :u] * z[:, 2 * u : 3 * u]
            a = _activate_into(activation, c_new, act_c[k])
            h_new = np.multiply(z[:, 3 * u :], a, out=hs[k])
            if keep is not None:
                np.copyto(h_new, h, where=~keep[k])
                np.copyto(c_new, c, where=~keep[k])
            h, c = h_new, c_new
        self.saved = (gates, hs, cs, act_c, h0, c0, kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reverse)
        out = np.empty((2, batch, steps, u), dtype=gates.dtype)
        out[0] = hs.swapaxes(0, 1)
        out[1] = cs.swapaxes(0, 1)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        gates, hs, cs, act_c, h0, c0, kernel, keep, rmask = self.saved
        activation, recurrent_activation, reverse = self.options
        steps, batch, width = gates.shape
        u = width // 4
        i, f, cc, o = (gates[..., n * u : (n + 1) * u] for n in range(4))
        # Everything that does not depend on the incoming gradient, for all steps at once:
        # dL/dz = [dc * cc * s'(i), dc * c_prev * s'(f), dc * i * a'(cc), dh * a(c) * s'(o)].
        coef = np.empty((steps, batch, 4, u), dtype=gates.dtype)
        coef[:, :, 0] = cc * derivative(recurrent_activation, i)
        coef[:, :, 1] = _previous(c0, cs) * derivative(recurrent_activation, f)
        coef[:, :, 2] = i * derivative(activation, cc)
        coef[:, :, 3] = act_c * derivative(recurrent_activation, o)
        dc_dh = o * derivative(activation, act_c)  # dc_t / dh_t = o * a'(c_t)
        g = np.ascontiguousarray(g.transpose(0, 2, 1, 3))  # (2, T, batch, u)
        dz = np.empty_like(coef)
        kernel_t = kernel.T
        dh = np.zeros_like(h0)
        dc = np.zeros_like(c0)
        for k in range(steps - 1, -1, -1):
            dh += g[0, k]
            dc += g[1, k]
            dh_new, carry_h = self._split(dh, keep, k)
            dc_new, carry_c = self._split(dc, keep, k)
            dc_new += dh_new * dc_dh[k]
            np.multiply(dc_new[:, None, :], coef[k, :, :3], out=dz[k, :, :3])
            np.multiply(dh_new, coef[k, :, 3], out=dz[k, :, 3])
            dc = dc_new * f[k]
            dh = dz[k].reshape(batch, width) @ kernel_t
            if rmask is not None:
                dh *= rmask
            if carry_h is not None:
                dh += carry_h
                dc += carry_c
        dz = dz.reshape(steps, batch, width)
        need_x, need_h0, need_c0, need_u = self.needs_grad
        du = None
        if need_u:
            du = self._states_in(h0, hs, rmask).reshape(-1, u).T @ dz.reshape(-1, width)
        return (
            _batch_major(dz, reverse) if need_x else None,
            dh if need_h0 else None,
            dc if need_c0 else None,
            du,
        )


@register("gru_sequence")
class GRUSequence(_Recurrence):
    """``recurrent_bias`` (3 units,) is added to ``h U`` (reset_after=True; ignored, and
    given as zeros, when reset_after=False, whose only bias is folded into ``xw``)."""

    def forward(
        self,
        xw: np.ndarray,
        h0: np.ndarray,
        kernel: np.ndarray,
        recurrent_bias: np.ndarray,
        mask: Any = None,
        recurrent_mask: Any = None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        reset_after: bool = True,
        reverse: bool = False,
    ) -> np.ndarray:
        gates, keep = self._setup(xw, h0, mask, reverse)  # becomes the gate values z r hh
        rmask = recurrent_mask
        steps, batch, width = gates.shape
        u = width // 3
        hs = np.empty((steps, batch, u), dtype=gates.dtype)
        # reset_after: the recurrent candidate term h U_h + b; otherwise r * h_in.
        inner = np.empty_like(hs)
        fast = recurrent_activation == "sigmoid"
        scaled, bias = kernel, recurrent_bias
        if fast:  # halve the z, r columns once: s(x) = (1 + tanh(x / 2)) / 2
            scale = np.ones(width, dtype=gates.dtype)
            scale[: 2 * u] = 0.5
            gates[..., : 2 * u] *= 0.5
            scaled, bias = kernel * scale, recurrent_bias * scale
        k_zr, k_h = scaled[:, : 2 * u], scaled[:, 2 * u :]
        h = h0
        for k in range(steps):
            zr, hh = gates[k, :, : 2 * u], gates[k, :, 2 * u :]
            h_in = h * rmask if rmask is not None else h
            if reset_after:
                hu = h_in @ scaled
                hu += bias
                zr += hu[:, : 2 * u]
                inner[k] = hu[:, 2 * u :]
            else:
                zr += h_in @ k_zr
            if fast:
                _sigmoid_prescaled_(zr)
            else:
                activate_(recurrent_activation, zr)
            if reset_after:
                hh += zr[:, u:] * inner[k]
            else:
                hh += np.multiply(zr[:, u:], h_in, out=inner[k]) @ k_h
            activate_(activation, hh)
            h_new = np.subtract(h, hh, out=hs[k])  # h_t = hh + z (h_{t-1} - hh)
            h_new *= zr[:, :u]
            h_new += hh
            if keep is not None:
                np.copyto(h_new, h, where=~keep[k])
            h = h_new
        self.saved = (gates, hs, inner, h0, kernel, keep, rmask)
        self.options = (activation, recurrent_activation, reset_after, reverse)
        return np.array(hs.swapaxes(0, 1))

    def backward(self, g: np.ndarray) -> tuple:
        gates, hs, inner, h0, kernel, keep, rmask = self.saved
        activation, recurrent_activation, reset_after, reverse = self.options
        steps, batch, width = gates.shape
        u = width // 3
        z, r, hh = gates[..., :u], gates[..., u : 2 * u], gates[..., 2 * u :]
        h_prev = _previous(h0, hs)
        h_in = h_prev * rmask if rmask is not None else h_prev
        slope_zr = derivative(recurrent_activation, gates[..., : 2 * u])
        z_coef = (h_prev - hh) * slope_zr[..., :u]  # dh_t / dz_pre
        hh_coef = (1 - z) * derivative(activation, hh)  # dh_t / dhh_pre
        # dhh_pre / dr_pre: (h U_h + b) s'(r) after, or (via r * h_in) h_in s'(r) before.
        r_coef = (inner if reset_after else h_in) * slope_zr[..., u:]
        g = g.swapaxes(0, 1)
        dx = np.empty_like(gates)  # dL/dxw, processing order
        # dL/d(h_in U + b) (3 u) with reset_after, else dL/d(h_in U_zr) = dx[..., :2u].
        dhu = np.empty_like(gates) if reset_after else None
        kernel_t, k_zr_t, k_h_t = kernel.T, kernel[:, : 2 * u].T, kernel[:, 2 * u :].T
        dh = np.zeros_like(h0)
        for k in range(steps - 1, -1, -1):
            dh += g[k]
            dh_new, carry = self._split(dh, keep, k)
            dxk = dx[k]
            np.multiply(dh_new, z_coef[k], out=dxk[:, :u])
            d_hh = np.multiply(dh_new, hh_coef[k], out=dxk[:, 2 * u :])
            if reset_after:
                np.multiply(d_hh, r_coef[k], out=dxk[:, u : 2 * u])
                dhu[k, :, : 2 * u] = dxk[:, : 2 * u]
                np.multiply(d_hh, r[k], out=dhu[k, :, 2 * u :])
                dh_in = dhu[k] @ kernel_t
            else:
                d_rh = d_hh @ k_h_t
                np.multiply(d_rh, r_coef[k], out=dxk[:, u : 2 * u])
                dh_in = dxk[:, : 2 * u] @ k_zr_t
                dh_in += d_rh * r[k]
            if rmask is not None:
                dh_in *= rmask
            dh = dh_new * z[k]
            dh += dh_in
            if carry is not None:
                dh += carry
        need_x, need_h0, need_u, need_b = self.needs_grad
        du = db = None
        if need_u:
            flat_in = h_in.reshape(-1, u)
            if reset_after:
                du = flat_in.T @ dhu.reshape(-1, width)
            else:
                du = np.empty_like(kernel)
                du[:, : 2 * u] = flat_in.T @ dx[..., : 2 * u].reshape(-1, 2 * u)
                du[:, 2 * u :] = inner.reshape(-1, u).T @ dx[..., 2 * u :].reshape(-1, u)
        if need_b:
            db = dhu.sum(axis=(0, 1)) if reset_after else np.zeros(width, dtype=gates.dtype)
        return (_batch_major(dx, reverse) if need_x else None), (dh if need_h0 else None), du, db


def simple_rnn_sequence(
    xw: Any,
    h0: Any,
    recurrent_kernel: Any,
    mask: Any = None,
    recurrent_mask: Any = None,
    activation: str = "tanh",
    reverse: bool = False,
) -> Tensor:
    """All hidden states (batch, T, units) of a SimpleRNN over projected inputs ``xw``."""
    return SimpleRNNSequence.apply(
        xw,
        h0,
        recurrent_kernel,
        mask=mask,
        recurrent_mask=recurrent_mask,
        activation=activation,
        reverse=reverse,
    )


def lstm_sequence(
    xw: Any,
    h0: Any,
    c0: Any,
    recurrent_kernel: Any,
    mask: Any = None,
    recurrent_mask: Any = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    reverse: bool = False,
) -> Tensor:
    """Hidden and cell states, stacked as (2, batch, T, units), of an LSTM over ``xw``."""
    return LSTMSequence.apply(
        xw,
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
    xw: Any,
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
    """All hidden states (batch, T, units) of a GRU over projected inputs ``xw``."""
    return GRUSequence.apply(
        xw,
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
