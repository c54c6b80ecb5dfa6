"""SimpleRNN, LSTM and GRU against PyTorch's nn.RNN, nn.LSTM and nn.GRU (float32, 1e-5):
outputs, final states and gradients, with the weights converted from Keras' layouts.

Keras -> PyTorch: ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T``; the LSTM
gate order (i, f, c/g, o) is the same; the GRU's is z, r, h in Keras and r, z, n in PyTorch,
whose GRU equals Keras' reset_after=True (input and recurrent biases apart).
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.recurrent import GRU, LSTM, SimpleRNN

torch = pytest.importorskip("torch")

B, T, F, U = 4, 7, 5, 6


def _gru_order(a: np.ndarray, axis: int) -> np.ndarray:
    """Keras z, r, h -> PyTorch r, z, n along ``axis``."""
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _torch_module(layer: object) -> object:
    kernel, recurrent, bias = (w.data for w in layer.weights)
    if isinstance(layer, LSTM):
        module = torch.nn.LSTM(F, U, batch_first=True)
        b_ih, b_hh = bias, np.zeros_like(bias)
    elif isinstance(layer, GRU):
        module = torch.nn.GRU(F, U, batch_first=True)
        kernel, recurrent = _gru_order(kernel, 1), _gru_order(recurrent, 1)
        b_ih, b_hh = _gru_order(bias[0], 0), _gru_order(bias[1], 0)
    else:
        module = torch.nn.RNN(F, U, batch_first=True)
        b_ih, b_hh = bias, np.zeros_like(bias)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(kernel.T))
        module.weight_hh_l0.copy_(torch.tensor(recurrent.T))
        module.bias_ih_l0.copy_(torch.tensor(b_ih))
        module.bias_hh_l0.copy_(torch.tensor(b_hh))
    return module


def _keras_gradients(layer: object, module: object) -> list[np.ndarray]:
    """PyTorch's weight gradients in Keras' layouts."""
    gk = module.weight_ih_l0.grad.numpy().T
    gr = module.weight_hh_l0.grad.numpy().T
    gi, gh = module.bias_ih_l0.grad.numpy(), module.bias_hh_l0.grad.numpy()
    if isinstance(layer, GRU):
        # Swapping the first two gates is its own inverse.
        return [
            _gru_order(gk, 1),
            _gru_order(gr, 1),
            np.stack([_gru_order(gi, 0), _gru_order(gh, 0)]),
        ]
    return [gk, gr, gi]  # bias_hh receives the same gradient as bias_ih


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_outputs_states_and_gradients_match_pytorch(cls: type, go_backwards: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype("float32")
    layer = cls(U, return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer(x)
    for w in layer.weights:  # non-trivial biases
        w.data[...] += rng.normal(0, 0.2, w.shape).astype("float32")
    module = _torch_module(layer)
    n_states = 2 if cls is LSTM else 1
    init = [rng.standard_normal((B, U)).astype("float32") for _ in range(n_states)]

    xt = Tensor(x, requires_grad=True)
    states_in = [Tensor(s, requires_grad=True) for s in init]
    seq, *states = layer(xt, initial_state=states_in)

    tx = torch.tensor(x[:, ::-1].copy() if go_backwards else x, requires_grad=True)
    t_init = [torch.tensor(s[None], requires_grad=True) for s in init]
    t_seq, t_states = module(tx, tuple(t_init) if cls is LSTM else t_init[0])
    t_states = list(t_states) if cls is LSTM else [t_states]

    np.testing.assert_allclose(seq.data, t_seq.detach().numpy(), atol=1e-5)
    for ours, theirs in zip(states, t_states):
        np.testing.assert_allclose(ours.data, theirs[0].detach().numpy(), atol=1e-5)

    g_seq = rng.standard_normal(seq.shape).astype("float32")
    g_states = [rng.standard_normal((B, U)).astype("float32") for _ in states]
    total = (seq * g_seq).sum() + sum((s * g).sum() for s, g in zip(states, g_states))
    total.backward()
    t_total = (t_seq * torch.tensor(g_seq)).sum() + sum(
        (s[0] * torch.tensor(g)).sum() for s, g in zip(t_states, g_states)
    )
    t_total.backward()

    gx = tx.grad.numpy()
    np.testing.assert_allclose(xt.grad, gx[:, ::-1] if go_backwards else gx, atol=1e-5)
    for ours, theirs in zip(states_in, t_init):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy()[0], atol=1e-5)
    for w, expected in zip(layer.weights, _keras_gradients(layer, module)):
        np.testing.assert_allclose(w.grad, expected, atol=1e-5, err_msg=w.path)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_right_padded_mask_matches_packed_sequences(cls: type) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, F)).astype("float32")
    lengths = np.array([7, 3, 5, 1])
    mask = np.arange(T)[None] < lengths[:, None]
    layer = cls(U, return_state=True)
    last, *states = layer(x, mask=mask)
    module = _torch_module(layer)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    _, t_states = module(packed)
    t_h = t_states[0] if cls is LSTM else t_states
    np.testing.assert_allclose(last.data, t_h.detach().numpy()[0], atol=1e-5)
    np.testing.assert_allclose(states[0].data, t_h.detach().numpy()[0], atol=1e-5)
    if cls is LSTM:
        np.testing.assert_allclose(states[1].data, t_states[1].detach().numpy()[0], atol=1e-5)
