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
from dendrite.ops import conv_pool, windows
from dendrite.ops.conv_pool import conv_max_pool
from dendrite.ops.windows import Geometry
from dendrite.testing import assert_paths_agree, assert_same_on_any_kernel_threads

needs_kernels = pytest.mark.needs_kernels


def _run(x, kernel, bias, upstream, needs=(True, True, True), **options):
    """(value, dL/dx, dL/dK, dL/db) of conv_max_pool, as NumPy arrays (None: no bias, or
    no gradient asked for by ``needs``)."""
    xt = Tensor(x, requires_grad=needs[0])
    kt = Tensor(kernel, requires_grad=needs[1])
    bt = None if bias is None else Tensor(bias, requires_grad=needs[2])
    out = conv_max_pool(xt, kt, bt, **options)
    out.backward(upstream(out.shape))
    return [out.data, xt.grad, kt.grad, None if bt is None else bt.grad]


def _im2col(monkeypatch, *args, **options):
    """``_run`` by the im2col path."""
    with monkeypatch.context() as patch:
        patch.setattr(conv_pool, "SHALLOW_WIDTH", 0)
        return _run(*args, **options)


def _both(monkeypatch, *args, **options):
    """``_run`` by csrc/shallow.c, then by the im2col path."""
    assert _native.kernels is not None
    return _run(*args, **options), _im2col(monkeypatch, *args, **options)


def _upstream(dtype, seed=5):
    return lambda shape: np.random.default_rng(seed).standard_normal(shape).astype(dtype)


_close = assert_paths_agree


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
@pytest.mark.parametrize(
    "x_shape, k_shape, pool, dtype",
    [
        ((64, 28, 28, 1), (3, 3, 1, 32), 2, np.float32),
        ((37, 30, 29, 3), (3, 3, 3, 21), (3, 2), np.float64),  # an odd batch, a tail of filters
    ],
)
def test_helper_thread_does_not_change_a_bit(x_shape, k_shape, pool, dtype):
    """The kernel gradient is summed by fixed blocks of samples, whichever thread runs them:
    one thread and two give the same bits (batches large enough to be split)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[-1]).astype(dtype)
    assert_same_on_any_kernel_threads(
        lambda: _run(x, kernel, bias, _upstream(dtype), pool_size=pool, relu=True)
    )


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


def _choice(x, k2, bias, pool, size=3):
    """Whether a size x size 'valid' convolution with stride 1 and ``pool`` is shallow."""
    oh, ow = x.shape[1] - size + 1, x.shape[2] - size + 1
    geom = Geometry(size, size, 1, 1, 1, 1, oh // pool[0], ow // pool[1])
    return conv_pool._shallow_args(x, k2, bias, ((0, 0), (0, 0)), geom, pool) is not None


def test_which_windows_are_shallow():
    x = np.zeros((2, 20, 20, 3), np.float32)
    small = np.zeros((27, 8), np.float32)
    usable = _native.kernels is not None
    assert _choice(x, small, None, (2, 2)) == usable
    assert not _choice(x[:0], small, None, (2, 2))  # an empty batch
    deep = np.zeros((conv_pool.SHALLOW_WIDTH + 1, 8), np.float32)
    assert not _choice(x, deep, None, (2, 2))
    assert not _choice(x, small.astype(np.float64), None, (2, 2))
    assert not _choice(x, small, np.zeros(8, np.float64), (2, 2))
    assert not _choice(x, small, None, (8, 8))  # 27 x 64 values: more than SHALLOW_VALUES
    many_filters = np.zeros((27, conv_pool.SHALLOW_CANDIDATES // 4 + 1), np.float32)
    assert not _choice(x, many_filters, None, (2, 2))  # filters x places
    wide = np.zeros((1, 3, (1 << 24) + 3, 1), np.float32)  # wider than the C kernels take
    assert not _choice(wide, np.zeros((9, 2), np.float32), None, (1, 1))


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
    # 10 x 10 x 3 values in each of 4 places: more than the kernel's scratch holds
    deep = np.zeros((300, 4), np.float32)
    with pytest.raises(ValueError, match="too deep"):
        kernels.shallow_pool_forward(
            np.zeros((1, 20, 20, 3), np.float32),
            deep,
            None,
            out,
            winner,
            False,
            (1, 20, 20, 3, 4, 10, 10, 2, 2),
            steps,
            (2, 2),
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


@needs_kernels
def test_a_stride_over_2_24_takes_the_im2col_path():
    """A stride above what the C kernels take (2**24) falls back to the im2col path."""
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1)
    kernel = np.ones((1, 1, 2), np.float32)
    out = conv_max_pool(Tensor(x), Tensor(kernel), strides=2**25, pool_size=1)
    np.testing.assert_array_equal(out.data, [[[1.0, 1.0]]])


# --- limits, gradients asked for, layouts (from an independent review) ----------------

LIMIT_CASES = [
    # width 75 (5x5x3) with 12 places: 900 window values
    ((2, 17, 16, 3), (5, 5, 3, 20), dict(pool_size=(3, 4))),
    # 227 filters x 9 places = 2,043 candidates, F not a multiple of 8 or 16
    ((2, 12, 12, 1), (3, 3, 1, 227), dict(pool_size=3)),
    # exactly SHALLOW_CANDIDATES, 'same' padding with strides
    ((2, 9, 9, 1), (3, 3, 1, 512), dict(pool_size=2, padding="same", strides=2)),
    ((1, 5, 5, 2), (2, 2, 2, 2048), dict(pool_size=1)),
    # 256 places (the uint8 winner's limit), explicit padding
    ((2, 8, 8, 3), (1, 1, 3, 7), dict(pool_size=(16, 16), padding=[(4, 4), (4, 4)])),
    # pool (3, 2), strides and dilations > 1, odd sizes the pooling does not cover
    ((2, 20, 21, 1), (2, 3, 1, 9), dict(pool_size=(3, 2), strides=(3, 2), dilation_rate=(2, 3))),
    # 1-D, causal, dilated; width 75 in 1-D
    ((3, 17, 1), (7, 1, 5), dict(pool_size=1, padding="causal", dilation_rate=3)),
    ((2, 30, 3), (25, 3, 81), dict(pool_size=12, padding="same", strides=2)),
]


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, k_shape, options", LIMIT_CASES)
def test_limits_match_the_im2col_path(x_shape, k_shape, options, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[-1]).astype(dtype)
    chosen = []
    decide = conv_pool._shallow_args
    monkeypatch.setattr(
        conv_pool, "_shallow_args", lambda *a: chosen.append(decide(*a)) or chosen[-1]
    )
    for relu in (False, True):
        fast = _run(x, kernel, bias, _upstream(dtype), relu=relu, **options)
        reference = _im2col(monkeypatch, x, kernel, bias, _upstream(dtype), relu=relu, **options)
        _close(fast, reference, dtype, slack=10)
    assert chosen[0]  # the shallow path was taken


@needs_kernels
@pytest.mark.parametrize(
    "needs", [(True, False, False), (False, True, False), (False, False, True), (True, True, False)]
)
def test_needs_grad_combinations(needs, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 11, 10, 2))
    kernel = rng.standard_normal((3, 2, 2, 17))
    bias = rng.standard_normal(17)
    options = dict(pool_size=(3, 2), padding="same", relu=True)
    fast = _run(x, kernel, bias, _upstream(np.float64), needs=needs, **options)
    reference = _im2col(monkeypatch, x, kernel, bias, _upstream(np.float64), needs=needs, **options)
    for grad, need in zip(fast[1:], needs):
        assert (grad is None) == (not need)
    _close(fast, reference, np.float64, slack=10)


@needs_kernels
def test_views_read_only_and_mixed_upstream(monkeypatch):
    """A strided (non-contiguous) input takes the im2col path; a read-only one and a
    float64 upstream gradient for float32 outputs go through the shallow path."""
    rng = np.random.default_rng(4)
    big = rng.standard_normal((2, 18, 9, 2)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 1, 19)).astype(np.float32)
    bias = rng.standard_normal(19).astype(np.float32)
    strided = big[:, ::2, :, :1]
    read_only = np.ascontiguousarray(strided)
    read_only.flags.writeable = False
    for x in (strided, read_only):
        fast = _run(x, kernel, bias, _upstream(np.float64), relu=True)
        reference = _im2col(monkeypatch, x, kernel, bias, _upstream(np.float64), relu=True)
        assert all(a.dtype == np.float32 for a in fast)
        _close(fast, reference, np.float32, slack=10)


@needs_kernels
def test_col2im_kernel_and_numpy_same_bits_random_geometries(monkeypatch):
    """The reordered sums (pool place outermost; rows backwards in C) stay bit-identical,
    with values of very different magnitudes so that any change of order shows."""
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 300:
        dtype = (np.float32, np.float64)[checked % 2]
        kh, kw, sh, sw, dh, dw = (int(v) for v in rng.integers(1, 4, 6))
        ph, pw = (int(v) for v in rng.integers(1, 4, 2))
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 10))
        hp = int(rng.integers((kh - 1) * dh + 1, 20))
        wp = int(rng.integers((kw - 1) * dw + 1, 20))
        oh = (hp - (kh - 1) * dh - 1) // sh + 1
        ow = (wp - (kw - 1) * dw - 1) // sw + 1
        if oh < ph or ow < pw:
            continue
        geom = windows.Geometry(kh, kw, sh, sw, dh, dw, oh // ph, ow // pw)
        rows, width = ph * pw * n * geom.oh * geom.ow, kh * kw * c
        scale = 10.0 ** rng.integers(-4, 5, (1, width))
        cols = (rng.standard_normal((rows, width)) * scale).astype(dtype)
        shape = (n, hp, wp, c)
        fast = windows.col2im(cols, shape, geom, (ph, pw))
        with monkeypatch.context() as patch:
            patch.setattr(_native, "kernels", None)
            reference = windows.col2im(cols, shape, geom, (ph, pw))
        assert fast.tobytes() == reference.tobytes(), (geom, (ph, pw), shape, dtype)
        checked += 1


@needs_kernels
def test_nan_inf_everywhere_matches_the_im2col_path(monkeypatch):
    """Small integers (exact sums) with NaN and +-inf in x, kernel, bias and upstream: the
    values and dL/dx (routed by the winners) are the same bits; dL/dK and dL/db have NaN
    in the same places."""
    rng = np.random.default_rng(6)
    for trial in range(40):
        dtype = (np.float32, np.float64)[trial % 2]
        x = rng.integers(-2, 3, (2, 9, 9, 2)).astype(dtype)
        kernel = rng.integers(-1, 2, (3, 3, 2, 19)).astype(dtype)
        bias = rng.integers(-2, 3, 19).astype(dtype)
        g = rng.integers(-2, 3, (2, 4, 4, 19)).astype(dtype)
        for array in (x, kernel, bias, g):
            mask = rng.random(array.shape) < 0.02
            array[mask] = rng.choice([np.nan, np.inf, -np.inf], int(mask.sum()))
        options = dict(pool_size=2, relu=bool(trial % 3), padding="same")
        with np.errstate(all="ignore"):
            fast = _run(x, kernel, bias, lambda shape, g=g: g, **options)
            reference = _im2col(monkeypatch, x, kernel, bias, lambda shape, g=g: g, **options)
        np.testing.assert_array_equal(fast[0], reference[0])
        np.testing.assert_array_equal(fast[1], reference[1])
        for a, b in zip(fast[2:], reference[2:]):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            finite = ~np.isnan(b)
            np.testing.assert_allclose(a[finite], b[finite])


@needs_kernels
def test_a_depthwise_stride_over_2_24_takes_the_numpy_path():
    """The same limit for csrc/depthwise.c, which used to raise "bad sizes or steps"."""
    from dendrite.ops.conv import depthwise_conv

    x = Tensor(np.arange(1, 9, dtype=np.float32).reshape(1, 4, 2), requires_grad=True)
    kernel = Tensor(np.full((1, 2, 1), 2, np.float32), requires_grad=True)
    out = depthwise_conv(x, kernel, strides=2**25)
    np.testing.assert_array_equal(out.data, [[[2.0, 4.0]]])
    out.backward(np.ones(out.shape, np.float32))
    np.testing.assert_array_equal(x.grad[0, 0], [2.0, 2.0])
    np.testing.assert_array_equal(kernel.grad.ravel(), [1.0, 2.0])
