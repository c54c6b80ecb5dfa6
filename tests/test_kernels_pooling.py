"""The compiled pooling and col2im kernels against the NumPy paths they replace.

``_native.kernels`` set to None forces the NumPy path; the kernels must give the same
bits, ties (first maximum wins), NaN and the helper thread's chunking included.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops import conv_pool, windows
from dendrite.ops.conv import conv


def _both(monkeypatch, run):
    """``run()`` with the kernels, then with the NumPy paths."""
    assert _native.kernels is not None, "the kernels must be built for these tests"
    fast = run()
    monkeypatch.setattr(_native, "kernels", None)
    reference = run()
    monkeypatch.undo()
    return fast, reference


def _assert_same(a, b):
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
            continue
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("places", [2, 4, 9])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_pool_max_and_its_winners_match_numpy(dtype, places, bias, relu, monkeypatch):
    rng = np.random.default_rng(places)
    # small integers: many ties, where the first maximum must win; 70,001 x 4 is split
    # between the caller and the helper thread
    z = rng.integers(-3, 4, size=(places, 70_001, 4)).astype(dtype)
    z[:, 20:40] = rng.choice(np.array([0.0, -0.0], dtype), size=(places, 20, 4))
    z[rng.integers(0, places), 7, 2] = np.nan
    z[:, 11, 1] = np.nan
    b = rng.standard_normal(4).astype(dtype) if bias else None
    fast, reference = _both(monkeypatch, lambda: conv_pool._pool(z, b, relu))
    _assert_same(fast, reference)
    # the same bits: zeros keep the same sign (np.maximum returns +0 for max(-0, +0))
    np.testing.assert_array_equal(np.signbit(fast[0]), np.signbit(reference[0]))
    assert np.isnan(fast[0][7, 2]) and np.isnan(fast[0][11, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 3), (300, 257), (1100, 257)])  # the last one is split
@pytest.mark.parametrize("relu", [False, True])
def test_pool_scatter_matches_numpy(dtype, shape, relu, monkeypatch):
    rng = np.random.default_rng(0)
    g = rng.standard_normal(shape).astype(dtype)
    g[0, 0] = np.nan
    winner = rng.integers(0, 4, size=shape).astype(np.uint8)
    relu_out = None
    if relu:
        relu_out = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
        relu_out[1, 1] = np.nan
    fast, reference = _both(monkeypatch, lambda: conv_pool._unpool(g, winner, 4, relu_out))
    _assert_same(fast, reference)
    if relu:
        assert np.all(fast[0][(relu_out == 0) & ~np.isnan(g)] == 0)


@pytest.mark.parametrize(
    "x_shape, k_shape, strides, dilation, pool",
    [
        ((3, 13, 13, 4), (3, 3, 4, 6), (1, 1), (1, 1), (2, 2)),
        ((2, 17, 15, 3), (3, 2, 3, 5), (2, 1), (1, 2), (2, 3)),
        ((2, 12, 12, 8), (2, 2, 8, 4), (1, 1), (1, 1), (1, 1)),
        ((40, 13, 13, 40), (3, 3, 40, 8), (1, 1), (1, 1), (2, 2)),  # enough to split
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col2im_input_gradient_matches_numpy(
    x_shape, k_shape, strides, dilation, pool, dtype, monkeypatch
):
    rng = np.random.default_rng(1)
    kh, kw, c, f = k_shape
    oh = (x_shape[1] - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (x_shape[2] - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    geom = windows.Geometry(kh, kw, *strides, *dilation, oh // pool[0], ow // pool[1])
    rows = pool[0] * pool[1] * x_shape[0] * geom.oh * geom.ow
    g2 = rng.standard_normal((rows, f)).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    fast, reference = _both(
        monkeypatch, lambda: windows.input_grad(g2, kernel, x_shape, geom, pool)
    )
    _assert_same([fast], [reference])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_max_pool_values_and_gradients_match_numpy(dtype, relu, monkeypatch):
    rng = np.random.default_rng(2)
    x_data = rng.integers(-2, 3, size=(6, 12, 12, 3)).astype(dtype)  # ties in the windows
    k_data = rng.integers(-1, 2, size=(3, 3, 3, 8)).astype(dtype)
    b_data = rng.standard_normal(8).astype(dtype)
    upstream = rng.standard_normal((6, 5, 5, 8)).astype(dtype)

    def run():
        x, k, b = (Tensor(a, requires_grad=True) for a in (x_data, k_data, b_data))
        out = conv_pool.conv_max_pool(x, k, b, relu=relu)
        out.backward(upstream)
        return [out.data, x.grad, k.grad, b.grad]

    fast, reference = _both(monkeypatch, run)
    _assert_same(fast, reference)


def test_plain_convolution_gradient_matches_numpy(monkeypatch):
    rng = np.random.default_rng(3)
    x_data = rng.standard_normal((4, 10, 10, 6)).astype(np.float32)
    k_data = rng.standard_normal((3, 3, 6, 5)).astype(np.float32)

    def run():
        x, k = Tensor(x_data, requires_grad=True), Tensor(k_data, requires_grad=True)
        conv(x, k, padding="same").backward(np.ones((4, 10, 10, 5), np.float32))
        return [x.grad, k.grad]

    fast, reference = _both(monkeypatch, run)
    _assert_same(fast, reference)


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


def test_a_bias_of_another_dtype_takes_the_numpy_path(monkeypatch):
    z = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    bias = np.array([1, 2, 3], np.uint8)
    fast, reference = _both(monkeypatch, lambda: conv_pool._pool(z, bias, True))
    _assert_same(fast, reference)


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
