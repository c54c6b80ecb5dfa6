"""The shallow convolution and max pooling of csrc/shallow.c against the im2col path it
replaces (ops/conv_pool.py, ConvMaxPool with ``SHALLOW_WIDTH = 0``).

The kernel sums each candidate directly, in another order than BLAS: values and gradients
agree within float rounding, and exactly where every sum is exact (small integers). The
pooling's rules (first maximum, NaN) and the winners it hands to the input gradient are
the im2col path's. Without the kernels (``DENDRITE_NO_KERNELS=1``) only the tests that
check which path is taken run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dendrite as dn
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops import conv_pool
from dendrite.ops.conv_pool import conv_max_pool

needs_kernels = pytest.mark.needs_kernels


def _run(x, kernel, bias, upstream, **options):
    """(value, dL/dx, dL/dK, dL/db) of conv_max_pool, as NumPy arrays (None: no bias)."""
    xt = Tensor(x, requires_grad=True)
    kt = Tensor(kernel, requires_grad=True)
    bt = None if bias is None else Tensor(bias, requires_grad=True)
    out = conv_max_pool(xt, kt, bt, **options)
    out.backward(upstream(out.shape))
    return [out.data, xt.grad, kt.grad, None if bt is None else bt.grad]


def _both(monkeypatch, *args, **options):
    """``_run`` by csrc/shallow.c, then by the im2col path."""
    assert _native.kernels is not None
    fast = _run(*args, **options)
    with monkeypatch.context() as patch:
        patch.setattr(conv_pool, "SHALLOW_WIDTH", 0)
        reference = _run(*args, **options)
    return fast, reference


def _upstream(dtype, seed=5):
    return lambda shape: np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(fast, reference, dtype):
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(fast, reference):
        if a is None or b is None:
            assert a is None and b is None
            continue
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        scale = max(1.0, float(np.max(np.abs(b))))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


GEOMETRIES = list(
    itertools.product(
        [(3, 11, 12, 1), (2, 9, 10, 3)],  # x: one channel; three
        [(3, 3), (2, 1), (5, 5)],  # kernel size
        [2, (2, 3), 3],  # pool
        [(1, 1), (2, 2)],  # strides, dilation
        ["valid", "same"],
    )
)


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, size, pool, steps, padding", GEOMETRIES)
def test_values_and_gradients_match_the_im2col_path(
    x_shape, size, pool, steps, padding, dtype, monkeypatch
):
    rng = np.random.default_rng(sum(x_shape) + size[0])
    strides, dilation = steps if padding == "valid" else (1, steps[1])
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal((*size, x_shape[-1], 37)).astype(dtype)  # 2 vectors + a tail
    bias = rng.standard_normal(37).astype(dtype)
    options = dict(
        strides=strides, padding=padding, dilation_rate=dilation, pool_size=pool, relu=True
    )
    try:
        fast, reference = _both(monkeypatch, x, kernel, bias, _upstream(dtype), **options)
    except ValueError as error:  # the geometry leaves no pooled output: both refuse it
        assert "does not fit" in str(error) or "pool size" in str(error)
        return
    _close(fast, reference, dtype)


@needs_kernels
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("filters", [1, 16, 70])
def test_exact_sums_give_the_same_bits(relu, bias, filters, monkeypatch):
    """Small integers: every candidate is exact in both paths, so the values, the winners
    (many ties: the first maximum wins) and the input gradient that they route are the
    same bits; the kernel and bias gradients are sums of the upstream in another order."""
    rng = np.random.default_rng(filters)
    x = rng.integers(-2, 3, size=(4, 10, 10, 2)).astype(np.float32)
    kernel = rng.integers(-1, 2, size=(3, 3, 2, filters)).astype(np.float32)
    b = rng.integers(-2, 3, size=filters).astype(np.float32) if bias else None
    fast, reference = _both(
        monkeypatch, x, kernel, b, _upstream(np.float32), pool_size=2, relu=relu
    )
    np.testing.assert_array_equal(fast[0], reference[0])
    np.testing.assert_array_equal(fast[1], reference[1])
    _close(fast[2:], reference[2:], np.float32)


@needs_kernels
def test_one_dimensional_input(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 30, 4)).astype(np.float32)
    kernel = rng.standard_normal((5, 4, 24)).astype(np.float32)
    fast, reference = _both(
        monkeypatch, x, kernel, None, _upstream(np.float32), pool_size=3, padding="causal"
    )
    _close(fast, reference, np.float32)


@needs_kernels
def test_nan_and_infinity_follow_the_pooling_rules(monkeypatch):
    """A NaN candidate wins its window and stays; an infinite upstream spreads NaN into the
    kernel gradient as the im2col path's products do."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 8, 1)).astype(np.float32)
    x[0, 2, 3, 0] = np.nan
    x[1, 5, 5, 0] = np.inf
    kernel = rng.standard_normal((3, 3, 1, 20)).astype(np.float32)

    def upstream(shape):
        g = np.ones(shape, np.float32)
        g[1, 0, 0, 3] = np.inf
        return g

    fast, reference = _both(monkeypatch, x, kernel, None, upstream, relu=True)
    for a, b in zip(fast[:3], reference[:3]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(b)
        np.testing.assert_allclose(a[finite], b[finite], rtol=2e-5, atol=1e-4)
    assert np.isnan(fast[0]).any() and np.isnan(fast[2]).any()


@needs_kernels
def test_helper_thread_does_not_change_a_bit():
    """The kernel gradient is summed by fixed blocks of samples, whichever thread runs them:
    one thread and two give the same bits (a batch large enough to be split)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 28, 28, 1)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 1, 32)).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32)
    kernels = _native.kernels
    before = kernels.threads()
    try:
        results = []
        for threads in (1, 2, 1):
            kernels.set_threads(threads)
            results.append(_run(x, kernel, bias, _upstream(np.float32), relu=True))
    finally:
        kernels.set_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@needs_kernels
def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 7, 2))
    kernel = rng.standard_normal((3, 3, 2, 5))
    bias = rng.standard_normal(5)
    weights = rng.standard_normal((2, 2, 2, 5))

    def loss(x, kernel, bias):
        out = conv_max_pool(Tensor(x), Tensor(kernel), Tensor(bias), padding="same", pool_size=3)
        return float((out.data * weights).sum())

    _, gx, gk, gb = _run(x, kernel, bias, lambda shape: weights, padding="same", pool_size=3)
    eps = 1e-6
    for array, grad in ((x, gx), (kernel, gk), (bias, gb)):
        for index in list(np.ndindex(array.shape))[::3]:
            saved = array[index]
            array[index] = saved + eps
            up = loss(x, kernel, bias)
            array[index] = saved - eps
            down = loss(x, kernel, bias)
            array[index] = saved
            assert abs((up - down) / (2 * eps) - grad[index]) < 1e-6


@needs_kernels
def test_a_cnn_trains_as_with_the_im2col_path(monkeypatch):
    """The document's kind of image model (one channel in, Conv2D + MaxPooling2D first):
    the same losses epoch by epoch, within float rounding, on either path."""

    def train():
        dn.keras.utils.set_random_seed(0)
        model = dn.keras.Sequential(
            [
                dn.keras.Input((12, 12, 1)),
                dn.keras.layers.Conv2D(16, 3, activation="relu"),
                dn.keras.layers.MaxPooling2D(),
                dn.keras.layers.Flatten(),
                dn.keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((96, 12, 12, 1)).astype(np.float32)
        y = (x[:, :6].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
        history = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
        return history.history["loss"]

    shallow = train()
    monkeypatch.setattr(conv_pool, "SHALLOW_WIDTH", 0)
    im2col = train()
    np.testing.assert_allclose(shallow, im2col, rtol=1e-4)
    assert shallow[-1] < shallow[0]


def test_which_windows_are_shallow():
    x = np.zeros((2, 9, 9, 3), np.float32)
    small = np.zeros((27, 8), np.float32)
    usable = _native.kernels is not None
    assert conv_pool._shallow(x, small, None, (2, 2)) == usable
    assert not conv_pool._shallow(x[:0], small, None, (2, 2))  # an empty batch
    deep = np.zeros((conv_pool.SHALLOW_WIDTH + 1, 8), np.float32)
    assert not conv_pool._shallow(x, deep, None, (2, 2))
    assert not conv_pool._shallow(x, small.astype(np.float64), None, (2, 2))
    assert not conv_pool._shallow(x, small, np.zeros(8, np.float64), (2, 2))
    many_places = (8, 8)  # 27 x 64 values: more than SHALLOW_VALUES
    assert not conv_pool._shallow(x, small, None, many_places)
    many_filters = np.zeros((27, conv_pool.SHALLOW_CANDIDATES // 4 + 1), np.float32)
    assert not conv_pool._shallow(x, many_filters, None, (2, 2))  # filters x places


def test_an_empty_batch_takes_the_im2col_path():
    x = Tensor(np.zeros((0, 8, 8, 1), np.float32), requires_grad=True)
    kernel = Tensor(np.ones((3, 3, 1, 4), np.float32), requires_grad=True)
    out = conv_max_pool(x, kernel, relu=True)
    assert out.shape == (0, 3, 3, 4)
    out.backward(np.zeros(out.shape, np.float32))
    np.testing.assert_array_equal(kernel.grad, np.zeros((3, 3, 1, 4), np.float32))


@needs_kernels
def test_the_kernel_refuses_what_it_cannot_index():
    kernels = _native.kernels
    x = np.zeros((1, 6, 6, 1), np.float32)
    out = np.zeros((1, 2, 2, 4), np.float32)
    winner = np.zeros((1, 2, 2, 4), np.uint8)
    steps = (1, 1, 1, 1, 0, 0)
    k2 = np.zeros((9, 4), np.float32)
    with pytest.raises(ValueError, match="bad pool window"):
        kernels.shallow_pool_forward(
            x, k2, None, out, winner, False, (1, 6, 6, 1, 4, 3, 3, 2, 2), steps, (0, 2)
        )
    deep = np.zeros((300, 4), np.float32)  # 10 x 10 x 3: deeper than the kernel takes
    with pytest.raises(ValueError, match="too deep"):
        kernels.shallow_pool_forward(
            np.zeros((1, 12, 12, 3), np.float32),
            deep,
            None,
            out,
            winner,
            False,
            (1, 12, 12, 3, 4, 10, 10, 2, 2),
            steps,
            (1, 1),
        )
    with pytest.raises(ValueError, match="uint8"):
        kernels.shallow_pool_forward(
            x,
            k2,
            None,
            out,
            winner.astype(np.int32),
            False,
            (1, 6, 6, 1, 4, 3, 3, 2, 2),
            steps,
            (2, 2),
        )
