"""Dense layers' products by dendrite's own tiles (``ops._products.tiled_product``, over
csrc/small_product.c): which shapes take them, their agreement with NumPy, and the bits
they promise: a sum in one order whatever the threads, the batch around a sample, or how
the product was cut between the threads (by rows, or by blocks of columns for the few
rows of a small batch).
"""

from __future__ import annotations

import numpy as np
import pytest

import dendrite
from dendrite import _native
from dendrite.ops import _products
from dendrite.ops._products import tiled_product, times_kernel_transposed
from dendrite.ops.dense import dense
from dendrite.testing import assert_same_on_any_kernel_threads, gradcheck, record_kernel_calls

pytestmark = pytest.mark.needs_sequence_kernels

DTYPES = [np.float32, np.float64]


def _bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rounding error any order of the sums may make: depth * eps * sum |a| |b|."""
    eps = np.finfo(a.dtype).eps
    return a.shape[1] * eps * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "rows, depth, cols",
    [
        (32, 784, 128),  # the document's first layer at batch 32: shared by columns
        (5, 300, 200),  # columns not a multiple of a 32-column block
        (95, 40, 64),  # the last row count shared by columns
        (96, 40, 64),  # the first shared by rows
        (784, 32, 128),  # the shape of the first layer's dL/dW
        (1, 3, 16),
        (0, 7, 32),  # an empty batch
    ],
)
def test_tiled_product_matches_numpy(dtype, rows, depth, cols):
    rng = np.random.default_rng(rows + depth + cols)
    a = rng.normal(size=(rows, depth)).astype(dtype)
    b = rng.normal(size=(depth, cols)).astype(dtype)
    out = tiled_product(a, b)
    assert out.shape == (rows, cols) and out.dtype == dtype
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert np.all(np.abs(out - exact) <= _bound(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols", [(32, 128), (7, 200), (150, 96)])
def test_tiled_product_same_bits_on_any_threads(dtype, rows, cols):
    rng = np.random.default_rng(rows)
    # over 4M multiply-adds (small_product.c's SHARE_FROM): shared with the helper thread
    a = rng.normal(size=(rows, 3500)).astype(dtype)
    b = rng.normal(size=(3500, cols)).astype(dtype)
    stored = np.ascontiguousarray(a.T)  # a^T read in place, as dL/dW reads x^T
    assert_same_on_any_kernel_threads(lambda: [tiled_product(a, b), tiled_product(stored.T, b)])
    np.testing.assert_array_equal(tiled_product(stored.T, b), tiled_product(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "rows, depth, cols",
    [
        (784, 32, 128),  # the document's dL/dW: 11 blocks of 72 rows (OWNED_ROW_BLOCK)
        (30, 5000, 32),  # blocks of 24 rows and 6
        (20, 5000, 64),  # one block: nothing to share
        (784, 2, 128),  # under OWNED_ROWS_FROM multiply-adds: the usual path
        (0, 32, 128),
    ],
)
def test_kernel_gradient_by_owned_rows_gives_the_same_bits_on_any_threads(dtype, rows, depth, cols):
    """``owned_rows`` (a dense layer's kernel gradient, shared by the blocks of rows its Adam
    update uses, claimed from both ends) changes who computes which rows, never a sum."""
    rng = np.random.default_rng(rows + depth)
    stored = rng.normal(size=(depth, rows)).astype(dtype)  # x, read as x^T in place
    g = rng.normal(size=(depth, cols)).astype(dtype)
    plain = tiled_product(stored.T, g)
    assert_same_on_any_kernel_threads(lambda: [tiled_product(stored.T, g, owned_rows=True), plain])
    np.testing.assert_array_equal(tiled_product(stored.T, g, owned_rows=True), plain)
    exact = stored.T.astype(np.float64) @ g.astype(np.float64)
    assert np.all(np.abs(plain - exact) <= _bound(stored.T, g))


def _half_rows(rows: int) -> int:
    """csrc/kernels.h's HALF_ROWS: half the rows, rounded up to whole blocks of 24."""
    return ((rows + 1) // 2 + 23) // 24 * 24


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "rows, depth, cols",
    [
        (32, 784, 128),  # the document's first layer: cut at k = 408
        (1, 784, 128),  # one sample: the same cut, so the same bits as in a batch
        (300, 600, 200),  # over 4M multiply-adds
        (5, 263, 256),  # an odd depth, cut at 144
        (0, 784, 128),  # an empty batch
    ],
)
def test_dense_forward_split_at_the_kernels_half_rows(dtype, rows, depth, cols):
    """``split_depth`` (a dense layer's forward, kernels of 65,536 elements or more) sums
    ``x[:, :c] W[:c] + x[:, c:] W[c:]`` with ``c`` from W's shape alone, on any threads,
    for an x stored either way."""
    rng = np.random.default_rng(rows + depth + cols)
    x = rng.normal(size=(rows, depth)).astype(dtype)
    w = rng.normal(size=(depth, cols)).astype(dtype)
    c = _half_rows(depth)
    expected = tiled_product(np.ascontiguousarray(x[:, :c]), np.ascontiguousarray(w[:c]))
    expected += tiled_product(np.ascontiguousarray(x[:, c:]), np.ascontiguousarray(w[c:]))
    stored = np.ascontiguousarray(x.T)
    assert_same_on_any_kernel_threads(
        lambda: [
            tiled_product(x, w, split_depth=True),
            tiled_product(stored.T, w, split_depth=True),
        ]
    )
    np.testing.assert_array_equal(tiled_product(x, w, split_depth=True), expected)
    np.testing.assert_array_equal(tiled_product(stored.T, w, split_depth=True), expected)
    assert np.all(np.abs(expected - x.astype(np.float64) @ w.astype(np.float64)) <= _bound(x, w))


def test_owned_products_from_several_threads_at_once():
    """The split forward, the kernel gradient and the input gradient from four Python
    threads at once (one shares the helper, the others run alone): the same bits as alone."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    cases = [
        (
            rng.normal(size=(32, 784)).astype(np.float32),
            rng.normal(size=(784, 128)).astype(np.float32),
        )
        for _ in range(4)
    ]

    def run(case):
        x, w = case
        g = x @ w
        return [
            tiled_product(x, w, split_depth=True),
            tiled_product(x.T, g, owned_rows=True),
            times_kernel_transposed(g, w),
        ]

    alone = [run(case) for case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(run, cases * 3))
    for index, results in enumerate(together):
        for got, want in zip(results, alone[index % 4]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("depth, cols", [(511, 128), (100, 512), (30, 64)])
def test_smaller_kernels_are_not_split(depth, cols):
    """Under 65,536 elements the forward is the one-chain product."""
    assert depth * cols < _products.OWNED_KERNEL_ELEMENTS
    rng = np.random.default_rng(depth)
    x = rng.normal(size=(8, depth)).astype(np.float32)
    w = rng.normal(size=(depth, cols)).astype(np.float32)
    np.testing.assert_array_equal(tiled_product(x, w, split_depth=True), tiled_product(x, w))


def test_dense_op_asks_for_the_split_forward_and_owned_rows_for_its_kernel_gradient(monkeypatch):
    """The dense op's forward is split at the kernel's half rows and its kernel gradient
    shared by blocks of rows, each core mostly taking the half its Adam update takes
    (csrc/kernels.h)."""
    seen = []
    kernels = _native.kernels

    class Recording:
        def __getattr__(self, name):
            return getattr(kernels, name)

        def small_product(self, *args):
            seen.append(tuple(bool(flag) for flag in args[7:9]))
            return kernels.small_product(*args)

    monkeypatch.setattr(_native, "kernels", Recording())
    layer = dendrite.layers.Dense(64)
    layer.build((None, 50))
    inputs = dendrite.Variable(np.ones((32, 50), np.float32))
    with dendrite.GradientTape() as tape:
        loss = dendrite.ops.sum(layer(inputs) ** 2)
    tape.gradient(loss, layer.trainable_weights)
    assert seen == [(False, True), (True, False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "batch, units_in, units_out",
    [
        (32, 512, 512),  # an owned kernel: (W g^T)^T by the tiles, shared by W's rows
        (16, 784, 128),  # the fewest rows the tiles take
        (300, 300, 300),  # float32 by the tiles; float64 by BLAS (rows of g^T over 2 KiB)
        (8, 784, 128),  # too few rows: BLAS
        (32, 100, 500),  # a kernel under 65,536 elements: BLAS
    ],
)
def test_input_gradient_is_g_times_the_kernel_transposed(dtype, batch, units_in, units_out):
    rng = np.random.default_rng(batch + units_in)
    g = rng.normal(size=(batch, units_out)).astype(dtype)
    kernel = rng.normal(size=(units_in, units_out)).astype(dtype)
    assert_same_on_any_kernel_threads(lambda: [times_kernel_transposed(g, kernel)])
    got = times_kernel_transposed(g, kernel)
    assert got.shape == (batch, units_in) and got.dtype == dtype and got.flags.c_contiguous
    assert np.all(
        np.abs(got - g.astype(np.float64) @ kernel.T.astype(np.float64)) <= _bound(g, kernel.T)
    )


def test_dense_input_gradient_of_an_owned_kernel_by_finite_differences():
    """A kernel of 65,536 elements takes the tiled input gradient; float64, directional."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(16, 256))
    kernel = rng.normal(size=(256, 256)) / 16
    bias = rng.normal(size=256)
    assert gradcheck(
        lambda x, k, b: dense(x, k, b, relu=True), x, kernel, bias, name="dense (owned kernel)"
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_row_and_column_alone_gives_the_same_bits(dtype):
    """A row (a sample) of the product depends on that row alone, and a column on its
    column: the same bits however the product is cut between the threads."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(32, 784)).astype(dtype)
    b = rng.normal(size=(784, 200)).astype(dtype)
    whole = tiled_product(a, b)
    for row in (0, 17, 31):
        np.testing.assert_array_equal(
            tiled_product(a[row : row + 1].copy(), b), whole[row : row + 1]
        )
    for first, last in ((0, 32), (32, 64), (150, 200), (0, 16)):
        part = tiled_product(a, np.ascontiguousarray(b[:, first:last]))
        np.testing.assert_array_equal(part, whole[:, first:last])


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_left_operand_is_read_in_place(dtype, monkeypatch):
    rng = np.random.default_rng(4)
    stored = rng.normal(size=(32, 300)).astype(dtype)
    g = rng.normal(size=(32, 128)).astype(dtype)
    calls = record_kernel_calls(monkeypatch)
    in_place = tiled_product(stored.T, g)
    assert calls == ["small_product"]
    np.testing.assert_array_equal(in_place, tiled_product(np.ascontiguousarray(stored.T), g))


@pytest.mark.parametrize(
    "a_shape, b_shape, dtypes, takes_tiles",
    [
        ((32, 784), (784, 128), (np.float32, np.float32), True),
        ((8, 20), (20, 16), (np.float64, np.float64), True),
        ((8, 20), (20, 512), (np.float32, np.float32), True),
        ((128, 1600), (1600, 10), (np.float32, np.float32), False),  # too few columns
        ((8, 20), (20, 15), (np.float32, np.float32), False),
        ((8, 20), (20, 1024), (np.float32, np.float32), False),  # too many
        ((8, 20), (20, 256), (np.float64, np.float64), True),
        ((8, 20), (20, 300), (np.float64, np.float64), False),  # rows of b over 2 KiB
        ((8, 20), (20, 64), (np.float32, np.float64), False),  # mixed dtypes: NumPy's
        ((8, 20), (20, 64), (np.float16, np.float16), False),
        ((2, 8, 20), (20, 64), (np.float32, np.float32), False),  # not 2-D
    ],
)
def test_which_products_take_the_tiles(monkeypatch, a_shape, b_shape, dtypes, takes_tiles):
    rng = np.random.default_rng(5)
    a = rng.normal(size=a_shape).astype(dtypes[0])
    b = rng.normal(size=b_shape).astype(dtypes[1])
    calls = record_kernel_calls(monkeypatch)
    out = tiled_product(a, b)
    assert calls == (["small_product"] if takes_tiles else [])
    expected = a @ b
    assert out.shape == expected.shape and out.dtype == expected.dtype
    scale = float(np.abs(expected).max())
    tolerance = 1e-2 if dtypes[0] == np.float16 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * scale)


def test_strided_right_operand_and_mismatched_shapes_go_to_numpy(monkeypatch):
    rng = np.random.default_rng(6)
    a = rng.normal(size=(8, 20)).astype(np.float32)
    b = rng.normal(size=(64, 20)).astype(np.float32).T  # not C-contiguous
    calls = record_kernel_calls(monkeypatch)
    np.testing.assert_allclose(tiled_product(a, b), a @ b, rtol=1e-5)
    assert calls == []
    with pytest.raises(ValueError):
        tiled_product(a, np.ones((21, 64), np.float32))


def test_without_the_tiles_dense_layers_use_blas(monkeypatch):
    monkeypatch.setattr(_products, "OWN_PRODUCTS", False)
    calls = record_kernel_calls(monkeypatch)
    a = np.ones((4, 30), np.float32)
    np.testing.assert_array_equal(
        tiled_product(a, np.ones((30, 64), np.float32)), np.full((4, 64), 30)
    )
    assert "small_product" not in calls


def test_dense_layer_takes_the_tiles_forward_and_for_its_kernel_gradient(monkeypatch):
    """x W and x^T g (x^T read in place); g W^T stays with BLAS, which reads W transposed
    in place where small_product.c would need a copy of W."""
    calls = record_kernel_calls(monkeypatch)
    x = np.random.default_rng(7).normal(size=(32, 50)).astype(np.float32)
    layer = dendrite.layers.Dense(64)
    layer.build((None, 50))
    inputs = dendrite.Variable(x)
    with dendrite.GradientTape() as tape:
        loss = dendrite.ops.sum(layer(inputs) ** 2)
    tape.gradient(loss, [inputs, *layer.trainable_weights])
    assert calls.count("small_product") == 2


def test_dense_gradients_by_finite_differences():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 12))
    kernel = rng.normal(size=(12, 20))
    bias = rng.normal(size=20)
    assert gradcheck(dense, x, kernel, bias, mode="elementwise", name="dense (tiled)")
    assert gradcheck(lambda x, k, b: dense(x, k, b, relu=True), x, kernel, bias, mode="elementwise")


def test_a_sample_predicts_the_same_bits_alone_and_in_a_batch():
    """Each sample's sums run in one order, whatever the batch around it (BLAS picks its
    kernels by the batch's size)."""
    dendrite.utils.set_random_seed(0)
    model = dendrite.Sequential(
        [
            dendrite.Input(shape=(784,)),
            dendrite.layers.Dense(128, activation="relu"),
            dendrite.layers.Dense(32),
        ]
    )
    x = np.random.default_rng(9).random((37, 784), dtype=np.float32)
    batch = model.predict(x, batch_size=37, verbose=0)
    for row in (0, 20, 36):
        np.testing.assert_array_equal(model.predict(x[row : row + 1], verbose=0)[0], batch[row])


def test_seeded_training_reproduces_bit_for_bit():
    def train() -> list[np.ndarray]:
        dendrite.utils.set_random_seed(1)
        model = dendrite.Sequential(
            [
                dendrite.Input(shape=(64,)),
                dendrite.layers.Dense(96, activation="relu"),
                dendrite.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(10)
        x = rng.random((200, 64), dtype=np.float32)
        y = rng.integers(0, 3, 200)
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        return model.get_weights()

    for first, second in zip(train(), train()):
        np.testing.assert_array_equal(first, second)


def test_kernels_are_loaded_for_these_tests():
    assert _native.kernels is not None and _products.OWN_PRODUCTS
