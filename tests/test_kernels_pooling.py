"""The pooling and col2im kernels (csrc/pooling.c, csrc/col2im.c) against the NumPy paths
they replace (the shallow convolution and pooling of csrc/shallow.c: test_kernels_shallow.py).

Each case is tested twice. ``_native.kernels`` set to None forces the NumPy path, which is
checked against what the operation means (computed another way). The tests marked
``needs_kernels`` run the kernels and the NumPy path on the same inputs: they must give
the same bits, ties (first maximum wins), NaN and the helper thread's chunking included.
Without the kernels (``DENDRITE_NO_KERNELS=1``, or no C compiler at install time) those
are skipped (``tests/conftest.py``) and the NumPy half still runs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops import conv_pool, windows
from dendrite.ops.conv import conv, fused_conv
from dendrite.ops.pooling import max_pool


def _numpy(monkeypatch, run):
    """``run()`` on the NumPy paths."""
    monkeypatch.setattr(_native, "kernels", None)
    result = run()
    monkeypatch.undo()
    return result


def _both(monkeypatch, run):
    """``run()`` with the kernels, then with the NumPy paths."""
    assert _native.kernels is not None, "the kernels must be built for these tests"
    fast = run()
    return fast, _numpy(monkeypatch, run)


def _assert_same(a, b):
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
            continue
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


POOL_CASES = pytest.mark.parametrize(
    "relu, bias, places, dtype",
    list(itertools.product([False, True], [False, True], [2, 4, 9], [np.float32, np.float64])),
)


def _pool_input(dtype, places, bias):
    rng = np.random.default_rng(places)
    # small integers: many ties, where the first maximum must win; 70,001 x 4 is split
    # between the caller and the helper thread
    z = rng.integers(-3, 4, size=(places, 70_001, 4)).astype(dtype)
    z[:, 20:40] = rng.choice(np.array([0.0, -0.0], dtype), size=(places, 20, 4))
    z[rng.integers(0, places), 7, 2] = np.nan
    z[:, 11, 1] = np.nan
    b = rng.standard_normal(4).astype(dtype) if bias else None
    return z, b


@POOL_CASES
def test_pool_max_numpy_path_is_the_first_maximum(relu, bias, places, dtype, monkeypatch):
    z, b = _pool_input(dtype, places, bias)
    out, winner = _numpy(monkeypatch, lambda: conv_pool._pool(z, b, relu))
    expected = z.max(axis=0)  # NaN where a window holds one
    if b is not None:
        expected = expected + b
    if relu:
        expected = np.maximum(expected, 0)
    assert out.dtype == dtype and winner.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(out[7, 2]) and np.isnan(out[11, 1])
    # ties go to the first maximum, as np.argmax picks it (windows without a NaN)
    clean = ~np.isnan(z).any(axis=0)
    np.testing.assert_array_equal(winner[clean], np.argmax(z, axis=0)[clean])
    assert winner.max() < places


@POOL_CASES
@pytest.mark.needs_kernels
def test_pool_max_and_its_winners_match_numpy(relu, bias, places, dtype, monkeypatch):
    z, b = _pool_input(dtype, places, bias)
    fast, reference = _both(monkeypatch, lambda: conv_pool._pool(z, b, relu))
    _assert_same(fast, reference)
    # the same bits: zeros keep the same sign (np.maximum returns +0 for max(-0, +0))
    np.testing.assert_array_equal(np.signbit(fast[0]), np.signbit(reference[0]))
    assert np.isnan(fast[0][7, 2]) and np.isnan(fast[0][11, 1])


SCATTER_CASES = pytest.mark.parametrize(
    "relu, shape, dtype",
    # the last shape is split between the caller and the helper thread
    list(
        itertools.product(
            [False, True], [(7, 3), (300, 257), (1100, 257)], [np.float32, np.float64]
        )
    ),
)


def _scatter_input(dtype, shape, relu):
    rng = np.random.default_rng(0)
    g = rng.standard_normal(shape).astype(dtype)
    g[0, 0] = np.nan
    winner = rng.integers(0, 4, size=shape).astype(np.uint8)
    relu_out = None
    if relu:
        relu_out = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
        relu_out[1, 1] = np.nan
    return g, winner, relu_out


@SCATTER_CASES
def test_pool_scatter_numpy_path_routes_to_the_winner(relu, shape, dtype, monkeypatch):
    g, winner, relu_out = _scatter_input(dtype, shape, relu)
    masked, blocks = _numpy(monkeypatch, lambda: conv_pool._unpool(g, winner, 4, relu_out))
    assert masked.dtype == dtype and blocks.shape == (4, *shape) and blocks.dtype == dtype
    # the ReLU's VJP passes g where its output is > 0 (not at 0, nor at a NaN output)
    kept = np.ones(shape, bool) if relu_out is None else relu_out > 0
    finite = ~np.isnan(g)  # a NaN gradient times a zero mask stays NaN
    np.testing.assert_array_equal(masked[finite], np.where(kept, g, 0)[finite])
    for k in range(4):
        expected = np.where(kept & (winner == k), g, 0)
        np.testing.assert_array_equal(blocks[k][finite], expected[finite])
    assert np.isnan(blocks[winner[0, 0], 0, 0])


@SCATTER_CASES
@pytest.mark.needs_kernels
def test_pool_scatter_matches_numpy(relu, shape, dtype, monkeypatch):
    g, winner, relu_out = _scatter_input(dtype, shape, relu)
    fast, reference = _both(monkeypatch, lambda: conv_pool._unpool(g, winner, 4, relu_out))
    _assert_same(fast, reference)
    if relu:
        assert np.all(fast[0][(relu_out == 0) & ~np.isnan(g)] == 0)


COL2IM_CASES = [
    pytest.mark.parametrize(
        "x_shape, k_shape, strides, dilation, pool",
        [
            ((3, 13, 13, 4), (3, 3, 4, 6), (1, 1), (1, 1), (2, 2)),
            ((2, 17, 15, 3), (3, 2, 3, 5), (2, 1), (1, 2), (2, 3)),
            ((2, 12, 12, 8), (2, 2, 8, 4), (1, 1), (1, 1), (1, 1)),
            ((40, 13, 13, 40), (3, 3, 40, 8), (1, 1), (1, 1), (2, 2)),  # enough to split
        ],
    ),
    pytest.mark.parametrize("dtype", [np.float32, np.float64]),
]


def _col2im_cases(test):
    for mark in reversed(COL2IM_CASES):
        test = mark(test)
    return test


def _col2im_input(x_shape, k_shape, strides, dilation, pool, dtype):
    rng = np.random.default_rng(1)
    kh, kw, c, f = k_shape
    oh = (x_shape[1] - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (x_shape[2] - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    geom = windows.Geometry(kh, kw, *strides, *dilation, oh // pool[0], ow // pool[1])
    rows = pool[0] * pool[1] * x_shape[0] * geom.oh * geom.ow
    g2 = rng.standard_normal((rows, f)).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    return g2, kernel, geom


@_col2im_cases
def test_col2im_numpy_path_is_the_adjoint_of_im2col(
    x_shape, k_shape, strides, dilation, pool, dtype, monkeypatch
):
    g2, kernel, geom = _col2im_input(x_shape, k_shape, strides, dilation, pool, dtype)
    gx = _numpy(monkeypatch, lambda: windows.input_grad(g2, kernel, x_shape, geom, pool))
    assert gx.shape == x_shape and gx.dtype == dtype
    # <input_grad(G), x> = <G, im2col(x) K_2> for every x (in float64; x random)
    x = np.random.default_rng(2).standard_normal(x_shape)
    z = windows.im2col(x, geom, pool=pool) @ kernel.reshape(-1, k_shape[-1]).astype(np.float64)
    lhs = np.vdot(gx.astype(np.float64), x)
    rhs = np.vdot(g2.astype(np.float64), z)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert abs(lhs - rhs) <= tolerance * np.linalg.norm(gx) * np.linalg.norm(x)


@_col2im_cases
@pytest.mark.needs_kernels
def test_col2im_input_gradient_matches_numpy(
    x_shape, k_shape, strides, dilation, pool, dtype, monkeypatch
):
    g2, kernel, geom = _col2im_input(x_shape, k_shape, strides, dilation, pool, dtype)
    fast, reference = _both(
        monkeypatch, lambda: windows.input_grad(g2, kernel, x_shape, geom, pool)
    )
    _assert_same([fast], [reference])


def _conv_max_pool_run(dtype, relu, op=conv_pool.conv_max_pool):
    """A function that runs ``op`` (x, kernel, bias) and its backward, returning the value
    and the three gradients."""
    rng = np.random.default_rng(2)
    x_data = rng.integers(-2, 3, size=(6, 12, 12, 3)).astype(dtype)  # ties in the windows
    k_data = rng.integers(-1, 2, size=(3, 3, 3, 8)).astype(dtype)
    b_data = rng.standard_normal(8).astype(dtype)
    upstream = rng.standard_normal((6, 5, 5, 8)).astype(dtype)

    def run():
        x, k, b = (Tensor(a, requires_grad=True) for a in (x_data, k_data, b_data))
        out = op(x, k, b, relu=relu)
        out.backward(upstream)
        return [out.data, x.grad, k.grad, b.grad]

    return run


def _conv_then_max_pool(x, k, b, relu):
    return max_pool(fused_conv(x, k, b, relu=relu), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_max_pool_numpy_path_equals_the_unfused_ops(dtype, relu, monkeypatch):
    got = _numpy(monkeypatch, _conv_max_pool_run(dtype, relu))
    expected = _numpy(monkeypatch, _conv_max_pool_run(dtype, relu, _conv_then_max_pool))
    # the same value bits (integer convolutions); gradients summed in another order
    np.testing.assert_array_equal(got[0], expected[0])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(got[1:], expected[1:]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.needs_kernels
def test_conv_max_pool_values_and_gradients_match_numpy(dtype, relu, monkeypatch):
    # the im2col path (pool_max, pool_scatter, col2im); the shallow window's direct one,
    # csrc/shallow.c, sums in another order: tests/test_kernels_shallow.py
    monkeypatch.setattr(conv_pool, "SHALLOW_WIDTH", 0)
    fast = _conv_max_pool_run(dtype, relu)()
    monkeypatch.setattr(_native, "kernels", None)
    reference = _conv_max_pool_run(dtype, relu)()
    _assert_same(fast, reference)


def _plain_convolution():
    rng = np.random.default_rng(3)
    x_data = rng.standard_normal((4, 10, 10, 6)).astype(np.float32)
    k_data = rng.standard_normal((3, 3, 6, 5)).astype(np.float32)

    def run():
        x, k = Tensor(x_data, requires_grad=True), Tensor(k_data, requires_grad=True)
        y = conv(x, k, padding="same")
        y.backward(np.ones((4, 10, 10, 5), np.float32))
        return [x.grad, k.grad, y.data]

    return x_data, k_data, run


def test_plain_convolution_gradient_numpy_path(monkeypatch):
    x, k, run = _plain_convolution()
    gx, gk, y = _numpy(monkeypatch, run)
    # y is linear in x and in k: with an upstream of ones, <dL/dx, x> = <dL/dk, k> = sum(y)
    total = y.astype(np.float64).sum()
    scale = np.abs(y).astype(np.float64).sum()
    assert abs(np.vdot(gx.astype(np.float64), x) - total) <= 1e-5 * scale
    assert abs(np.vdot(gk.astype(np.float64), k) - total) <= 1e-5 * scale


@pytest.mark.needs_kernels
def test_plain_convolution_gradient_matches_numpy(monkeypatch):
    run = _plain_convolution()[2]
    fast, reference = _both(monkeypatch, run)
    _assert_same(fast, reference)


@pytest.mark.needs_kernels
def test_kernels_refuse_buffers_that_do_not_fit():
    kernels = _native.kernels
    z = np.zeros((4, 10, 3), np.float32)
    with pytest.raises(ValueError):
        kernels.pool_max(
            z, None, np.empty((10, 3), np.float64), np.empty((10, 3), np.uint8), 4, 3, False
        )
    with pytest.raises(ValueError):
        kernels.pool_max(
            z, None, np.empty((10, 3), np.float32), np.empty((9, 3), np.uint8), 4, 3, False
        )
    with pytest.raises(ValueError):
        kernels.pool_scatter(
            np.zeros(6, np.float32), np.zeros(6, np.uint8), np.empty(23, np.float32), 4
        )
    with pytest.raises(ValueError, match="go together"):
        g = np.zeros(6, np.float32)
        kernels.pool_scatter(g, np.zeros(6, np.uint8), np.empty(24, np.float32), 4, g)
    blocks = np.zeros((2 * 2 * 1 * 5 * 5, 3 * 3 * 2), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        # 5 x 5 pooled positions of a 3 x 3 kernel need a 12 x 12 input, not 11 x 11
        kernels.col2im(
            blocks,
            np.empty((1, 11, 11, 2), np.float32),
            (3, 3, 2, 2, 1, 5, 5, 2),
            (1, 1, 1, 1),
            (11, 11),
        )


class _NoKernelCalls:
    """Stands in for the kernels: any call fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the kernel {name} was called")


def test_a_bias_of_another_dtype_takes_the_numpy_path(monkeypatch):
    z = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    bias = np.array([1, 2, 3], np.uint8)
    monkeypatch.setattr(_native, "kernels", _NoKernelCalls())
    out, winner = conv_pool._pool(z, bias, True)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.maximum(z.max(axis=0) + bias, 0))
    np.testing.assert_array_equal(winner, np.argmax(z, axis=0))


@pytest.mark.needs_kernels
def test_a_bias_of_another_dtype_gives_the_same_with_the_kernels_loaded(monkeypatch):
    z = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    bias = np.array([1, 2, 3], np.uint8)
    fast, reference = _both(monkeypatch, lambda: conv_pool._pool(z, bias, True))
    _assert_same(fast, reference)


@pytest.mark.needs_kernels
def test_col2im_sizes_that_would_overflow_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        _native.kernels.col2im(
            np.empty(0, np.float32),
            np.empty(0, np.float32),
            (1, 1, 1, 1, 4, 1, 1, 2**62),
            (1, 1, 1, 1),
            (1, 1),
        )
    with pytest.raises(ValueError, match="do not fit"):
        _native.kernels.col2im(
            np.empty(0, np.float32),
            np.empty(0, np.float32),
            (1, 1, 1, 1, -1, 1, 1, 1),
            (1, 1, 1, 1),
            (1, 1),
        )
