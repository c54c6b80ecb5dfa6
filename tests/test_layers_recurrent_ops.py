"""The fused primitives of dendrite.ops.recurrent (simple_rnn_sequence, lstm_sequence,
gru_sequence): float64 gradchecks over every input, with masks, recurrent dropout masks,
reversed processing and every fused activation, and their argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.ops.recurrent import (
    FUSED_ACTIVATIONS,
    gru_sequence,
    lstm_sequence,
    simple_rnn_sequence,
)
from dendrite.testing.gradcheck import gradcheck

B, T, F, U = 3, 4, 2, 3
RNG = np.random.default_rng(0)
X = RNG.standard_normal((B, T, F))
W = RNG.standard_normal((F, 4 * U))
BIAS = RNG.standard_normal(4 * U)
H0, C0 = RNG.standard_normal((B, U)), RNG.standard_normal((B, U))
RK = RNG.standard_normal((U, 4 * U)) * 0.5
RB = RNG.standard_normal(3 * U)
MASK = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 0, 1, 0]], dtype=bool)
DROP = (RNG.random((B, U)) > 0.3) * 1.4

VARIANTS = [
    pytest.param({}, id="plain"),
    pytest.param({"mask": MASK}, id="mask"),
    pytest.param({"recurrent_mask": DROP, "reverse": True}, id="dropout-reverse"),
    pytest.param({"mask": MASK, "recurrent_mask": DROP, "reverse": True}, id="all"),
]
ACTIVATIONS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("linear", "tanh")]


@pytest.mark.parametrize("acts", ACTIVATIONS, ids="-".join)
@pytest.mark.parametrize("options", VARIANTS)
def test_lstm_sequence_gradcheck(options: dict, acts: tuple) -> None:
    def fn(*args: object) -> object:
        return lstm_sequence(*args, activation=acts[0], recurrent_activation=acts[1], **options)

    gradcheck(fn, X, W, BIAS, H0, C0, RK, name="lstm_sequence")


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("acts", ACTIVATIONS, ids="-".join)
@pytest.mark.parametrize("options", VARIANTS)
def test_gru_sequence_gradcheck(options: dict, acts: tuple, reset_after: bool) -> None:
    def fn(x: object, w: object, b: object, h: object, rk: object, rb: object) -> object:
        return gru_sequence(
            x,
            w[:, : 3 * U],
            b[: 3 * U],
            h,
            rk[:, : 3 * U],
            rb,
            activation=acts[0],
            recurrent_activation=acts[1],
            reset_after=reset_after,
            **options,
        )

    gradcheck(fn, X, W, BIAS, H0, RK, RB, name="gru_sequence")


@pytest.mark.parametrize("activation", sorted(FUSED_ACTIVATIONS))
@pytest.mark.parametrize("options", VARIANTS)
def test_simple_rnn_sequence_gradcheck(options: dict, activation: str) -> None:
    def fn(x: object, w: object, b: object, h: object, rk: object) -> object:
        return simple_rnn_sequence(
            x, w[:, :U], b[:U], h, rk[:, :U], activation=activation, **options
        )

    gradcheck(fn, X, W, BIAS, H0, RK, name="simple_rnn_sequence")


def test_lstm_sequence_values_by_hand() -> None:
    """One step of the equations, written out, against the primitive's first step."""
    out = lstm_sequence(X, W, BIAS, H0, C0, RK).data

    def s(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    z = X[:, 0] @ W + BIAS + H0 @ RK
    i, f, c, o = np.split(z, 4, axis=-1)
    c1 = s(f) * C0 + s(i) * np.tanh(c)
    np.testing.assert_allclose(out[1, :, 0], c1, rtol=1e-12)
    np.testing.assert_allclose(out[0, :, 0], s(o) * np.tanh(c1), rtol=1e-12)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"LSTMSequence.*mask of shape.*\(3, 4\).*\(3, 5\)"):
        lstm_sequence(X, W, BIAS, H0, C0, RK, mask=np.ones((3, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"GRUSequence.*batch size 2.*batch size 3"):
        gru_sequence(X, W[:, : 3 * U], BIAS[: 3 * U], H0[:2], RK[:, : 3 * U], RB)
    with pytest.raises(ValueError, match=r"SimpleRNNSequence.*2 features.*expects 5"):
        simple_rnn_sequence(X, np.ones((5, U)), BIAS[:U], H0, RK[:, :U])
    with pytest.raises(ValueError, match="No fused recurrence for activation 'elu'"):
        simple_rnn_sequence(X, W[:, :U], BIAS[:U], H0, RK[:, :U], activation="elu")


def test_weight_shape_errors_name_the_op_and_the_shapes() -> None:
    """Wrong weight shapes are refused before any product, naming what was expected."""
    with pytest.raises(ValueError, match=r"LSTMSequence.*recurrent kernel of shape \(2, 12\)"):
        lstm_sequence(X, W, BIAS, H0, C0, RK[:2])
    with pytest.raises(ValueError, match=r"LSTMSequence.*bias of shape \(5,\)"):
        lstm_sequence(X, W, BIAS[:5], H0, C0, RK)
    with pytest.raises(ValueError, match=r"GRUSequence.*recurrent bias has shape \(4,\)"):
        gru_sequence(X, W[:, : 3 * U], BIAS[: 3 * U], H0, RK[:, : 3 * U], RB[:4])
    with pytest.raises(ValueError, match=r"SimpleRNNSequence.*initial state has 2 units"):
        simple_rnn_sequence(X, W[:, :U], BIAS[:U], H0[:, :2], RK[:, :U])


def _cell_call(cell: str, **options: object):
    """The cell's primitive over the module's inputs, as a function of its tensors."""
    if cell == "lstm":
        return (lambda *a: lstm_sequence(*a, **options)), (X, W, BIAS, H0, C0, RK)
    if cell == "gru":
        return (
            lambda x, w, b, h, rk, rb: gru_sequence(
                x, w[:, : 3 * U], b[: 3 * U], h, rk[:, : 3 * U], rb, **options
            )
        ), (X, W, BIAS, H0, RK, RB)
    return (
        lambda x, w, b, h, rk: simple_rnn_sequence(x, w[:, :U], b[:U], h, rk[:, :U], **options)
    ), (X, W, BIAS, H0, RK)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("options", VARIANTS)
def test_last_states_only_gradcheck(cell: str, options: dict) -> None:
    fn, inputs = _cell_call(cell, sequences=False, **options)
    gradcheck(fn, *inputs, name=f"{cell} sequences=False")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("options", VARIANTS)
def test_last_states_only_equal_the_sequences_last_step(cell: str, options: dict) -> None:
    """``sequences=False`` gives the last step of the full output, and the same gradients
    as the full output with a gradient on its last step only."""
    from dendrite.core import Tensor

    results = []
    for sequences in (True, False):
        fn, inputs = _cell_call(cell, sequences=sequences, **options)
        tensors = [Tensor(a, requires_grad=True) for a in inputs]
        out = fn(*tensors)
        last = out.data[..., -1, :] if sequences else out.data
        upstream = np.random.default_rng(3).standard_normal(last.shape)
        if sequences:
            full = np.zeros(out.shape)
            full[..., -1, :] = upstream
            out.backward(full)
        else:
            assert out.shape == last.shape == ((2, B, U) if cell == "lstm" else (B, U))
            out.backward(upstream)
        results.append([last] + [t.grad for t in tensors])
    for with_sequences, last_only in zip(*results):
        np.testing.assert_allclose(last_only, with_sequences, rtol=1e-12, atol=1e-12)
