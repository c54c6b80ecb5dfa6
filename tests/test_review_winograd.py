"""Review of the Winograd F(2x2, 3x3) path (ops/winograd.py, csrc/winograd.c): cases that
tests/test_kernels_winograd.py leaves out (tiny inputs, asymmetric padding pairs, 1-D
convolutions, Keras layers without a bias, an upstream gradient of another dtype, the C
kernels' size checks near overflow, infinities in a plain convolution)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dendrite as dn
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops import winograd
from dendrite.ops.conv import fused_conv
from dendrite.ops.conv_pool import conv_max_pool

needs_kernels = pytest.mark.needs_kernels


@pytest.fixture
def taken(monkeypatch):
    """How many times the Winograd transforms ran (a list holding one count)."""
    count = [0]
    original = winograd._transformed

    def counting(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(winograd, "_transformed", counting)
    return count


def _run(op, x, kernel, bias, integers=False, **options):
    xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
    bt = None if bias is None else Tensor(bias, requires_grad=True)
    out = op(xt, kt, bt, **options)
    rng = np.random.default_rng(7)
    upstream = rng.integers(-3, 4, out.shape) if integers else rng.standard_normal(out.shape)
    out.backward(upstream.astype(x.dtype))
    return [out.data, xt.grad, kt.grad, None if bt is None else bt.grad]


def _reference(monkeypatch, *args, **options):
    with monkeypatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
        return _run(*args, **options)


@needs_kernels
@pytest.mark.parametrize("op", [conv_max_pool, fused_conv], ids=["pooled", "plain"])
@pytest.mark.parametrize(
    "hw, padding",
    [
        ((1, 1), "same"),  # one pixel: every other place of the tile is padding
        ((2, 2), "same"),
        ((3, 3), "valid"),  # a 1x1 convolution output (pooled: refused, no window)
        ((4, 5), ((0, 1), (1, 0))),
        ((5, 4), ((2, 0), (0, 2))),
        ((3, 6), ((3, 1), (0, 0))),  # padding beyond the window on top
        ((6, 3), ((1, 2), (2, 1))),
    ],
)
def test_tiny_inputs_and_asymmetric_paddings(op, hw, padding, taken, monkeypatch):
    rng = np.random.default_rng(hw[0] * 7 + hw[1])
    x = rng.standard_normal((2, *hw, 12))
    kernel = rng.standard_normal((3, 3, 12, 9))
    bias = rng.standard_normal(9)
    try:
        reference = _reference(monkeypatch, op, x, kernel, bias, padding=padding, relu=True)
    except ValueError:  # no pooling window fits: both paths refuse
        with pytest.raises(ValueError):
            _run(op, x, kernel, bias, padding=padding, relu=True)
        return
    fast = _run(op, x, kernel, bias, padding=padding, relu=True)
    assert taken[0] == 1
    for a, b in zip(fast, reference):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(b).max()))


@needs_kernels
def test_one_dimensional_convolutions_do_not_take_winograd(taken):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 16, 16)).astype(np.float32)
    fused_conv(Tensor(x), Tensor(kernel), padding="same")
    conv_max_pool(Tensor(x), Tensor(kernel), padding="same")
    layer = dn.keras.layers.Conv1D(16, 3, padding="same")
    layer(x)
    assert taken[0] == 0


@needs_kernels
@pytest.mark.parametrize("pool", [True, False], ids=["pooled", "plain"])
def test_keras_conv_without_bias_trains_as_without_winograd(pool, taken, monkeypatch):
    """Conv2D(use_bias=False, 'valid', odd sizes) with and without a MaxPooling2D after it,
    in fit and predict."""
    layers = dn.keras.layers
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 9, 11, 10)).astype(np.float32)
    y = rng.integers(0, 3, 12)

    def build():
        stack = [dn.keras.Input(shape=(9, 11, 10))]
        stack.append(layers.Conv2D(12, 3, use_bias=False, activation="relu"))
        stack += [layers.MaxPooling2D()] if pool else []
        stack += [layers.Flatten(), layers.Dense(3, activation="softmax")]
        model = dn.keras.Sequential(stack)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    results, weights = [], None
    for min_channels in (winograd.MIN_CHANNELS, 1 << 30):
        with monkeypatch.context() as patch:
            patch.setattr(winograd, "MIN_CHANNELS", min_channels)
            model = build()
            if weights is None:
                weights = model.get_weights()
            model.set_weights(weights)
            model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
            results.append([model.predict(x, verbose=0), *model.get_weights()])
    assert taken[0] >= 3  # at least the two training steps and the prediction
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@needs_kernels
def test_pooled_relu_backward_takes_an_upstream_gradient_of_another_dtype(taken, monkeypatch):
    """A float32 ConvMaxPool whose output meets a float64 tensor gets a float64 gradient;
    the im2col path (and the plain Conv's Winograd path) take it, and so does the Winograd
    path: backprop casts a gradient to its tensor's dtype (before, winograd_unpool refused
    the float64 gradient beside the float32 relu_out)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 16, 8)).astype(np.float32)

    def grads():
        xt, kt = Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True)
        out = conv_max_pool(xt, kt, padding="same", relu=True)
        (out * Tensor(np.full(out.shape, 0.5))).sum().backward()
        return xt.grad, kt.grad

    with monkeypatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
        reference = grads()
    fast = grads()
    assert taken[0] == 1
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# Sizes the checks pass (each at most 2^24, conv_parse_geometry's 8 n oh ow c m < 2^63) for
# which 16 tiles c (or f) x 8 bytes, and the plain output's n out_h out_w f x 8, reach 2^64:
# kernel_take's elements * itemsize wraps to 0, and empty arrays pass as the planes.
_BIG = 1 << 24
_OVERFLOWS = {
    "winograd_input": "x = np.zeros((1, 1, 1, 512)); "
    f"K.winograd_input(x, np.empty(0), (1, 1, 1, 512, 1, 3, 3, {_BIG}, {_BIG}), STEPS)",
    "winograd_input_grad": "x = np.zeros((1, 1, 1, 512)); "
    f"K.winograd_input_grad(np.empty(0), x, (1, 1, 1, 512, 1, 3, 3, {_BIG}, {_BIG}), STEPS)",
    "winograd_output": "K.winograd_output(np.empty(0), np.empty(0), "
    f"(2048, 1, 1, 1, 1, 3, 3, {_BIG}, {_BIG}), STEPS, ({2 * _BIG}, {2 * _BIG}))",
    "winograd_output_grad": "K.winograd_output_grad(np.empty(0), np.empty(0), "
    f"(2048, 1, 1, 1, 1, 3, 3, {_BIG}, {_BIG}), STEPS, ({2 * _BIG}, {2 * _BIG}))",
}


@needs_kernels
def test_kernels_refuse_sizes_whose_bytes_overflow():
    """csrc/winograd.c's winograd_parse refuses them (before, it bounded nothing beyond
    conv_parse_geometry, and these calls wrote through empty arrays: a segmentation fault).
    Each in its own process, all at once: a crash must not take the session down."""
    prelude = (  # the extension alone, without importing dendrite: quick to start
        "import importlib.util, numpy as np; "
        f"spec = importlib.util.spec_from_file_location('_kernels', {_native.kernels.__file__!r}); "
        "K = importlib.util.module_from_spec(spec); spec.loader.exec_module(K); "
        "STEPS = (1, 1, 1, 1, 0, 0)\ntry:\n    "
    )
    epilogue = "\n    print('accepted')\nexcept ValueError:\n    print('refused')"
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", prelude + call + epilogue],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for name, call in _OVERFLOWS.items()
    }
    outcomes = {}
    for name, run in runs.items():
        out, _ = run.communicate(timeout=60)
        outcomes[name] = out.strip() if run.returncode == 0 else f"crashed ({run.returncode})"
    assert outcomes == dict.fromkeys(_OVERFLOWS, "refused")


@needs_kernels
def test_plain_convolution_gives_nan_only_where_im2col_is_infinite(taken, monkeypatch):
    """The documented difference, for Conv without pooling or ReLU: an infinite input may
    give NaN (inf - inf in a transform) only where the direct sums give +-inf; every
    finite output agrees and no infinity changes sign."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8, 9)).astype(np.float32)
    x[0, 1, 1, 0], x[0, 4, 6, 3], x[1, 6, 0, 8] = np.inf, -np.inf, np.inf
    kernel = rng.standard_normal((3, 3, 9, 10)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        fast = fused_conv(Tensor(x), Tensor(kernel), padding="same").data
        with monkeypatch.context() as patch:
            patch.setattr(winograd, "MIN_CHANNELS", 1 << 30)
            reference = fused_conv(Tensor(x), Tensor(kernel), padding="same").data
    assert taken[0] == 1
    finite = np.isfinite(reference)
    np.testing.assert_allclose(fast[finite], reference[finite], rtol=1e-5, atol=1e-4)
    assert np.all(np.isnan(fast[~finite]) | (fast[~finite] == reference[~finite]))


@needs_kernels
def test_exact_sums_give_the_im2col_bits_with_pooling_by_winograd(taken, monkeypatch):
    """With 8 channels ConvMaxPool takes shallow.c (9 * 8 = 72 <= SHALLOW_WIDTH) before
    Winograd: here 9 channels, Winograd checked to run. Small integers: values, winners
    (through dL/dx) and gradients bit for bit."""
    rng = np.random.default_rng(9)
    x = rng.integers(-2, 3, size=(3, 10, 9, 9)).astype(np.float32)
    kernel = rng.integers(-1, 2, size=(3, 3, 9, 16)).astype(np.float32)
    bias = rng.integers(-2, 3, size=16).astype(np.float32)
    fast = _run(conv_max_pool, x, kernel, bias, integers=True, relu=True)
    assert taken[0] == 1
    reference = _reference(monkeypatch, conv_max_pool, x, kernel, bias, integers=True, relu=True)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)
