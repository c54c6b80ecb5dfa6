"""The Winograd F(2x2, 3x3) convolution, with 2x2 max pooling (ops/conv_pool.py's
ConvMaxPool) and without (ops/conv.py's Conv), by ops/winograd.py and csrc/winograd.c,
against the paths it replaces (``winograd.MIN_CHANNELS`` out of reach: im2col, or narrow.c
for few filters).

The transforms add and subtract before and after the products, so values and gradients
agree with the direct sums within float rounding (scaled by the largest term), not bit
for bit. The pooling's rules (first maximum, NaN) and the winners are the im2col path's
wherever the values are. Without the kernels (``DENDRITE_NO_KERNELS=1``) only the tests
of which path is taken run.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dendrite as dn
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops import conv_pool, winograd
from dendrite.ops.conv import fused_conv
from dendrite.ops.conv_pool import conv_max_pool
from dendrite.ops.windows import Geometry
from dendrite.testing import (
    assert_paths_agree,
    assert_same_on_any_kernel_threads,
    gradcheck,
)

needs_kernels = pytest.mark.needs_kernels


def _run(x, kernel, bias, upstream, needs=(True, True, True), op=conv_max_pool, **options):
    """(value, dL/dx, dL/dK, dL/db) of ``op`` (conv_max_pool, or fused_conv) as NumPy arrays
    (None: no bias, or no gradient asked for by ``needs``)."""
    xt = Tensor(x, requires_grad=needs[0])
    kt = Tensor(kernel, requires_grad=needs[1])
    bt = None if bias is None else Tensor(bias, requires_grad=needs[2])
    out = op(xt, kt, bt, **options)
    out.backward(upstream(out.shape))
    return [out.data, xt.grad, kt.grad, None if bt is None else bt.grad]


def _im2col(monkeypatch, *args, **options):
    """``_run`` by the im2col path."""
    with monkeypatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
        return _run(*args, **options)


def _both(monkeypatch, *args, **options):
    """``_run`` by the Winograd path (checked to be the one taken), then by im2col."""
    x, kernel, bias = args[:3]
    assert _takes_winograd(x, kernel, bias, options)
    return _run(*args, **options), _im2col(monkeypatch, *args, **options)


def _takes_winograd(x, kernel, bias, options, pooled=True) -> bool:
    """Whether conv_max_pool (``pooled``) or fused_conv takes the Winograd path for a 3x3
    'valid' or 'same' convolution with these arguments."""
    padding = options.get("padding", "valid")
    pads = ((1, 1), (1, 1)) if padding == "same" else ((0, 0), (0, 0))
    oh, ow = x.shape[1] + sum(pads[0]) - 2, x.shape[2] + sum(pads[1]) - 2
    k2 = kernel.reshape(-1, kernel.shape[-1])
    if not pooled:
        geom = Geometry(3, 3, 1, 1, 1, 1, oh, ow)
        return winograd.conv_winograd_args(x, k2, bias, pads, geom) is not None
    geom = Geometry(3, 3, 1, 1, 1, 1, oh // 2, ow // 2)
    shallow = conv_pool._shallow_args(x, k2, bias, pads, geom, (2, 2))  # taken first
    return shallow is None and winograd.winograd_args(x, k2, bias, pads, geom, (2, 2)) is not None


def _upstream(dtype, seed=5):
    return lambda shape: np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(fast, reference, dtype):
    """Within float rounding of the largest term: the transforms add up to 4 x 4 inputs
    and outputs before and after the products."""
    assert_paths_agree(fast, reference, dtype, float32_rtol=1e-5)


GEOMETRIES = list(
    itertools.product(
        # 9 channels: the fewest Winograd takes with pooling (shallow.c takes 8)
        [(2, 13, 13, 32), (3, 10, 11, 9), (1, 6, 7, 19), (2, 4, 4, 12)],
        [64, 8, 37],  # filters: whole vectors, the fewest taken, a tail
        ["valid", "same"],
    )
)


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, filters, padding", GEOMETRIES)
def test_values_and_gradients_match_the_im2col_path(x_shape, filters, padding, dtype, monkeypatch):
    rng = np.random.default_rng(sum(x_shape) + filters)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, x_shape[-1], filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    fast, reference = _both(
        monkeypatch, x, kernel, bias, _upstream(dtype), padding=padding, relu=True
    )
    _close(fast, reference, dtype)


@needs_kernels
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_relu_and_bias_options(relu, bias, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 9, 9, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 16, 24)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32) if bias else None
    fast, reference = _both(monkeypatch, x, kernel, b, _upstream(np.float32), relu=relu)
    _close(fast, reference, np.float32)


@needs_kernels
@pytest.mark.parametrize("needs", list(itertools.product([False, True], repeat=3))[1:])
def test_every_combination_of_gradients(needs, monkeypatch):
    """A frozen kernel, an input that needs no gradient, a frozen bias: each gradient asked
    for is the im2col path's, the others are None."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 8, 8, 10)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 10, 12)).astype(np.float32)
    bias = rng.standard_normal(12).astype(np.float32)
    fast, reference = _both(
        monkeypatch, x, kernel, bias, _upstream(np.float32), needs=needs, relu=True
    )
    for wanted, got in zip(needs, fast[1:]):
        assert (got is not None) == wanted
    _close(fast, reference, np.float32)


@needs_kernels
def test_exact_sums_give_the_same_values_and_winners(monkeypatch):
    """Small integers: the transforms' halves and sums are exact, so the values and the
    winners among many ties (the first maximum wins) are the im2col path's bits, and so is
    the input gradient they route."""
    rng = np.random.default_rng(9)
    x = rng.integers(-2, 3, size=(4, 10, 10, 9)).astype(np.float32)
    kernel = rng.integers(-1, 2, size=(3, 3, 9, 16)).astype(np.float32)
    bias = rng.integers(-2, 3, size=16).astype(np.float32)
    upstream = lambda shape: np.random.default_rng(1).integers(-3, 4, shape).astype(np.float32)  # noqa: E731
    fast, reference = _both(monkeypatch, x, kernel, bias, upstream, relu=True)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@needs_kernels
def test_nan_follows_the_pooling_rules(monkeypatch):
    """A NaN input makes the outputs whose windows read it NaN, which win their pooling
    windows, exactly as in the im2col path (the transforms carry a NaN only into the
    outputs whose windows hold it)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 8, 9)).astype(np.float32)
    x[0, 2, 3, 4] = np.nan
    x[1, 5, 6, 0] = np.nan
    kernel = rng.standard_normal((3, 3, 9, 20)).astype(np.float32)
    fast, reference = _both(monkeypatch, x, kernel, None, _upstream(np.float32), relu=True)
    np.testing.assert_array_equal(np.isnan(fast[0]), np.isnan(reference[0]))
    assert np.isnan(fast[0]).any()
    finite = np.isfinite(reference[0])
    np.testing.assert_allclose(fast[0][finite], reference[0][finite], rtol=1e-5, atol=1e-4)


@needs_kernels
def test_an_infinite_input_gives_no_finite_output_where_im2col_gives_none(monkeypatch):
    """The transforms subtract: an infinite input can give NaN (inf - inf) where the direct
    sums give +-inf, and then NaN wins a pooling window that -inf would not. Every output
    that im2col makes non-finite is non-finite here too, and the finite ones of both agree."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 8, 9)).astype(np.float32)
    x[1, 5, 5, 0] = np.inf
    kernel = rng.standard_normal((3, 3, 9, 20)).astype(np.float32)
    fast, reference = _both(monkeypatch, x, kernel, None, _upstream(np.float32), relu=True)
    assert not np.isfinite(fast[0][~np.isfinite(reference[0])]).any()
    both = np.isfinite(reference[0]) & np.isfinite(fast[0])
    np.testing.assert_allclose(fast[0][both], reference[0][both], rtol=1e-5, atol=1e-4)
    assert both[0].all()  # the other sample's tiles never read the infinity


@needs_kernels
@pytest.mark.parametrize("op", [conv_max_pool, fused_conv], ids=["pooled", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_helper_thread_does_not_change_a_bit(op, dtype):
    """Each value is computed by one thread and the sums are BLAS' (whose threads the
    governor holds): the kernels' one thread and two give the same bits."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 13, 13, 32)).astype(dtype)  # split: above SPLIT_FROM
    kernel = rng.standard_normal((3, 3, 32, 40)).astype(dtype)
    bias = rng.standard_normal(40).astype(dtype)
    assert_same_on_any_kernel_threads(
        lambda: _run(x, kernel, bias, _upstream(dtype), op=op, padding="same", relu=True)
    )


@needs_kernels
@pytest.mark.parametrize("op", [conv_max_pool, fused_conv], ids=["pooled", "plain"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_gradients_match_finite_differences(op, padding):
    """Every element's partial derivative, float64 (gradcheck's elementwise mode)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 6, 9))
    kernel = rng.standard_normal((3, 3, 9, 8))
    bias = rng.standard_normal(8)
    assert _takes_winograd(x, kernel, bias, {"padding": padding}, pooled=op is conv_max_pool)

    def fn(x, kernel, bias):
        return op(x, kernel, bias, padding=padding, relu=True)

    gradcheck(fn, x, kernel, bias, mode="elementwise", name=f"winograd {op.__name__}")


@needs_kernels
def test_the_filter_transform_and_its_gradient_are_adjoint():
    """<G g G^T, dU> = <g, G^T dU G> for random g and dU: filter_gradient is the VJP of
    filter_transform."""
    rng = np.random.default_rng(10)
    g = rng.standard_normal((3, 3, 5, 6))
    du = rng.standard_normal((16, 5, 6))
    left = float((winograd.filter_transform(g) * du).sum())
    right = float((g * winograd.filter_gradient(du)).sum())
    assert left == pytest.approx(right, rel=1e-12)


def test_which_convolutions_take_winograd():
    x = np.zeros((2, 12, 12, 16), np.float32)
    k2 = np.zeros((9 * 16, 8), np.float32)
    pads = ((0, 0), (0, 0))
    geom = Geometry(3, 3, 1, 1, 1, 1, 5, 5)
    usable = _native.kernels is not None
    assert (winograd.winograd_args(x, k2, None, pads, geom, (2, 2)) is not None) == usable
    assert winograd.winograd_args(x, k2, None, pads, geom, (3, 3)) is None  # pool
    assert winograd.winograd_args(x, k2, None, pads, geom, (2, 1)) is None
    assert winograd.winograd_args(x[:0], k2, None, pads, geom, (2, 2)) is None  # no samples
    few = np.zeros((2, 12, 12, winograd.MIN_CHANNELS - 1), np.float32)
    assert winograd.winograd_args(few, k2, None, pads, geom, (2, 2)) is None
    narrow = np.zeros((9 * 16, winograd.MIN_FILTERS - 1), np.float32)
    assert winograd.winograd_args(x, narrow, None, pads, geom, (2, 2)) is None
    for other in (
        Geometry(3, 3, 2, 2, 1, 1, 2, 2),  # strides
        Geometry(3, 3, 1, 1, 2, 2, 4, 4),  # dilation
        Geometry(5, 5, 1, 1, 1, 1, 4, 4),  # window
    ):
        assert winograd.winograd_args(x, k2, None, pads, other, (2, 2)) is None
    assert winograd.winograd_args(x, k2.astype(np.float64), None, pads, geom, (2, 2)) is None
    assert winograd.winograd_args(x.astype(np.float16), k2, None, pads, geom, (2, 2)) is None
    huge_padding = ((1 << 25, 0), (0, 0))  # beyond the C kernels' sizes
    assert winograd.winograd_args(x, k2, None, huge_padding, geom, (2, 2)) is None


@needs_kernels
def test_the_kernels_refuse_other_geometries():
    """A last line behind winograd_args: the C kernels take only 3x3 windows, strides and
    dilations of 1, and arrays of the sizes the geometry gives."""
    kernels = _native.kernels
    x = np.zeros((1, 6, 6, 8), np.float32)
    v = np.zeros((16, 4, 8), np.float32)
    with pytest.raises(ValueError, match="3x3"):
        kernels.winograd_input(x, v, (1, 6, 6, 8, 8, 5, 5, 2, 2), (1, 1, 1, 1, 0, 0))
    with pytest.raises(ValueError, match="3x3"):
        kernels.winograd_input(x, v, (1, 6, 6, 8, 8, 3, 3, 2, 2), (2, 1, 1, 1, 0, 0))
    with pytest.raises(ValueError):
        kernels.winograd_input(x, v[:, :3], (1, 6, 6, 8, 8, 3, 3, 2, 2), (1, 1, 1, 1, 0, 0))
    m = np.zeros((16, 4, 8), np.float32)
    out = np.zeros((4, 8), np.float32)
    for wrong in (np.int32, np.int8):  # another width; the uint8 width but signed
        with pytest.raises(ValueError, match="uint8"):
            kernels.winograd_pool(
                m, None, out, np.zeros((4, 8), wrong), True, (1, 6, 6, 8, 8, 3, 3, 2, 2),
                (1, 1, 1, 1, 0, 0),
            )  # fmt: skip
    with pytest.raises(ValueError, match="together"):
        kernels.winograd_unpool(
            out, np.zeros((4, 8), np.uint8), out, None, m, (1, 6, 6, 8, 8, 3, 3, 2, 2),
            (1, 1, 1, 1, 0, 0),
        )  # fmt: skip


# ---------------------------------------------------------------------------------------
# A convolution without pooling (ops/conv.py's Conv): the tiles cover its output, half
# outside it along an odd size.
# ---------------------------------------------------------------------------------------


def _conv_both(monkeypatch, x, kernel, bias, upstream, **options):
    """``_run`` of fused_conv by the Winograd path (checked to be the one taken), then by the path
    the convolution takes without it (im2col, or narrow.c for few filters)."""
    assert _takes_winograd(x, kernel, bias, options, pooled=False)
    fast = _run(x, kernel, bias, upstream, op=fused_conv, **options)
    with monkeypatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
        return fast, _run(x, kernel, bias, upstream, op=fused_conv, **options)


CONV_GEOMETRIES = list(
    itertools.product(
        [(2, 13, 13, 32), (3, 8, 11, 8), (1, 5, 6, 19), (2, 3, 3, 12)],
        [64, 8, 37],
        ["valid", "same"],
    )
)


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, filters, padding", CONV_GEOMETRIES)
def test_convolution_matches_the_path_without_winograd(
    x_shape, filters, padding, dtype, monkeypatch
):
    """Odd and even output sizes (a last row or column of tiles half outside), one-tile
    outputs, tails of filters and channels."""
    rng = np.random.default_rng(sum(x_shape) + filters)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, x_shape[-1], filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    fast, reference = _conv_both(
        monkeypatch, x, kernel, bias, _upstream(dtype), padding=padding, relu=True
    )
    _close(fast, reference, dtype)


@needs_kernels
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, True), (False, True, False)])
def test_convolution_options_and_gradients(relu, bias, needs, monkeypatch):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 10, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 16, 24)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32) if bias else None
    fast, reference = _conv_both(
        monkeypatch, x, kernel, b, _upstream(np.float32), needs=needs, relu=relu, padding="same"
    )
    for wanted, got in zip(needs, fast[1:3]):
        assert (got is not None) == wanted
    _close(fast, reference, np.float32)


@needs_kernels
def test_a_vgg_block_trains_as_without_winograd(monkeypatch):
    """Two 3x3 convolutions in a row, the first alone (Conv), the second with its pooling
    (ConvMaxPool), both by Winograd: the same losses epoch by epoch, within float
    rounding, as without it."""

    def train():
        dn.keras.utils.set_random_seed(0)
        model = dn.keras.Sequential(
            [
                dn.keras.Input((12, 12, 8)),
                dn.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
                dn.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
                dn.keras.layers.MaxPooling2D(),
                dn.keras.layers.Flatten(),
                dn.keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((96, 12, 12, 8)).astype(np.float32)
        y = (x[:, :6].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
        history = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
        return history.history["loss"]

    fast = train()
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
    reference = train()
    np.testing.assert_allclose(fast, reference, rtol=1e-4)
    assert fast[-1] < fast[0]


def test_which_plain_convolutions_take_winograd():
    x = np.zeros((2, 9, 9, 16), np.float32)
    k2 = np.zeros((9 * 16, 8), np.float32)
    pads = ((1, 1), (1, 1))
    usable = _native.kernels is not None
    geom = Geometry(3, 3, 1, 1, 1, 1, 9, 9)
    args = winograd.conv_winograd_args(x, k2, None, pads, geom)
    assert (args is not None) == usable
    if usable:
        assert args[0][-2:] == (5, 5)  # 9 x 9 in tiles of 2 x 2: the last half outside
    assert winograd.conv_winograd_args(x, k2, None, pads, Geometry(3, 3, 2, 2, 1, 1, 5, 5)) is None
    assert winograd.conv_winograd_args(x[..., :7], k2, None, pads, geom) is None


@needs_kernels
def test_the_output_kernels_check_the_output_size():
    kernels = _native.kernels
    m = np.zeros((16, 4, 8), np.float32)
    out = np.zeros((1, 3, 3, 8), np.float32)
    sizes, steps = (1, 5, 5, 8, 8, 3, 3, 2, 2), (1, 1, 1, 1, 0, 0)
    kernels.winograd_output(m, out, sizes, steps, (3, 3))  # 3 x 3 in 2 x 2 tiles: fits
    with pytest.raises(ValueError, match="output size"):
        kernels.winograd_output(m, np.zeros((1, 5, 5, 8), np.float32), sizes, steps, (5, 5))
    with pytest.raises(ValueError, match="output size"):
        kernels.winograd_output_grad(out, m, sizes, steps, (0, 3))


@needs_kernels
@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_a_channels_first_layer_takes_winograd_too(pool, monkeypatch):
    """Its input reaches the op as a transposed view: copied to C order, not sent to
    im2col; the same values and gradients as without Winograd."""
    calls = []
    original = winograd._transformed

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(winograd, "_transformed", counting)

    def train():
        dn.keras.utils.set_random_seed(0)
        stack = [dn.keras.layers.Conv2D(12, 3, padding="same", data_format="channels_first")]
        if pool:
            stack.append(dn.keras.layers.MaxPooling2D(data_format="channels_first"))
        model = dn.keras.Sequential([dn.keras.Input((10, 8, 8)), *stack])
        model.compile(optimizer="sgd", loss="mse")
        rng = np.random.default_rng(0)
        x = rng.random((16, 10, 8, 8)).astype(np.float32)
        y = rng.random((16, *model.output_shape[1:])).astype(np.float32)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()

    fast = train()
    assert calls
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
    for a, b in zip(fast, train()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
