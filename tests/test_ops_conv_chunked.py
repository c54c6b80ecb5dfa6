"""The chunked convolution paths (dendrite.ops.conv): a few-filter convolution building its
window matrix a chunk of samples at a time, and depthwise convolution in chunks. Both
must give what the whole-batch paths give, and exact gradients (float64 central
differences), whatever the chunk size."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from dendrite import Tensor
from dendrite.testing import gradcheck

conv_module = importlib.import_module("dendrite.ops.conv")

CASES = [
    # (x shape, kernel shape, strides, padding, dilation, relu, bias)
    ((5, 9, 8, 6), (3, 3, 6, 1), 1, "same", 1, False, True),
    ((4, 10, 7, 8), (3, 3, 8, 2), 2, "same", 1, True, True),
    ((3, 9, 9, 5), (3, 2, 5, 1), 1, "valid", 2, False, False),
    ((3, 12, 5), (5, 5, 1), 1, "causal", 1, True, True),  # 1-D
]


def run(x, kernel, bias, strides, padding, dilation, relu, *, narrow: bool, chunk: int):
    """Output and gradients of fused_conv, with the narrow path forced on or off."""
    mp = pytest.MonkeyPatch()
    mp.setattr(conv_module, "_NARROW_FROM", 0 if narrow else 1 << 62)
    mp.setattr(conv_module, "_CHUNK_VALUES", chunk)
    try:
        xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
        bt = None if bias is None else Tensor(bias, requires_grad=True)
        out = conv_module.fused_conv(xt, kt, bt, strides, padding, dilation, relu=relu)
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
        out.backward(upstream)
        grads = [xt.grad, kt.grad] + ([] if bt is None else [bt.grad])
        return out.data, [np.asarray(g) for g in grads]
    finally:
        mp.undo()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk", [1, 700, 1 << 16])
def test_narrow_path_equals_the_whole_batch_product(case, chunk):
    x_shape, k_shape, strides, padding, dilation, relu, with_bias = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(k_shape).astype(np.float32)
    bias = rng.standard_normal(k_shape[-1]).astype(np.float32) if with_bias else None
    args = (x, kernel, bias, strides, padding, dilation, relu)
    whole, whole_grads = run(*args, narrow=False, chunk=1 << 16)
    chunked, chunked_grads = run(*args, narrow=True, chunk=chunk)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
    for got, want in zip(chunked_grads, whole_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES[:3])
def test_narrow_path_gradients_are_exact(case, monkeypatch):
    x_shape, k_shape, strides, padding, dilation, relu, with_bias = case
    monkeypatch.setattr(conv_module, "_NARROW_FROM", 0)
    monkeypatch.setattr(conv_module, "_CHUNK_VALUES", 500)  # several chunks
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    kernel = rng.standard_normal(k_shape)
    bias = rng.standard_normal(k_shape[-1])

    def fn(x, kernel, bias):
        return conv_module.fused_conv(
            x, kernel, bias if with_bias else None, strides, padding, dilation, relu=relu
        )

    gradcheck(fn, x, kernel, bias, name="narrow conv")


def test_narrow_path_is_taken_for_a_single_filter_on_a_large_batch(monkeypatch):
    """The autoencoder's last layer: 32 channels to 1, 3x3, on 28x28 images."""
    taken = []
    original = conv_module._narrow_forward
    monkeypatch.setattr(
        conv_module,
        "_narrow_forward",
        lambda *a: taken.append(True) or original(*a),
    )
    x = np.zeros((64, 28, 28, 32), np.float32)
    conv_module.fused_conv(x, np.zeros((3, 3, 32, 1), np.float32), padding="same")
    assert taken
    taken.clear()
    conv_module.fused_conv(x, np.zeros((3, 3, 32, 64), np.float32), padding="same")
    assert not taken  # many filters: the whole-batch product


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("chunk", [1, 300, 1 << 16])
def test_depthwise_chunks_do_not_change_the_result(multiplier, chunk, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 9, 7, 4)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 4, multiplier)).astype(np.float32)

    def outputs(chunk_values):
        monkeypatch.setattr(conv_module, "_CHUNK_VALUES", chunk_values)
        xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
        out = conv_module.depthwise_conv(xt, kt, 2, "same")
        out.backward(np.ones(out.shape, np.float32))
        return out.data, xt.grad, kt.grad

    reference = outputs(1 << 30)
    for got, want in zip(outputs(chunk), reference):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("multiplier", [1, 3])
def test_depthwise_gradients_in_chunks_are_exact(multiplier, monkeypatch):
    monkeypatch.setattr(conv_module, "_CHUNK_VALUES", 100)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 6, 5, 2))
    kernel = rng.standard_normal((3, 2, 2, multiplier))
    gradcheck(
        lambda x, k: conv_module.depthwise_conv(x, k, 1, "same", None, 2),
        x,
        kernel,
        name="depthwise conv",
    )


@pytest.mark.skipif(
    importlib.import_module("dendrite._native").kernels is None, reason="C kernels not built"
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, k_shape, strides, padding, dilation",
    [
        ((6, 11, 9, 8), (3, 3, 8, 1), 1, "same", 1),
        ((3, 10, 7, 5), (3, 2, 5, 3), 2, "same", 1),
        ((2, 12, 12, 4), (3, 3, 4, 2), 1, "valid", 2),
        ((1, 5, 5, 1), (5, 5, 1, 1), 1, "valid", 1),
    ],
)
def test_depthwise_kernel_matches_the_numpy_path(
    dtype, x_shape, k_shape, strides, padding, dilation, monkeypatch
):
    """csrc/depthwise.c gives NumPy's bits for the output and the input gradient (the same
    terms in the same order), and the kernel gradient to rounding (summed per block of
    samples, the blocks shared between threads)."""
    native = importlib.import_module("dendrite._native")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    upstream = None

    def outputs():
        nonlocal upstream
        xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
        out = conv_module.depthwise_conv(xt, kt, strides, padding, None, dilation)
        if upstream is None:
            upstream = rng.standard_normal(out.shape).astype(dtype)
        out.backward(upstream)
        return out.data, xt.grad, kt.grad

    with_kernel = outputs()
    monkeypatch.setattr(native, "usable", lambda *a, **k: False)
    numpy_path = outputs()
    np.testing.assert_array_equal(with_kernel[0], numpy_path[0])
    if k_shape[-1] == 1:
        np.testing.assert_array_equal(with_kernel[1], numpy_path[1])
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(with_kernel[1], numpy_path[1], rtol=tolerance, atol=tolerance)
    # dL/dK is a long reduction summed in another order (per block of samples): within
    # rounding of its largest magnitude.
    scale = max(1.0, float(np.abs(numpy_path[2]).max()))
    np.testing.assert_allclose(with_kernel[2], numpy_path[2], rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("need_x, need_k", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("kernels_on", [True, False])
def test_depthwise_backward_when_only_some_inputs_need_gradients(
    need_x, need_k, kernels_on, monkeypatch
):
    """A fixed (non-trainable) blur kernel after a trainable layer, or a first layer whose
    input needs no gradient: each gradient that is asked for equals the full case's."""
    native = importlib.import_module("dendrite._native")
    if not kernels_on:
        monkeypatch.setattr(native, "usable", lambda *a, **k: False)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 7, 6, 4)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    upstream = rng.standard_normal((3, 7, 6, 8)).astype(np.float32)

    def grads(nx, nk):
        xt, kt = Tensor(x, requires_grad=nx), Tensor(kernel, requires_grad=nk)
        conv_module.depthwise_conv(xt, kt, 1, "same").backward(upstream)
        return xt.grad, kt.grad

    full = grads(True, True)
    got = grads(need_x, need_k)
    for wanted, value, reference in zip((need_x, need_k), got, full):
        if wanted:
            np.testing.assert_allclose(value, reference, rtol=1e-6, atol=1e-6)
        else:
            assert value is None


def test_depthwise_on_an_empty_batch():
    x = Tensor(np.zeros((0, 6, 6, 4), np.float32), requires_grad=True)
    kernel = Tensor(np.ones((3, 3, 4, 1), np.float32), requires_grad=True)
    out = conv_module.depthwise_conv(x, kernel, 1, "same")
    assert out.shape == (0, 6, 6, 4)
    out.backward(np.zeros(out.shape, np.float32))
    assert x.grad.shape == (0, 6, 6, 4)
    np.testing.assert_array_equal(kernel.grad, 0)


@pytest.mark.skipif(
    importlib.import_module("dendrite._native").kernels is None, reason="C kernels not built"
)
def test_depthwise_kernel_with_a_long_filter_axis(monkeypatch):
    """Depth multiplier 9: NumPy sums the filter axis pairwise, the kernel in order, so the
    input gradient agrees to rounding rather than bit for bit."""
    native = importlib.import_module("dendrite._native")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3, 9)).astype(np.float32)
    upstream = rng.standard_normal((2, 6, 6, 27)).astype(np.float32)

    def run():
        xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
        out = conv_module.depthwise_conv(xt, kt, 1, "same")
        out.backward(upstream)
        return out.data, xt.grad, kt.grad

    fast = run()
    monkeypatch.setattr(native, "usable", lambda *a, **k: False)
    reference = run()
    np.testing.assert_array_equal(fast[0], reference[0])
    for got, want in zip(fast[1:], reference[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


NARROW_KERNEL_CASES = [
    # (x shape, kernel shape, strides, padding, dilation, relu, bias): channels below, at
    # and past a vector (16 float32, 8 float64), 1 to 3 filters, strides and dilations.
    ((4, 28, 28, 32), (3, 3, 32, 1), 1, "same", 1, False, True),
    ((3, 9, 11, 20), (3, 2, 20, 3), (2, 1), "same", (1, 2), True, True),
    ((2, 7, 7, 40), (5, 5, 40, 2), 1, "valid", 1, False, False),
    ((5, 6, 6, 7), (3, 3, 7, 1), 2, "same", 1, True, False),
    ((3, 12, 17), (5, 17, 1), 1, "causal", 2, False, True),  # 1-D
]


@pytest.mark.needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", NARROW_KERNEL_CASES)
@pytest.mark.parametrize("need", ["all", "input", "weights"])
def test_narrow_kernel_matches_the_numpy_path(dtype, case, need, monkeypatch):
    """csrc/narrow.c against the chunked NumPy path: the output, dL/dx, dL/dK and dL/db
    within rounding of their largest magnitude (the sums run in another order), whichever
    gradients are asked for."""
    native = importlib.import_module("dendrite._native")
    x_shape, k_shape, strides, padding, dilation, relu, with_bias = case
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[-1]).astype(dtype) if with_bias else None
    monkeypatch.setattr(conv_module, "_NARROW_FROM", 0)
    calls = []
    monkeypatch.setattr(native.kernels, "narrow_forward", _counted(native.kernels, calls))

    def outputs():
        xt = Tensor(x, requires_grad=need != "weights")
        kt = Tensor(kernel, requires_grad=need != "input")
        bt = None if bias is None else Tensor(bias, requires_grad=need != "input")
        out = conv_module.fused_conv(xt, kt, bt, strides, padding, dilation, relu=relu)
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        out.backward(upstream)
        return [out.data] + [None if t is None else t.grad for t in (xt, kt, bt)]

    with_kernel = outputs()
    assert calls, "the narrow kernel was not used"
    monkeypatch.setattr(native, "usable", lambda *a, **k: False)
    numpy_path = outputs()
    tolerance = 2e-6 if dtype == np.float32 else 1e-13
    for name, got, want in zip(["output", "dx", "dK", "db"], with_kernel, numpy_path):
        assert (got is None) == (want is None), name
        if want is not None:
            assert got.dtype == dtype and got.shape == want.shape, name
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * scale, err_msg=name)


def _counted(kernels, calls):
    original = kernels.narrow_forward

    def counted(*args):
        calls.append(True)
        return original(*args)

    return counted


@pytest.mark.needs_kernels
def test_narrow_kernel_argument_checks():
    kernels = importlib.import_module("dendrite._native").kernels
    x = np.zeros((2, 5, 5, 3), np.float32)  # read as if padded by 1 on every side
    kt = np.zeros((1, 27), np.float32)
    out = np.zeros((2, 5, 5, 1), np.float32)
    sizes, steps = (2, 5, 5, 3, 1, 3, 3, 5, 5), (1, 1, 1, 1, 1, 1)
    kernels.narrow_forward(x, kt, None, out, sizes, steps)
    with pytest.raises(ValueError, match="bad sizes"):
        kernels.narrow_forward(x, kt, None, out, sizes, (1, 1, 1, 1, -1, 1))
    with pytest.raises(ValueError, match="bad sizes"):
        kernels.narrow_forward(x, kt, None, out, (2, 5, 5, 3, 1, 3, 3, 0, 5), steps)
    with pytest.raises(ValueError, match="expected sizes"):
        kernels.narrow_forward(x, kt[:, :20], None, out, sizes, steps)
    g = np.zeros((2, 5, 5, 1), np.float32)
    with pytest.raises(ValueError, match="needs the kernel"):
        kernels.narrow_backward(g, x, None, np.zeros_like(x), None, None, sizes, steps)
    with pytest.raises(ValueError, match="dL/dK xp"):
        kernels.narrow_backward(g, None, kt, None, np.zeros_like(kt), None, sizes, steps)
