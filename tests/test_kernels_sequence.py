"""Whole LSTM sequences in one kernel call (csrc/recurrent_sequence.c) and the products
they and the LSTM's other products use (csrc/small_product.c), against the paths they
replace: NumPy's products and the per-step kernels (csrc/recurrent.c), which CPUs without
AVX2 and FMA keep.

The small products sum in a fixed order (fused multiply-adds, k ascending), not BLAS', so
they agree with NumPy within float rounding; but each column of a product depends on its
own column alone, bit for bit, so a sample's states do not depend on the batch around it,
on how the batch was cut into chunks, or on the threads that ran them. Tolerances for the
sequences are tests/test_kernels_recurrent.py's (relative to the largest magnitude of the
reference): 2e-5 in float32, 1e-11 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import dendrite
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops.recurrent import _common, lstm_sequence
from dendrite.testing import (
    assert_paths_agree,
    assert_same_on_any_kernel_threads,
    gradcheck,
    record_kernel_calls,
)

pytestmark = pytest.mark.needs_sequence_kernels

DTYPES = [np.float32, np.float64]
EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def _small_product(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.full((a.shape[0], x.shape[1]), np.nan, dtype=a.dtype)
    _native.kernels.small_product(a, x, out, a.shape[0], a.shape[1], x.shape[1])
    return out


# --- the small products ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "rows, depth, cols",
    [
        (1, 1, 1),
        (3, 5, 7),  # no whole tile: one row at a time, masked columns
        (4, 8, 16),  # exactly one float32 tile of two vectors
        (13, 300, 17),  # depth past one block of 256, every column tile
        (512, 28, 896),  # the LSTM benchmark's input projection
        (128, 512, 32),  # its backward step product
        (512, 896, 28),  # its kernel gradient
        (6, 1, 45),
    ],
)
def test_small_product_matches_numpy(dtype, rows, depth, cols):
    rng = np.random.default_rng(rows * 1000 + depth + cols)
    a = rng.normal(size=(rows, depth)).astype(dtype)
    x = rng.normal(size=(depth, cols)).astype(dtype)
    out = _small_product(a, x)
    exact = a.astype(np.float64) @ x.astype(np.float64)
    # Each sum of `depth` rounded products is within depth * eps of the sum of magnitudes.
    bound = depth * EPS[dtype] * (np.abs(a).astype(np.float64) @ np.abs(x).astype(np.float64))
    assert out.dtype == dtype
    assert np.all(np.abs(out - exact) <= bound + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_exact_on_small_integers(dtype):
    rng = np.random.default_rng(3)
    a = rng.integers(-4, 5, size=(9, 37)).astype(dtype)
    x = rng.integers(-4, 5, size=(37, 23)).astype(dtype)
    np.testing.assert_array_equal(_small_product(a, x), a @ x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_empty_depth_gives_zeros(dtype):
    a = np.zeros((5, 0), dtype)
    x = np.zeros((0, 11), dtype)
    np.testing.assert_array_equal(_small_product(a, x), np.zeros((5, 11), dtype))
    assert _small_product(np.zeros((0, 3), dtype), np.ones((3, 4), dtype)).shape == (0, 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_column_is_independent_of_its_neighbours(dtype):
    """Every tile (two vectors, one, the masked rest) gives a column the same bits as a
    product of that column alone (the masked one-column tile); 45 columns take AVX-512
    where the CPU has it, one column AVX2: the same bits again."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(10, 300)).astype(dtype)
    x = rng.normal(size=(300, 45)).astype(dtype)
    wide = _small_product(a, x)
    for column in range(x.shape[1]):
        alone = _small_product(a, np.ascontiguousarray(x[:, column : column + 1]))
        np.testing.assert_array_equal(wide[:, column : column + 1], alone)
    # and the same bits for a block of rows, as the helper thread's chunks compute them
    np.testing.assert_array_equal(wide[4:8], _small_product(a[4:8].copy(), x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_column_count_gives_each_column_its_own_bits(dtype):
    """Each form the last columns take (a masked vector alone, a whole vector, a whole and a
    masked vector in one pass; AVX2 up to 16 columns, AVX-512 above where the CPU has it)
    gives a column the bits of that column's product alone, and NumPy's value."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(9, 70)).astype(dtype)
    x = rng.normal(size=(70, 48)).astype(dtype)
    alone = np.hstack([_small_product(a, np.ascontiguousarray(x[:, c : c + 1])) for c in range(48)])
    bound = 70 * EPS[dtype] * (np.abs(a).astype(np.float64) @ np.abs(x).astype(np.float64))
    for cols in range(1, 49):
        out = _small_product(a, np.ascontiguousarray(x[:, :cols]))
        np.testing.assert_array_equal(out, alone[:, :cols], err_msg=f"{cols} columns")
        assert np.all(np.abs(out - a.astype(np.float64) @ x[:, :cols]) <= bound[:, :cols])


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_reads_a_transposed_in_place(dtype):
    """``transposed``: a given as its (depth, rows) transpose, as a weight matrix is stored,
    gives the same bits as the copied a, and sequence_product takes a transposed view so."""
    rng = np.random.default_rng(8)
    stored = rng.normal(size=(300, 13)).astype(dtype)  # a.T
    x = rng.normal(size=(300, 21)).astype(dtype)
    out = np.empty((13, 21), dtype)
    _native.kernels.small_product(stored, x, out, 13, 300, 21, True)
    np.testing.assert_array_equal(out, _small_product(np.ascontiguousarray(stored.T), x))
    np.testing.assert_array_equal(_common.sequence_product(stored.T, x), out)
    # a transposed x is copied to C order (the tiled copy), with the same bits
    x_t = np.ascontiguousarray(x.T)
    np.testing.assert_array_equal(_common.sequence_product(stored.T, x_t.T), out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_product_same_bits_on_any_threads(dtype):
    rng = np.random.default_rng(6)
    a = rng.normal(size=(512, 300)).astype(dtype)
    x = rng.normal(size=(300, 40)).astype(dtype)
    assert_same_on_any_kernel_threads(lambda: [_small_product(a, x)])


def test_small_product_argument_checks():
    kernels = _native.kernels
    a = np.ones((4, 3), np.float32)
    x = np.ones((3, 5), np.float32)
    out = np.empty((4, 5), np.float32)
    kernels.small_product(a, x, out, 4, 3, 5)
    np.testing.assert_array_equal(out, np.full((4, 5), 3, np.float32))
    with pytest.raises(ValueError):  # sizes that do not match the arrays
        kernels.small_product(a, x, out, 4, 3, 6)
    with pytest.raises(ValueError):
        kernels.small_product(a, x, out, -1, 3, 5)
    with pytest.raises(ValueError):  # sizes whose products overflow
        kernels.small_product(a, x, out, 1 << 62, 1 << 62, 5)
    with pytest.raises(ValueError):  # mixed dtypes
        kernels.small_product(a, x.astype(np.float64), out, 4, 3, 5)
    with pytest.raises((ValueError, BufferError, TypeError)):  # not contiguous
        kernels.small_product(np.ones((3, 4), np.float32).T, x, out, 4, 3, 5)
    frozen = out.copy()
    frozen.flags.writeable = False
    with pytest.raises((ValueError, BufferError, TypeError)):  # read-only output
        kernels.small_product(a, x, frozen, 4, 3, 5)


def test_sequence_product_falls_back_to_numpy_for_mixed_dtypes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    out = _common.sequence_product(a, x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, a @ x)
    # strided views take NumPy's product too
    big = np.arange(40, dtype=np.float32).reshape(5, 8)
    np.testing.assert_array_equal(
        _common.sequence_product(big[:, ::2], big[:4].T[::2]), big[:, ::2] @ big[:4].T[::2]
    )


# --- whole LSTM sequences ---------------------------------------------------------------


def _lstm_arrays(dtype, batch: int, steps: int = 7, features: int = 5, units: int = 6):
    rng = np.random.default_rng(batch * 10 + steps)

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(dtype)

    return [
        normal(batch, steps, features),
        normal(features, 4 * units, scale=1 / np.sqrt(features)),
        normal(4 * units, scale=0.5),
        normal(batch, units, scale=0.5),
        normal(batch, units, scale=0.5),
        normal(units, 4 * units, scale=1 / np.sqrt(units)),
    ]


def _lstm_run(arrays: list, options: dict, upstream: np.ndarray | None) -> list:
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = lstm_sequence(*tensors, **options)
    if upstream is None:
        return [out.data]
    out.backward(upstream)
    return [out.data] + [t.grad for t in tensors]


def _upstream(arrays: list, options: dict) -> np.ndarray:
    shape = _lstm_run(arrays, options, None)[0].shape
    return np.random.default_rng(11).normal(size=shape).astype(arrays[0].dtype)


def _per_step(monkeypatch, arrays: list, options: dict, upstream: np.ndarray) -> list:
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", False)
    try:
        return _lstm_run(arrays, options, upstream)
    finally:
        monkeypatch.undo()


def _options(dtype, batch: int, steps: int, masked: bool, dropout: bool, **more) -> dict:
    rng = np.random.default_rng(batch + steps)
    options = dict(more)
    if masked:
        mask = rng.random((batch, steps)) > 0.3
        mask[0, :3] = False  # a sample that starts with padding
        options["mask"] = mask
    if dropout:
        keep = rng.random((batch, 6)) > 0.25
        options["recurrent_mask"] = (keep / 0.75).astype(dtype)
    return options


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 5, 8, 16, 20, 37])
@pytest.mark.parametrize(
    "masked, dropout", [(False, False), (True, False), (False, True), (True, True)]
)
@pytest.mark.parametrize("sequences, reverse", [(True, False), (False, False), (True, True)])
def test_whole_sequence_matches_per_step_path(
    monkeypatch, dtype, batch, masked, dropout, sequences, reverse
):
    arrays = _lstm_arrays(dtype, batch)
    options = _options(dtype, batch, 7, masked, dropout, sequences=sequences, reverse=reverse)
    upstream = _upstream(arrays, options)
    whole = _lstm_run(arrays, options, upstream)
    steps = _per_step(monkeypatch, arrays, options, upstream)
    assert_paths_agree(whole, steps, dtype, float32_rtol=2e-5, float64_rtol=1e-11)


def test_whole_sequence_is_what_runs(monkeypatch):
    """With AVX2 and FMA the LSTM takes one forward and one backward call, and its other
    products are the small ones (no BLAS product at all)."""
    calls = record_kernel_calls(monkeypatch)
    arrays = _lstm_arrays(np.float32, 32, steps=28)
    _lstm_run(arrays, {"sequences": False}, np.ones((2, 32, 6), np.float32))
    assert calls.count("lstm_sequence_forward") == 1
    assert calls.count("lstm_sequence_backward") == 1
    assert "lstm_forward" not in calls and "lstm_backward" not in calls
    assert calls.count("small_product") == 4  # projection, dx, dW, dU


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sample_gets_the_same_bits_in_any_batch(dtype):
    """Forward states, and every per-sample gradient, of sample 3 in a batch of 37 (two
    chunks of 16 and a masked rest) are those of the same sample alone."""
    arrays = _lstm_arrays(dtype, 37)
    options = {"sequences": True}
    upstream = _upstream(arrays, options)
    whole = _lstm_run(arrays, options, upstream)
    one = [a[3:4].copy() if a.ndim and a.shape[0] == 37 else a for a in arrays]
    alone = _lstm_run(one, options, upstream[:, 3:4].copy())
    np.testing.assert_array_equal(whole[0][:, 3:4], alone[0])  # h and c
    np.testing.assert_array_equal(whole[1][3:4], alone[1])  # dL/dx
    np.testing.assert_array_equal(whole[4][3:4], alone[4])  # dL/dh0
    np.testing.assert_array_equal(whole[5][3:4], alone[5])  # dL/dc0


@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_sequence_same_bits_on_any_threads(dtype):
    arrays = _lstm_arrays(dtype, 40, steps=12)
    options = _options(dtype, 40, 12, True, True, sequences=False)
    upstream = _upstream(arrays, options)
    assert_same_on_any_kernel_threads(lambda: _lstm_run(arrays, options, upstream))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [0, 1, 8, 17, 37])
@pytest.mark.parametrize("masked, reverse", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("steps", [0, 1, 9])
def test_the_kernel_writes_the_last_states_of_the_whole_sequence(
    dtype, batch, masked, reverse, steps
):
    """Without sequences, the forward kernel writes the last h and c batch-major itself:
    the same bits as the last step of the sequences (of which it is a copy), for batches
    of one chunk, several and a partial one, for no steps (the initial states) and for
    masked steps (carried states)."""
    arrays = _lstm_arrays(dtype, batch, steps=steps)
    options = _options(dtype, batch, steps, masked and steps and batch, False, reverse=reverse)
    last = _lstm_run(arrays, {**options, "sequences": False}, None)[0]
    whole = _lstm_run(arrays, {**options, "sequences": True}, None)[0]
    assert last.shape == (2, batch, 6)
    expected = whole[:, :, -1] if steps else np.stack([arrays[3], arrays[4]])
    np.testing.assert_array_equal(last, expected)


def test_the_last_states_come_from_the_kernel(monkeypatch):
    calls = record_kernel_calls(monkeypatch)
    _lstm_run(_lstm_arrays(np.float32, 20), {"sequences": False}, None)
    assert calls.count("lstm_sequence_forward") == 1
    after = calls[calls.index("lstm_sequence_forward") + 1 :]
    assert "swap_axes" not in after  # no copy of the last column afterwards


@pytest.mark.parametrize("trainable", ["bias", "kernel", "kernel and bias"])
def test_bias_row_gives_each_weight_gradient(monkeypatch, trainable):
    """The inputs' row of ones gives dL/db with dL/dW's product; a frozen kernel or bias
    still gets the other's gradient (the NumPy sum when dL/dW is not wanted)."""
    arrays = _lstm_arrays(np.float32, 21)
    options = {"sequences": False}
    upstream = _upstream(arrays, options)

    def run() -> list:
        tensors = [Tensor(a, requires_grad=False) for a in arrays]
        for index, name in ((1, "kernel"), (2, "bias")):
            tensors[index].requires_grad = name in trainable
        lstm_sequence(*tensors, **options).backward(upstream)
        return [tensors[1].grad, tensors[2].grad]

    whole = run()
    assert (whole[0] is not None) == ("kernel" in trainable)
    assert (whole[1] is not None) == ("bias" in trainable)
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", False)
    steps = run()
    for a, b in zip(whole, steps):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * max(1, np.abs(b).max()))


def test_empty_batch():
    arrays = _lstm_arrays(np.float32, 0)
    out = _lstm_run(arrays, {"sequences": True}, np.zeros((2, 0, 7, 6), np.float32))
    assert out[0].shape == (2, 0, 7, 6)
    assert out[2].shape == (5, 24) and not np.any(out[2])  # no samples, no gradient


def test_whole_sequence_finite_differences():
    arrays = [
        a.astype(np.float64) for a in _lstm_arrays(np.float64, 3, steps=4, units=3, features=2)
    ]
    mask = np.array(
        [[True, True, False, True], [True, True, True, True], [False, True, True, True]]
    )
    gradcheck(lambda *t: lstm_sequence(*t, mask=mask), *arrays, mode="elementwise")


def test_sequence_kernel_argument_checks():
    kernels = _native.kernels
    u, batch, steps = 3, 2, 4
    f32 = np.float32
    gates = np.zeros((4 * u, steps, batch), f32)
    u_t = np.zeros((u, 4 * u), f32)
    hs = np.zeros((u, steps + 1, batch), f32)
    act = np.zeros((u, steps, batch), f32)
    kernels.lstm_sequence_forward(gates, u_t, hs, hs.copy(), act, None, None, u, batch, steps)
    with pytest.raises(ValueError):  # negative steps
        kernels.lstm_sequence_forward(gates, u_t, hs, hs.copy(), act, None, None, u, batch, -1)
    with pytest.raises(ValueError):  # the kernel of another size
        kernels.lstm_sequence_forward(
            gates, u_t[:-1], hs, hs.copy(), act, None, None, u, batch, steps
        )
    with pytest.raises(ValueError):  # mixed dtypes
        kernels.lstm_sequence_forward(
            gates, u_t.astype(np.float64), hs, hs.copy(), act, None, None, u, batch, steps
        )
    with pytest.raises(ValueError):  # a dropout mask of the wrong size
        kernels.lstm_sequence_forward(
            gates, u_t, hs, hs.copy(), act, None, np.ones((u, batch + 1), f32), u, batch, steps
        )
    last = np.zeros((2, batch, u), f32)
    kernels.lstm_sequence_forward(gates, u_t, hs, hs.copy(), act, None, None, u, batch, steps, last)
    with pytest.raises(ValueError):  # last states of the wrong size
        kernels.lstm_sequence_forward(
            gates, u_t, hs, hs.copy(), act, None, None, u, batch, steps, last[:, :1]
        )
    dh = np.zeros((u, batch), f32)
    args = (None, gates, hs, act, u_t, None, None, dh, dh.copy(), gates.copy())
    kernels.lstm_sequence_backward(*args, u, batch, steps)
    with pytest.raises(ValueError):  # the states without their initial column
        kernels.lstm_sequence_backward(None, gates, act, *args[3:], u, batch, steps)
    frozen = dh.copy()
    frozen.flags.writeable = False
    with pytest.raises((ValueError, BufferError, TypeError)):  # read-only output
        kernels.lstm_sequence_backward(*args[:7], frozen, dh.copy(), gates.copy(), u, batch, steps)


def test_lstm_training_agrees_with_per_step_path(monkeypatch):
    """A Keras LSTM model trained a few steps through either path ends at the same
    weights within float rounding (dropout and recurrent dropout included)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 9, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=48)

    def train() -> list:
        dendrite.utils.set_random_seed(1)
        model = dendrite.keras.Sequential(
            [
                dendrite.keras.Input(shape=(9, 4)),
                dendrite.keras.layers.LSTM(10, recurrent_dropout=0.2, return_sequences=True),
                dendrite.keras.layers.LSTM(7),
                dendrite.keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=20, epochs=2, verbose=0)
        return [w.astype(np.float32) for w in model.get_weights()]

    whole = train()
    monkeypatch.setattr(_common, "WHOLE_SEQUENCES", False)
    steps = train()
    for a, b in zip(whole, steps):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
