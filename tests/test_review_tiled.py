"""Review tests for ``tiled_product`` (csrc/small_product.c shared by blocks of rows or of
32 columns): every output element written exactly once and nothing around it touched,
the transposed left operand under sharing, unusual inputs, concurrent callers, and Dense
layers in Keras-style use against NumPy."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dendrite
from dendrite import _native
from dendrite.ops._products import tiled_product
from dendrite.ops.dense import dense
from dendrite.testing import assert_same_on_any_kernel_threads, record_kernel_calls

pytestmark = pytest.mark.needs_sequence_kernels

PAD = 40  # NaN elements before and after each operand


def _padded(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` in a C-contiguous view of a NaN-filled buffer; the view and buffer."""
    buffer = np.full(values.size + 2 * PAD, np.nan, values.dtype)
    view = buffer[PAD : PAD + values.size].reshape(values.shape)
    view[...] = values
    return view, buffer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("rows", [0, 1, 5, 95, 96, 97])
@pytest.mark.parametrize("depth", [0, 1, 257])
def test_every_element_written_once_and_nothing_around(dtype, transposed, rows, depth):
    """Out starts as NaN and lies between NaN guards, and so do a and x: a missed
    element, a write past a column block or the array, or a read of a guard shows up."""
    rng = np.random.default_rng(rows * 1000 + depth)
    for cols in (16, 17, 33, 64, 65, 95, 127, 200, 256):
        a = rng.normal(size=(rows, depth)).astype(dtype)
        x = rng.normal(size=(depth, cols)).astype(dtype)
        stored, _ = _padded(np.ascontiguousarray(a.T) if transposed else a)
        xs, _ = _padded(x)
        out, out_buffer = _padded(np.full((rows, cols), np.nan, dtype))
        _native.kernels.small_product(stored, xs, out, rows, depth, cols, transposed)
        assert np.isnan(out_buffer[:PAD]).all() and np.isnan(out_buffer[-PAD:]).all()
        exact = a.astype(np.float64) @ x.astype(np.float64)
        bound = depth * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(x))
        assert np.all(np.abs(out - exact) <= bound), (cols, np.isnan(out).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols", [(7, 65), (32, 128), (95, 100), (150, 96)])
def test_transposed_left_operand_shared_same_bits(dtype, rows, cols, monkeypatch):
    """a^T read in place (x^T g), over SHARE_FROM so the helper takes blocks of rows or of
    columns: the same bits as the C-ordered a, on any threads, and per column block."""
    rng = np.random.default_rng(cols)
    depth = (1 << 22) // (rows * cols) + 1
    a = rng.normal(size=(rows, depth)).astype(dtype)
    b = rng.normal(size=(depth, cols)).astype(dtype)
    a_t = np.ascontiguousarray(a.T).T
    assert not a_t.flags.c_contiguous
    whole = tiled_product(a, b)
    assert_same_on_any_kernel_threads(lambda: [tiled_product(a_t, b), tiled_product(a, b)])
    np.testing.assert_array_equal(tiled_product(a_t, b), whole)  # a^T read as a, bit for bit
    tail = np.ascontiguousarray(b[:, cols - 17 :])
    np.testing.assert_array_equal(tiled_product(a_t, tail), whole[:, cols - 17 :])
    calls = record_kernel_calls(monkeypatch)
    tiled_product(a_t, b)
    assert calls == ["small_product"]  # the tiles, not NumPy's fallback


def _inputs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    big = rng.normal(size=(50, 80)).astype(np.float32)
    w = rng.normal(size=(80, 64)).astype(np.float32)
    read_only = big.copy()
    read_only.flags.writeable = False
    return [
        ("column slice", big[3:13, :40], w[:40]),
        ("offset rows", big[3:13], w),
        ("reversed rows", big[::-1], w),
        ("every other row", big[::2], w),
        ("reversed one row", big[5:4:-1], w),
        ("offset slice transposed", big[5:45].T, rng.normal(size=(40, 64)).astype(np.float32)),
        ("one column", big[:, 3:4], w[:1]),
        ("one column transposed", big[7:8].T, w[:1]),
        ("fortran", np.asfortranarray(big), w),
        ("read-only", read_only, w),
        ("b reversed", big, w[::-1]),
        ("b fortran", big, np.asfortranarray(w)),
        ("b column slice", big, np.repeat(w, 2, axis=1)[:, ::2]),
        ("zero rows", big[:0], w),
        ("zero rows transposed", np.zeros((80, 0), np.float32).T, w),
        ("zero depth", big[:, :0], w[:0]),
        ("float16", big.astype(np.float16), w.astype(np.float16)),
        ("int", (big * 10).astype(np.int64), (w * 10).astype(np.int64)),
        ("complex", big.astype(np.complex64), w.astype(np.complex64)),
        ("mixed", big, w.astype(np.float64)),
        ("big-endian", big.astype(">f4"), w.astype(">f4")),
    ]


@pytest.mark.parametrize("name, a, b", _inputs(), ids=[case[0] for case in _inputs()])
def test_unusual_inputs_match_numpy(name, a, b):
    expected = np.matmul(a, b)
    out = tiled_product(a, b)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    tolerance = 1e-2 if a.dtype == np.float16 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("transposed", [False, True])
def test_mismatched_inner_sizes_raise(transposed):
    a = np.ones((8, 300), np.float32)
    a = np.ascontiguousarray(a.T).T if transposed else a
    for rows_of_b in (299, 301):
        with pytest.raises(ValueError):
            tiled_product(a, np.ones((rows_of_b, 64), np.float32))


def test_two_python_threads_share_the_helper_safely():
    rng = np.random.default_rng(12)
    cases = [(rng.normal(size=(32, 3000)), rng.normal(size=(3000, 128))) for _ in range(2)]
    cases = [(a.astype(np.float32), b.astype(np.float32)) for a, b in cases]
    cases.append((np.ascontiguousarray(cases[0][0].T).T, cases[1][1]))
    expected = [tiled_product(a, b) for a, b in cases]
    errors: list[str] = []

    order = list(zip(cases, expected))

    def work(index: int) -> None:
        for _ in range(60):  # a caller lock removed from parallel.c fails this every time
            for (a, b), want in order[index:] + order[:index]:
                if not np.array_equal(tiled_product(a, b), want):
                    errors.append(f"thread {index}")

    before = _native.kernels.threads()
    _native.kernels.set_threads(2)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        _native.kernels.set_threads(before)
    assert errors == []


def _reference(model: dendrite.Sequential, x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float64)
    for layer in model.layers:
        kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
        h = h @ kernel + bias
        if layer.get_config()["activation"] == "relu":
            h = np.maximum(h, 0)
    return h


@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_sequential_dense_in_keras_style_use(floatx):
    before = dendrite.config.floatx()
    dendrite.config.set_floatx(floatx)
    try:
        dendrite.utils.set_random_seed(2)
        model = dendrite.Sequential(
            [
                dendrite.Input(shape=(6, 40)),
                dendrite.layers.Dense(130, activation="relu"),
                dendrite.layers.Dense(64),
            ]
        )
        rng = np.random.default_rng(13)
        x = rng.normal(size=(9, 6, 40)).astype(floatx)
        tol = 1e-4 if floatx == "float32" else 1e-10
        views = [x, x[:1], x[:0], x[::-2], np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)]
        for view in views:
            got = model.predict(view, verbose=0)
            assert got.dtype == np.dtype(floatx) and got.shape == (len(view), 6, 64)
            np.testing.assert_allclose(got, _reference(model, view), rtol=tol, atol=tol)
        batch = model.predict(x, verbose=0)
        np.testing.assert_array_equal(model.predict(x[4:5], verbose=0)[0], batch[4])
        frozen = model.layers[0]
        frozen.trainable = False
        kernel = np.array(frozen.kernel.numpy())
        trained = np.array(model.layers[1].kernel.numpy())
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, rng.normal(size=(9, 6, 64)).astype(floatx), batch_size=4, verbose=0)
        np.testing.assert_array_equal(frozen.kernel.numpy(), kernel)
        assert not np.array_equal(model.layers[1].kernel.numpy(), trained)
    finally:
        dendrite.config.set_floatx(before)


def test_dense_gradients_3d_column_split_against_numpy():
    """x^T g with fewer than 96 features and 64+ units: a^T read in place, split by
    columns; float64 gradients against NumPy."""
    rng = np.random.default_rng(14)
    x, kernel = rng.normal(size=(4, 50, 90)), rng.normal(size=(90, 200))
    bias, upstream = rng.normal(size=200), rng.normal(size=(4, 50, 200))
    variables = [dendrite.Variable(v) for v in (x, kernel, bias)]
    with dendrite.GradientTape() as tape:
        loss = dendrite.ops.sum(dense(*variables, relu=True) * upstream)
    gx, gk, gb = (np.asarray(g.numpy()) for g in tape.gradient(loss, variables))
    g = upstream * ((x @ kernel + bias) > 0)
    np.testing.assert_allclose(gk, x.reshape(-1, 90).T @ g.reshape(-1, 200), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(gx, g @ kernel.T, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 1)), rtol=1e-10, atol=1e-9)
