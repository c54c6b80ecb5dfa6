"""Sums that do not depend on BLAS' threads (dendrite.ops._products, sum_rows,
squared_norm): the thread governor switches between one thread and all while a model
trains, and a seeded run must still reproduce exactly."""

from __future__ import annotations

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
    cpu_threads.blas_threads(2)
    _products.forget_plans()
    yield
    _products.forget_plans()
    cpu_threads.reset()


def on_threads(threads: int, compute):
    with cpu_threads.blas_pinned_to(threads):
        return compute()


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
    a = rng.standard_normal((32, 784)).astype(np.float32)
    b = rng.standard_normal((784, 128)).astype(np.float32)
    monkeypatch.setattr(_products, "_agrees", lambda a, b, ceiling: a.shape[1] == 768)
    cut = _products.product(a, b)
    assert list(_products._PLANS.values()) == [768]
    np.testing.assert_array_equal(cut, a[:, :768] @ b[:768] + a[:, 768:] @ b[768:])

    _products.forget_plans()
    monkeypatch.setattr(_products, "_agrees", lambda a, b, ceiling: False)
    seen = []
    real_matmul = np.matmul

    def spying_matmul(*args, **kwargs):
        seen.append(cpu_threads.blas_threads())
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(_products.np, "matmul", spying_matmul)
    pinned = _products.product(a, b)
    monkeypatch.setattr(_products.np, "matmul", real_matmul)
    assert list(_products._PLANS.values()) == [_products.PINNED]
    assert seen == [1] and cpu_threads.blas_threads() == 2  # one thread, then back
    np.testing.assert_allclose(pinned, a @ b, rtol=1e-5, atol=1e-4)


def test_fixed_threads_go_straight_to_numpy(monkeypatch):
    tf.config.set_num_threads(2)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((32, 784)).astype(np.float32)
    b = rng.standard_normal((784, 128)).astype(np.float32)
    assert cpu_threads.switching() == 0
    np.testing.assert_array_equal(_products.product(a, b), a @ b)
    assert not _products._PLANS


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


def _train(build, x, y, threads_per_step, monkeypatch) -> list[np.ndarray]:
    """Fit with the governor replaced by one that runs step i on threads_per_step(i)."""
    steps = iter(range(10**6))

    def begin(self):
        cpu_threads.apply(threads_per_step(next(steps)))
        return -1.0

    monkeypatch.setattr(cpu_threads.ThreadGovernor, "begin", begin)
    _products.forget_plans()
    tf.keras.utils.set_random_seed(0)
    model = build()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
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


@pytest.mark.parametrize(
    "build, x_shape, targets",
    [
        (_document_model, (320, 784), "classes"),
        (_transposed_conv_model, (96, 14, 14, 8), "images"),
    ],
    ids=["document_mlp", "conv_transpose_clipnorm"],
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
