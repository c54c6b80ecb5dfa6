"""Sums that do not depend on BLAS' threads (dendrite.ops._products, sum_rows,
squared_norm): the thread governor switches between one thread and all while a model
trains, and a seeded run must still reproduce exactly."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dendrite as tf
from dendrite import cpu_threads
from dendrite.ops import _products
from dendrite.ops._util import sum_rows
from dendrite.optimizers._utils import squared_norm

pytestmark = pytest.mark.skipif(
    cpu_threads.blas_threads() is None, reason="no BLAS whose threads can be set"
)


@pytest.fixture(autouse=True)
def switching_threads(monkeypatch):
    """Two threads to switch between, as the governor has on a 2-core machine (also on a
    machine with one core: OpenBLAS starts the threads it is asked for)."""
    for name in ("DENDRITE_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cpu_threads.reset()
    state = cpu_threads._state()
    state.ceiling, state.adaptive, state.source = 2, True, "test"
    state.governed = 1  # as inside a fit whose governor may switch
    cpu_threads.blas_threads(2)
    _products.forget_plans()
    yield
    _products.forget_plans()
    cpu_threads.reset()


def on_threads(threads: int, compute):
    with cpu_threads.blas_pinned_to(threads):
        return compute()


def both(compute):
    return on_threads(1, compute), on_threads(2, compute)


def product_seeing_blas_threads(monkeypatch, a, b):
    """(``_products.product(a, b)``, BLAS' threads in force at each np.matmul it made)."""
    seen = []
    real_matmul = np.matmul

    def spying_matmul(*args, **kwargs):
        seen.append(cpu_threads.blas_threads())
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(_products.np, "matmul", spying_matmul)
    try:
        return _products.product(a, b), seen
    finally:
        monkeypatch.setattr(_products.np, "matmul", real_matmul)


def operands(shape_a, shape_b, dtype=np.float32, order_a="C", order_b="C", seed=0):
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.random(shape_a) - 0.5, dtype=dtype, order=order_a)
    b = np.asarray(rng.random(shape_b) - 0.5, dtype=dtype, order=order_b)
    return a, b


SHAPES = [
    (32, 784, 128),  # the document's first layer at batch 32
    (1000, 784, 128),
    (2, 1000, 512),
    (128, 784, 10),
    (1, 784, 2000),  # one sample: a vector-matrix product
    (784, 1000, 128),  # a weight gradient: K is the batch
    (32, 300, 128),
    (32, 100, 64),  # K below SMALL_K: straight to NumPy
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m, k, n", SHAPES)
def test_a_product_rounds_the_same_on_one_thread_and_on_two(m, k, n, dtype):
    rng = np.random.default_rng(k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    one = on_threads(1, lambda: _products.product(a, b))
    two = on_threads(2, lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    assert one.dtype == np.dtype(dtype)


def test_transposed_and_batched_operands_and_out():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((784, 1000)).astype(np.float32)
    g = rng.standard_normal((784, 128)).astype(np.float32)
    # The weight gradient x^T g, x read through its transpose (F-ordered view).
    one = on_threads(1, lambda: _products.product(x.T, g))
    two = on_threads(2, lambda: _products.product(x.T, g))
    np.testing.assert_array_equal(one, two)
    a = rng.standard_normal((3, 32, 784)).astype(np.float32)
    b = rng.standard_normal((784, 128)).astype(np.float32)
    batched = [on_threads(t, lambda: _products.product(a, b)) for t in (1, 2)]
    np.testing.assert_array_equal(batched[0], batched[1])
    out = np.empty((3, 32, 128), np.float32)
    result = on_threads(2, lambda: _products.product(a, b, out=out))
    assert result is out
    np.testing.assert_array_equal(out, batched[0])


def test_each_plan_keeps_the_sum_it_promises(monkeypatch):
    """A cut sums the two parts; a pinned product runs on one thread; either way the
    result is the product."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((64, 784)).astype(np.float32)  # above ONE_BLAS_THREAD_BELOW
    b = rng.standard_normal((784, 128)).astype(np.float32)
    monkeypatch.setattr(_products, "_agrees", lambda a, b, ceiling: a.shape[1] == 768)
    cut = _products.product(a, b)
    assert list(_products._PLANS.values()) == [768]
    np.testing.assert_array_equal(cut, a[:, :768] @ b[:768] + a[:, 768:] @ b[768:])

    _products.forget_plans()
    monkeypatch.setattr(_products, "_agrees", lambda a, b, ceiling: False)
    pinned, seen = product_seeing_blas_threads(monkeypatch, a, b)
    assert list(_products._PLANS.values()) == [_products.PINNED]
    assert seen == [1] and cpu_threads.blas_threads() == 2  # one thread, then back
    np.testing.assert_allclose(pinned, a @ b, rtol=1e-5, atol=1e-4)


def test_fixed_threads_go_straight_to_numpy(monkeypatch):
    tf.config.set_num_threads(2)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 784)).astype(np.float32)  # above ONE_BLAS_THREAD_BELOW
    b = rng.standard_normal((784, 128)).astype(np.float32)
    assert cpu_threads.switching() == 0
    np.testing.assert_array_equal(_products.product(a, b), a @ b)
    assert not _products._PLANS


@pytest.mark.parametrize(
    "m, k, n, blas_threads",
    [
        (16, 128, 64, 2),  # 131,072 multiply-adds: OpenBLAS keeps it on one thread itself
        (128, 1600, 10, 1),  # the CNN's dense layer: shared by OpenBLAS, too small to gain
        (128, 10, 1600, 1),  # its input gradient (K below SMALL_K: no plan either)
        (32, 784, 128, 1),
        (512, 128, 128, 2),  # 8.4M: large enough to share
    ],
)
@pytest.mark.parametrize("fixed", [False, True])
def test_products_too_small_to_share_run_on_one_blas_thread(
    monkeypatch, m, k, n, blas_threads, fixed
):
    """Products OpenBLAS would share but that are too small to gain from it run on one BLAS
    thread, governed or with the threads fixed, and BLAS is back on two afterwards; so their
    sums are the one-thread ones, the same whichever threads are in force."""
    if fixed:
        tf.config.set_num_threads(2)
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    result, seen = product_seeing_blas_threads(monkeypatch, a, b)
    assert seen == [blas_threads] and cpu_threads.blas_threads() == 2
    if blas_threads == 1:
        np.testing.assert_array_equal(result, on_threads(1, lambda: a @ b))
        np.testing.assert_array_equal(on_threads(1, lambda: _products.product(a, b)), result)
    np.testing.assert_allclose(result, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(100352, 16), (25088, 32), (4097, 1), (5001, 3), (1023, 5)])
def test_sum_rows_is_the_column_sum_on_any_threads(shape):
    g = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    one = on_threads(1, lambda: sum_rows(g))
    two = on_threads(2, lambda: sum_rows(g))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, g.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-3)
    assert one.shape == (shape[1],) and one.dtype == np.float32


def test_sum_rows_edge_shapes():
    assert sum_rows(np.zeros((2000, 0), np.float32)).shape == (0,)
    np.testing.assert_array_equal(sum_rows(np.zeros((0, 4), np.float32)), np.zeros(4))
    np.testing.assert_array_equal(sum_rows(np.ones((3000, 4))), np.full(4, 3000.0))
    f_ordered = np.asfortranarray(np.random.default_rng(4).standard_normal((5000, 7)))
    np.testing.assert_allclose(sum_rows(f_ordered), f_ordered.sum(axis=0), rtol=1e-12)


def test_squared_norm_on_any_threads():
    x = np.random.default_rng(5).standard_normal((300, 200)).astype(np.float32)
    one = on_threads(1, lambda: squared_norm(x))
    two = on_threads(2, lambda: squared_norm(x))
    assert one == two
    assert one == pytest.approx(float((x.astype(np.float64) ** 2).sum()), rel=1e-5)


def _train(build, x, y, threads_per_step, monkeypatch, **fit_args) -> list[np.ndarray]:
    """Fit (batches of 32) with the governor replaced by one that runs step i on
    threads_per_step(i)."""
    steps = iter(range(10**6))

    def begin(self):
        cpu_threads.apply(threads_per_step(next(steps)))
        return -1.0

    monkeypatch.setattr(cpu_threads.ThreadGovernor, "begin", begin)
    _products.forget_plans()
    tf.keras.utils.set_random_seed(0)
    model = build()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, **fit_args)
    return model.get_weights()


def _document_model():
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(784,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _transposed_conv_model():
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(14, 14, 8)),
            layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same"),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(clipnorm=1.0), loss="mse")
    return model


def _conv_pool_model():
    """Ten channels in: a 3x3 convolution and 2x2 pooling by Winograd's transforms
    (ops/winograd.py), whose batched products and their gradients' are planned."""
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(12, 12, 10)),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    "build, x_shape, targets",
    [
        (_document_model, (320, 784), "classes"),
        (_transposed_conv_model, (96, 14, 14, 8), "images"),
        (_conv_pool_model, (150, 12, 12, 10), "classes"),
    ],
    ids=["document_mlp", "conv_transpose_clipnorm", "conv_pool"],
)
def test_training_reproduces_whatever_threads_each_step_ran_on(
    build, x_shape, targets, monkeypatch
):
    rng = np.random.default_rng(6)
    x = rng.random(x_shape).astype(np.float32)
    if targets == "classes":
        y = rng.integers(0, 10, x_shape[0])
    else:
        y = rng.random((x_shape[0], 28, 28, 1)).astype(np.float32)
    steady = _train(build, x, y, lambda i: 1, monkeypatch)
    switching = _train(build, x, y, lambda i: 1 + i % 2, monkeypatch)
    for a, b in zip(steady, switching):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# Matrix-vector products, layouts, vectors, einsum
# ---------------------------------------------------------------------------------------


def test_a_matrix_vector_product_is_probed_at_its_own_rows():
    """n == 1 (gemv): OpenBLAS' threaded gemv splits by the real row count, so a probe
    on fewer rows would agree where the real product does not. E.g. Dense(1)'s kernel
    gradient flat.T @ g with batch 8192 and 300 features."""
    a, b = operands((8192, 300), (8192, 1))
    a = a.T  # (300, 8192), F-ordered, as Dense.backward's flat.T
    one, two = both(lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)


def test_a_vector_matrix_product_is_probed_at_its_own_columns():
    """m == 1 (a batch of one, e.g. an epoch's last partial batch): a (1, 2048) @
    (2048, 1000) Dense forward is probed with all its 1000 columns (on 512 it agreed)."""
    a, b = operands((1, 2048), (2048, 1000))
    one, two = both(lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)


def test_each_memory_layout_has_its_own_plan():
    """BLAS reads a transposed operand with other kernels: (2000, 449) @ (449, 1) agreed
    on one thread and two C-ordered, not F-ordered, so the layouts are planned apart."""
    a, b = operands((2000, 449), (449, 1))
    _products.product(a, b)  # plans SAME from the C-ordered operand
    f_ordered = np.asfortranarray(a)
    one, two = both(lambda: _products.product(f_ordered, b))
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize(
    "shape_a, shape_b", [((300, 4100), (4100,)), ((2048,), (2048, 1000))], ids=["mv", "vm"]
)
def test_one_dimensional_operands_are_planned(shape_a, shape_b):
    """A vector is planned as a one-row (one-column) matrix: BLAS' gemv rounds these
    differently on one thread and two; ops.matmul / ops.dot with a vector reach it."""
    a, b = operands(shape_a, shape_b)
    one, two = both(lambda: np.asarray(tf.ops.matmul(a, b)))
    np.testing.assert_array_equal(one, two)


def test_einsum_rounds_the_same_on_one_thread_and_on_two():
    """ops.einsum (np.einsum(optimize=True) -> tensordot -> BLAS) runs on one BLAS thread
    while the threads may switch."""
    a, b = operands((256, 784), (784, 128))
    one, two = both(lambda: np.asarray(tf.ops.einsum("ij,jk->ik", a, b)))
    np.testing.assert_array_equal(one, two)


def test_a_last_batch_of_one_sample_reproduces_whatever_the_threads(monkeypatch):
    """33 samples at batch 32: the second step is a batch of one, (1, 2048) @ (2048, 600),
    a vector-matrix product (it differed on one thread and two when probed on fewer
    columns)."""

    def build():
        layers = tf.keras.layers
        model = tf.keras.Sequential(
            [tf.keras.Input(shape=(2048,)), layers.Dense(600), layers.Dense(1)]
        )
        model.compile(optimizer="sgd", loss="mse")
        return model

    rng = np.random.default_rng(7)
    x = rng.random((33, 2048)).astype(np.float32)
    y = rng.random((33, 1)).astype(np.float32)
    steady = _train(build, x, y, lambda i: 1, monkeypatch, shuffle=False)
    switching = _train(build, x, y, lambda i: 1 + i % 2, monkeypatch, shuffle=False)
    for a, b in zip(steady, switching):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# product() is np.matmul
# ---------------------------------------------------------------------------------------


def test_a_cut_plan_with_out_aliasing_an_operand(monkeypatch):
    """np.matmul(a, b, out=a) copes with the overlap, and so must a cut, whose second
    product reads a[:, c:] after the first could have written its result there."""
    monkeypatch.setattr(_products, "_agrees", lambda a, b, ceiling: a.shape[1] == 768)
    a, b = operands((256, 784), (784, 784))
    expected = a @ b
    result = _products.product(a, b, out=a)
    assert list(_products._PLANS.values()) == [768]
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------
# The NumPy sums that replaced BLAS
# ---------------------------------------------------------------------------------------


def test_squared_norm_of_float16_squares_in_float32():
    """floatx may be float16: squared in float16, values below 6e-8 flush to zero and
    clipnorm would see half the norm**2 of 1e-4-sized gradients."""
    g = (1e-4 * np.random.default_rng(0).standard_normal(100_000)).astype(np.float16)
    expected = float((g.astype(np.float64) ** 2).sum())
    assert squared_norm(g) == pytest.approx(expected, rel=0.01)


def test_squared_norm_of_complex_values_is_the_norm():
    """|x|**2 summed, as np.vdot conjugating did: x * x of complex values is not it."""
    z = np.array([1 + 2j, 3 - 1j])
    assert squared_norm(z) == pytest.approx(15.0)


# ---------------------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [128, 129, 192, 448, 449, 512, 768, 784, 832, 1535, 4608])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_at_block_boundaries_rounds_the_same(k, dtype):
    a, b = operands((512, k), (k, 128), dtype=dtype, seed=k)  # shared by BLAS: planned
    one, two = both(lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    plan = _products._PLANS.get((a.dtype.char, b.dtype.char, 512, k, 128, "C", "C", 2))
    assert (plan is None) == (k <= _products.SMALL_K)
    assert plan in (None, _products.SAME, _products.PINNED) or (0 < plan < k and plan % 64 == 0)


@pytest.mark.parametrize("layouts", ["CC", "CF", "FC", "FF"])
def test_gemm_layouts_round_the_same(layouts):
    a, b = operands((200, 784), (784, 96), order_a=layouts[0], order_b=layouts[1])
    one, two = both(lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)


def test_broadcast_batched_and_strided_operands():
    a, b = operands((2, 1, 32, 784), (3, 784, 128))
    one, two = both(lambda: _products.product(a, b))
    np.testing.assert_array_equal(one, two)
    assert one.shape == np.matmul(a, b).shape == (2, 3, 32, 128)
    np.testing.assert_allclose(one, np.matmul(a, b), rtol=1e-5, atol=1e-4)
    x, y = operands((64, 1600), (800, 128))
    strided = x[:, ::2]  # neither C- nor F-contiguous: NumPy copies or loops itself
    one, two = both(lambda: _products.product(strided, y))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, strided @ y, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "dtype", [np.float16, np.int32, np.int64, np.bool_, np.complex64, np.complex128, object]
)
def test_other_dtypes_equal_matmul(dtype):
    rng = np.random.default_rng(1)
    a = np.asarray(rng.integers(-3, 4, (12, 200)), dtype=dtype)
    b = np.asarray(rng.integers(-3, 4, (200, 5)), dtype=dtype)
    result = _products.product(a, b)
    expected = np.matmul(a, b)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_empty_operands():
    empty = [((0, 784), (784, 128)), ((32, 784), (784, 0)), ((3, 0, 784), (784, 5))]
    for shape_a, shape_b in empty:
        a, b = operands(shape_a, shape_b)
        result = _products.product(a, b)
        assert result.shape == np.matmul(a, b).shape
    a = np.zeros((4, 0), np.float32)
    assert _products.product(a, np.zeros((0, 3), np.float32)).shape == (4, 3)


@pytest.mark.parametrize("plan", ["cut", "pinned", "same"])
@pytest.mark.parametrize("b_shape", [(700, 128), (800, 128), (3, 784, 128)])
def test_matmul_op_mismatch_raises_its_value_error_whatever_the_plan(plan, b_shape, monkeypatch):
    answers = {"cut": lambda a, b, c: a.shape[1] == 768, "pinned": lambda a, b, c: False}
    if plan in answers:
        monkeypatch.setattr(_products, "_agrees", answers[plan])
    a = np.ones((32, 784), np.float32)
    if len(b_shape) == 3:
        a = np.ones((2, 32, 784), np.float32)
        b_shape = (3, 784, 128)
    b = np.ones(b_shape, np.float32)
    with pytest.raises(ValueError, match="matmul: incompatible shapes"):
        tf.ops.matmul(a, b)
    assert cpu_threads.blas_threads() == 2  # a pinned failure restores BLAS' threads


def test_two_python_threads_planning_and_multiplying_at_once():
    a, b = operands((64, 784), (784, 128))
    c, d = operands((64, 1100), (1100, 96), dtype=np.float64, seed=1)
    reference = [
        on_threads(1, lambda x=x, y=y: _products.product(x, y)) for x, y in ((a, b), (c, d))
    ]
    _products.forget_plans()
    failures = []

    def work(x, y, want):
        for _ in range(20):
            got = _products.product(x, y)
            if not np.array_equal(got, want):
                failures.append(True)

    workers = [
        threading.Thread(target=work, args=(a, b, reference[0])),
        threading.Thread(target=work, args=(c, d, reference[1])),
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures
    assert cpu_threads.blas_threads() == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda g: g,
        lambda g: np.asfortranarray(g),
        lambda g: g[::-1],
        lambda g: g[:, ::2],
        lambda g: g[:1024],
        lambda g: g[:1023],
    ],
    ids=["C", "F", "reversed", "column-strided", "1024-rows", "1023-rows"],
)
@pytest.mark.parametrize("width", [1, 3, 7, 64, 1000, 1500])
def test_sum_rows_layouts_and_widths(make, width):
    g = make(np.random.default_rng(width).standard_normal((5000, 2 * width)))
    expected = g.sum(axis=0)
    np.testing.assert_allclose(sum_rows(g), expected, rtol=1e-10, atol=1e-9)
    one, two = both(lambda: sum_rows(g))
    np.testing.assert_array_equal(one, two)


def test_sum_rows_dtypes_and_empty():
    assert sum_rows(np.ones((5000, 3), np.int8)).tolist() == [5000] * 3  # upcast, no wrap
    assert (
        sum_rows(np.ones((5000, 3), np.int8)).dtype
        == np.add.reduce(np.ones((10, 3), np.int8), axis=0).dtype
    )
    assert sum_rows(np.ones((5000, 3), bool)).tolist() == [5000] * 3
    half = np.random.default_rng(0).standard_normal((100_000, 3)).astype(np.float16)
    assert sum_rows(half).dtype == np.float16
    np.testing.assert_allclose(sum_rows(half), half.astype(np.float64).sum(0), rtol=0.02, atol=2)
    assert sum_rows(np.zeros((5000, 0), np.float32)).shape == (0,)
    assert sum_rows(np.zeros((0, 5), np.float32)).tolist() == [0.0] * 5


def test_squared_norm_of_views_and_float64():
    x = np.random.default_rng(0).standard_normal((300, 200))
    for view in (x, x.T, x[::2, ::3]):
        assert squared_norm(view) == pytest.approx(float((view**2).sum()), rel=1e-12)
