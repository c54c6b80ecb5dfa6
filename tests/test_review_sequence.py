"""Review of the whole-sequence LSTM kernels (csrc/recurrent_sequence.c) and the small
products (csrc/small_product.c): edge shapes, the per-sample bit claims, paths that the
change should not have altered, and the regressions found (zero time steps; a
Fortran-ordered recurrent kernel leaving the kernels for the NumPy reference loop)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

import dendrite
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops.recurrent import _common, gru_sequence, lstm_sequence, simple_rnn_sequence
from dendrite.testing import assert_same_on_any_kernel_threads, record_kernel_calls

pytestmark = pytest.mark.needs_sequence_kernels

DTYPES = [np.float32, np.float64]


def _arrays(dtype, batch, steps=6, features=5, units=7, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [
        (batch, steps, features),
        (features, 4 * units),
        (4 * units,),
        (batch, units),
        (batch, units),
        (units, 4 * units),
    ]
    return [(rng.normal(size=s) * 0.5).astype(dtype) for s in shapes]


def _run(arrays, options, upstream, op=lstm_sequence):
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = op(*tensors, **options)
    out.backward(upstream.astype(out.data.dtype))
    return [out.data] + [t.grad for t in tensors]


# --- bugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sequences", [False, True])
def test_lstm_zero_time_steps(monkeypatch, sequences):
    """A sequence of no steps (the per-step path, GRU and SimpleRNN accept it) must not hit
    check_sizes' ``steps < 1`` in recurrent_sequence.c: ValueError 'bad sizes'."""
    arrays = _arrays(np.float32, 3, steps=0)
    up = np.ones((2, 3, 0, 7) if sequences else (2, 3, 7), np.float32)
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", False)
    expected = _run(arrays, {"sequences": sequences}, up)
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", True)
    got = _run(arrays, {"sequences": sequences}, up)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_keras_lstm_zero_length_sequence():
    model = dendrite.keras.Sequential(
        [dendrite.keras.Input(shape=(None, 4)), dendrite.keras.layers.LSTM(3)]
    )
    assert model.predict(np.zeros((2, 0, 4), np.float32), verbose=0).shape == (2, 3)


def test_fortran_recurrent_kernel_keeps_the_sequence_kernel(monkeypatch):
    """``recurrent_kernel * scale`` keeps a Fortran-ordered weight's order, so
    ``_native.usable(..., scaled)`` fails and the forward falls to ``_forward_numpy``
    (before the change ``columns(scaled)`` was checked and the kernels ran)."""
    arrays = _arrays(np.float32, 4)
    arrays[5] = np.asfortranarray(arrays[5])
    calls = record_kernel_calls(monkeypatch)
    _run(arrays, {}, np.ones((2, 4, 6, 7)))
    assert "lstm_sequence_forward" in calls


# --- the small products ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_edge_shapes_plain_and_transposed(dtype):
    rng = np.random.default_rng(1)
    for rows, depth, cols in itertools.product(
        [0, 1, 5, 7, 13, 25], [0, 1, 257], [0, 1, 7, 9, 17, 31, 32, 33, 65]
    ):
        a = rng.integers(-3, 4, size=(rows, depth)).astype(dtype)
        x = rng.integers(-3, 4, size=(depth, cols)).astype(dtype)
        out = np.full((rows, cols), np.nan, dtype)
        _native.kernels.small_product(a, x, out, rows, depth, cols)
        np.testing.assert_array_equal(out, a @ x)  # small integers: exact sums
        out_t = np.full((rows, cols), np.nan, dtype)
        _native.kernels.small_product(np.ascontiguousarray(a.T), x, out_t, rows, depth, cols, 1)
        np.testing.assert_array_equal(out_t, out)


def test_small_product_from_several_python_threads():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 200)).astype(np.float32)
    x = rng.normal(size=(200, 50)).astype(np.float32)
    expected = np.empty((300, 50), np.float32)
    _native.kernels.small_product(a, x, expected, 300, 200, 50)
    arrays = _arrays(np.float32, 40, steps=8)
    up = np.random.default_rng(3).normal(size=(2, 40, 8, 7))
    lstm_expected = _run(arrays, {}, up)
    failures = []

    def work():
        for _ in range(10):
            out = np.empty_like(expected)
            _native.kernels.small_product(a, x, out, 300, 200, 50)
            failures.append(not np.array_equal(out, expected))
            got = _run(arrays, {}, up)
            failures.append(not all(np.array_equal(p, q) for p, q in zip(got, lstm_expected)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(failures) == 80 and not any(failures)


# --- whole sequences -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_sample_has_its_own_bits(dtype):
    """Each of 19 samples (two chunks of 8 and a rest of 3), with a mask, recurrent
    dropout and go_backwards, gets the same states and per-sample gradients alone."""
    batch, units = 19, 7
    rng = np.random.default_rng(4)
    arrays = _arrays(dtype, batch, seed=4)
    mask = rng.random((batch, 6)) > 0.3
    rmask = ((rng.random((batch, units)) > 0.3) / 0.7).astype(dtype)
    up = rng.normal(size=(2, batch, 6, units))
    whole = _run(arrays, dict(mask=mask, recurrent_mask=rmask, reverse=True), up)
    for i in range(batch):
        one = [a[i : i + 1].copy() if k in (0, 3, 4) else a for k, a in enumerate(arrays)]
        options = dict(mask=mask[i : i + 1], recurrent_mask=rmask[i : i + 1], reverse=True)
        alone = _run(one, options, up[:, i : i + 1])
        np.testing.assert_array_equal(whole[0][:, i : i + 1], alone[0])
        for k in (1, 4, 5):  # dL/dx, dL/dh0, dL/dc0
            np.testing.assert_array_equal(whole[k][i : i + 1], alone[k])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, units", [(17, 1), (33, 9), (9, 13)])
def test_same_bits_on_any_threads_odd_shapes(dtype, batch, units):
    arrays = _arrays(dtype, batch, steps=3, units=units)
    options = {"mask": np.random.default_rng(5).random((batch, 3)) > 0.4}
    up = np.random.default_rng(6).normal(size=(2, batch, 3, units))
    assert_same_on_any_kernel_threads(lambda: _run(arrays, options, up))


@pytest.mark.parametrize(
    "x_dtype, w_dtype, fortran",
    [(np.float64, np.float32, False), (np.float32, np.float64, False), (np.float32,) * 2 + (True,)],
)
def test_mixed_dtypes_and_transposed_weights_match_numpy(monkeypatch, x_dtype, w_dtype, fortran):
    arrays = _arrays(x_dtype, 11)
    for k in (1, 2, 5):
        arrays[k] = arrays[k].astype(w_dtype)
        if fortran and arrays[k].ndim == 2:
            arrays[k] = np.asfortranarray(arrays[k])
    rng = np.random.default_rng(7)
    options = {"mask": rng.random((11, 6)) > 0.3, "sequences": False}
    up = rng.normal(size=(2, 11, 7))
    whole = _run(arrays, options, up)
    monkeypatch.setattr(_native, "kernels", None)
    reference = _run(arrays, options, up)
    for a, b in zip(whole, reference):
        assert a.dtype == b.dtype and a.shape == b.shape
        rtol = 2e-5 if a.dtype == np.float32 else 1e-11
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))


def test_gru_and_simple_rnn_take_no_small_products(monkeypatch):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 4, 3)).astype(np.float32)
    h0 = np.zeros((5, 6), np.float32)
    gru = [x, rng.normal(size=(3, 18)), np.zeros(18), h0, rng.normal(size=(6, 18)), np.zeros(18)]
    rnn = [x, rng.normal(size=(3, 6)), np.zeros(6), h0, rng.normal(size=(6, 6))]
    gru = [a.astype(np.float32) for a in gru]
    rnn = [a.astype(np.float32) for a in rnn]
    calls = record_kernel_calls(monkeypatch)
    _run(gru, {}, np.ones((5, 4, 6)), gru_sequence)
    _run(rnn, {}, np.ones((5, 4, 6)), simple_rnn_sequence)
    assert "small_product" not in calls and "lstm_sequence_forward" not in calls


def test_keras_models_agree_with_per_step_path(monkeypatch):
    """Bidirectional with masking and recurrent dropout, go_backwards, return_state and a
    stateful layer, trained and run through either path."""
    layers = dendrite.keras.layers
    rng = np.random.default_rng(9)
    x = rng.normal(size=(12, 7, 4)).astype(np.float32)
    x[3, 5:] = 0
    y = rng.normal(size=(12, 3)).astype(np.float32)

    def run() -> list:
        dendrite.utils.set_random_seed(5)
        inp = dendrite.keras.Input(batch_shape=(12, 7, 4))
        seq = layers.Bidirectional(layers.LSTM(9, return_sequences=True, recurrent_dropout=0.3))(
            layers.Masking(0.0)(inp)
        )
        out, h, c = layers.LSTM(5, go_backwards=True, return_state=True)(seq)
        tail = layers.LSTM(4, stateful=True)(seq)
        model = dendrite.keras.Model(inp, layers.Dense(3)(layers.Concatenate()([out, h, c, tail])))
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=12, epochs=2, verbose=0, shuffle=False)
        return [model.predict(x, batch_size=12, verbose=0)] + model.get_weights()

    whole = run()
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", False)
    steps = run()
    for a, b in zip(whole, steps):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
