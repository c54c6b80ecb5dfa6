"""Convolution: the Conv / ConvTranspose primitives and the convolution layers.

Gradients are checked in float64 (directional, dendrite.testing.gradcheck) over strides,
'same'/'valid'/'causal' padding, dilation, groups, depthwise, channels_first; values are
checked against a direct loop-over-offsets reference (no PyTorch needed; the PyTorch parity
tests live in test_layers_conv_torch.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.conv import Conv1D, Conv2D
from dendrite.layers.conv_depthwise import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from dendrite.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose
from dendrite.ops.conv import (
    conv,
    conv_transpose,
    depthwise_conv,
    fused_conv,
    fused_conv_transpose,
    separable_conv,
)
from dendrite.ops.windows import same_padding, transpose_output_length
from dendrite.testing import gradcheck

RNG = np.random.default_rng(7)


def reference_conv(x, kernel, strides, pads, dilation, groups=1):
    """Direct 2-D cross-correlation, NHWC, kernel (kh, kw, C/groups, F): a loop over the
    kernel offsets and groups (a test oracle, independent of im2col)."""
    (pt, pb), (pl, pr) = pads
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    fg = f // groups
    out = np.zeros((n, oh, ow, f))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = x[
                    :,
                    i * dh : i * dh + (oh - 1) * sh + 1 : sh,
                    j * dw : j * dw + (ow - 1) * sw + 1 : sw,
                    g * cg : (g + 1) * cg,
                ]
                out[..., g * fg : (g + 1) * fg] += patch @ kernel[i, j, :, g * fg : (g + 1) * fg]
    return out


def reference_conv_transpose(x, kernel, strides, out_size, pads, dilation):
    """Scatter each input pixel times the kernel into the output (loop over offsets)."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (pt, pb), (pl, pr) = pads
    full = np.zeros((n, out_size[0] + pt + pb, out_size[1] + pl + pr, f))
    for i in range(kh):
        for j in range(kw):
            contribution = x @ kernel[i, j].T
            full[
                :,
                i * dh : i * dh + (h - 1) * sh + 1 : sh,
                j * dw : j * dw + (w - 1) * sw + 1 : sw,
            ] += contribution
    return full[:, pt : pt + out_size[0], pl : pl + out_size[1]]


def swap_weights(layer, names):
    """A function of (x, *weights) that runs ``layer`` with the given weight tensors, for
    gradchecking the weights too."""

    def run(x, *weights):
        kept = [getattr(layer, name) for name in names]
        try:
            for name, value in zip(names, weights):
                object.__setattr__(layer, name, value)
            return layer(x)
        finally:
            for name, value in zip(names, kept):
                object.__setattr__(layer, name, value)

    return run


def layer_gradcheck(layer, shape, names=("kernel", "bias")):
    x = RNG.standard_normal(shape)
    layer(x)
    names = [name for name in names if getattr(layer, name) is not None]
    weights = [getattr(layer, name).data.copy() for name in names]
    gradcheck(swap_weights(layer, names), x, *weights, name=layer.name)


# --- padding arithmetic ---------------------------------------------------------------------
def test_same_padding_follows_tensorflow():
    assert same_padding(5, 3, 1) == (1, 1)
    assert same_padding(4, 2, 1) == (0, 1)  # the odd pixel goes at the end
    assert same_padding(4, 3, 2) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(7, 3, 1, dilation=2) == (2, 2)
    assert same_padding(6, 1, 3) == (0, 0)


def test_transpose_output_length_matches_keras():
    assert transpose_output_length(4, 3, "valid", 2) == 9
    assert transpose_output_length(4, 2, "valid", 3) == 12  # max(k, s) - k extra
    assert transpose_output_length(4, 3, "same", 2) == 8
    assert transpose_output_length(4, 3, "same", 2, output_padding=0) == 7
    assert transpose_output_length(4, 3, "valid", 3, output_padding=2) == 14


# --- the Conv primitive ---------------------------------------------------------------------
CONV_CASES = [
    # (shape NHWC, kernel (kh, kw), filters, strides, padding, dilation, groups)
    ((2, 6, 7, 3), (3, 3), 4, (1, 1), "valid", (1, 1), 1),
    ((2, 6, 7, 3), (3, 2), 4, (2, 3), "same", (1, 1), 1),
    ((2, 7, 7, 2), (3, 3), 3, (1, 1), "same", (2, 1), 1),
    ((2, 6, 6, 4), (2, 2), 6, (1, 1), "valid", (1, 1), 2),
    ((2, 5, 6, 3), (3, 3), 6, (2, 2), "same", (1, 1), 3),  # depthwise, multiplier 2
    ((1, 5, 5, 20), (3, 3), 16, (1, 1), "same", (1, 1), 1),  # many-channel input gradient
    ((1, 5, 5, 32), (3, 3), 32, (2, 1), "valid", (1, 1), 2),
    ((1, 4, 5, 64), (3, 3), 3, (1, 1), "same", (1, 1), 1),  # wide: bias added, not folded
]


def explicit(shape, ksize, strides, padding, dilation):
    if padding == "valid":
        return ((0, 0), (0, 0))
    return tuple(
        same_padding(n, k, s, d) for n, k, s, d in zip(shape[1:3], ksize, strides, dilation)
    )


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_reference_and_gradchecks(case):
    shape, ksize, filters, strides, padding, dilation, groups = case
    x = RNG.standard_normal(shape)
    kernel = RNG.standard_normal((*ksize, shape[-1] // groups, filters))
    bias = RNG.standard_normal(filters)
    out = fused_conv(x, kernel, bias, strides, padding, dilation, groups)
    pads = explicit(shape, ksize, strides, padding, dilation)
    expected = reference_conv(x, kernel, strides, pads, dilation, groups) + bias
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)

    def fn(x, k, b):
        return fused_conv(x, k, b, strides, padding, dilation, groups)

    gradcheck(fn, x, kernel, bias, name=f"conv{case}")


def test_conv_fused_relu_gradchecks_and_matches():
    x = RNG.standard_normal((2, 5, 5, 3))
    kernel = RNG.standard_normal((3, 3, 3, 4))
    bias = RNG.standard_normal(4)
    out = fused_conv(x, kernel, bias, padding="same", relu=True)
    plain = fused_conv(x, kernel, bias, padding="same")
    np.testing.assert_allclose(out.data, np.maximum(plain.data, 0))
    gradcheck(lambda x, k, b: fused_conv(x, k, b, padding="same", relu=True), x, kernel, bias)


def test_conv_1d_is_height_one_2d():
    x = RNG.standard_normal((2, 9, 3))
    kernel = RNG.standard_normal((3, 3, 5))
    out = fused_conv(x, kernel, strides=2, padding="same", dilation_rate=1)
    as_2d = fused_conv(x[:, None], kernel[None], strides=(1, 2), padding="same")
    np.testing.assert_allclose(out.data, as_2d.data[:, 0])
    gradcheck(lambda x, k: fused_conv(x, k, padding="causal", dilation_rate=2), x, kernel)


def test_conv_without_bias_and_frozen_inputs():
    x = Tensor(RNG.standard_normal((2, 5, 5, 2)))  # no gradient wanted for x
    kernel = Tensor(RNG.standard_normal((3, 3, 2, 3)), requires_grad=True)
    out = fused_conv(x, kernel)
    out.backward(np.ones(out.shape))
    assert x.grad is None and kernel.grad.shape == kernel.shape


def test_conv_float32_stays_float32():
    x = RNG.standard_normal((2, 6, 6, 3)).astype(np.float32)
    kernel = RNG.standard_normal((3, 3, 3, 4)).astype(np.float32)
    out = fused_conv(Tensor(x, requires_grad=True), Tensor(kernel, requires_grad=True))
    assert out.dtype == np.float32


def test_conv_primitive_errors_name_shapes():
    with pytest.raises(ValueError, match=r"conv: the input has 3 channels.*\(3, 3, 2, 4\)"):
        fused_conv(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"does not fit the padded input \(2, 2\)"):
        fused_conv(np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"rank 3 .* or 4"):
        fused_conv(np.zeros((5, 5)), np.zeros((3, 3)))


# --- the ConvTranspose primitive ------------------------------------------------------------
TRANSPOSE_CASES = [
    # (shape, kernel, filters, strides, padding, output_padding, dilation)
    ((2, 3, 4, 2), (3, 3), 3, (1, 1), "valid", None, (1, 1)),
    ((2, 3, 4, 2), (3, 3), 3, (2, 2), "same", None, (1, 1)),
    ((2, 3, 4, 2), (3, 2), 3, (2, 3), "valid", (1, 2), (1, 1)),
    ((2, 3, 3, 2), (2, 2), 2, (3, 3), "valid", None, (1, 1)),
    ((2, 4, 4, 3), (3, 3), 2, (1, 1), "same", None, (2, 2)),
    ((1, 3, 3, 4), (3, 3), 16, (2, 2), "same", (1, 1), (1, 1)),  # many output channels
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose_matches_reference_and_gradchecks(case):
    shape, ksize, filters, strides, padding, output_padding, dilation = case
    x = RNG.standard_normal(shape)
    kernel = RNG.standard_normal((*ksize, filters, shape[-1]))
    bias = RNG.standard_normal(filters)
    out = fused_conv_transpose(x, kernel, bias, strides, padding, output_padding, dilation)
    extra = output_padding or (None, None)
    sizes = [
        transpose_output_length(n, k, padding, s, p, d)
        for n, k, s, p, d in zip(shape[1:3], ksize, strides, extra, dilation)
    ]
    pads = []
    for n, k, s, d, size in zip(shape[1:3], ksize, strides, dilation, sizes):
        total = max((n - 1) * s + (k - 1) * d + 1 - size, 0) if padding == "same" else 0
        pads.append((total // 2, total - total // 2))
    expected = reference_conv_transpose(x, kernel, strides, sizes, pads, dilation) + bias
    assert out.shape == (shape[0], *sizes, filters)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)

    def fn(x, k, b):
        return fused_conv_transpose(x, k, b, strides, padding, output_padding, dilation)

    gradcheck(fn, x, kernel, bias, name=f"conv_transpose{case}")


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x, K), y> == <x, conv_transpose(y, K)> for the same geometry."""
    x = RNG.standard_normal((2, 8, 6, 3))
    kernel = RNG.standard_normal((3, 3, 3, 5))
    y = conv(x, kernel, strides=2, padding="same").data
    u = RNG.standard_normal(y.shape)
    back = conv_transpose(u, kernel, strides=2, padding="same")  # same kernel: the adjoint
    assert back.shape == x.shape
    lhs = np.sum(y * u)
    rhs = np.sum(x * back.data)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


# --- Keras-named ops ------------------------------------------------------------------------
def test_keras_ops_channels_first_and_groups():
    x = RNG.standard_normal((2, 4, 6, 5))  # NCHW
    kernel = RNG.standard_normal((3, 3, 2, 6))  # groups = 4 // 2 = 2
    out = conv(x, kernel, padding="same", data_format="channels_first")
    last = conv(np.transpose(x, (0, 2, 3, 1)), kernel, padding="same")
    np.testing.assert_allclose(out.data, np.transpose(last.data, (0, 3, 1, 2)))
    gradcheck(lambda x, k: conv(x, k, strides=2, data_format="channels_first"), x, kernel)
    with pytest.raises(ValueError, match="divisible by kernel.shape"):
        conv(x, RNG.standard_normal((3, 3, 3, 6)), data_format="channels_first")


def test_depthwise_and_separable_ops():
    x = RNG.standard_normal((2, 5, 5, 3))
    dw = RNG.standard_normal((3, 3, 3, 2))
    pw = RNG.standard_normal((1, 1, 6, 4))
    out = depthwise_conv(x, dw, padding="same")
    expected = np.zeros((2, 5, 5, 6))
    for c in range(3):
        for m in range(2):
            k = dw[:, :, c : c + 1, m : m + 1]
            ref = reference_conv(x[..., c : c + 1], k, (1, 1), ((1, 1), (1, 1)), (1, 1))
            expected[..., c * 2 + m] = ref[..., 0]
    np.testing.assert_allclose(out.data, expected, atol=1e-12)
    sep = separable_conv(x, dw, pw, padding="same")
    np.testing.assert_allclose(sep.data, expected @ pw[0, 0], atol=1e-12)
    gradcheck(lambda x, a, b: separable_conv(x, a, b, strides=2), x, dw, pw)
    gradcheck(lambda x, a: depthwise_conv(x, a, dilation_rate=2, padding="same"), x, dw)


# --- layers ---------------------------------------------------------------------------------
def test_conv2d_layer_shapes_weights_and_relu():
    layer = Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1))
    out = layer(RNG.standard_normal((2, 28, 28, 1)).astype(np.float32))
    assert out.shape == (2, 26, 26, 8) and out.dtype == np.float32
    assert [w.shape for w in layer.weights] == [(3, 3, 1, 8), (8,)]
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert np.all(out.data >= 0)
    assert layer.compute_output_shape((None, 28, 28, 1)) == (None, 26, 26, 8)
    strided = Conv2D(4, (3, 2), strides=(2, 3), padding="same")
    assert strided.compute_output_shape((None, 7, 8, 3)) == (None, 4, 3, 4)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda: Conv2D(4, 3, strides=2, padding="same", dtype="float64"), (2, 6, 5, 3)),
        (lambda: Conv2D(4, 2, dilation_rate=2, groups=2, dtype="float64"), (2, 6, 6, 4)),
        (
            lambda: Conv2D(3, 3, data_format="channels_first", activation="tanh", dtype="float64"),
            (2, 2, 5, 6),
        ),
        (lambda: Conv1D(3, 3, padding="causal", dilation_rate=2, dtype="float64"), (2, 7, 2)),
        (lambda: Conv1D(3, 2, strides=2, data_format="channels_first", dtype="float64"), (2, 2, 7)),
        (
            lambda: DepthwiseConv2D(3, depth_multiplier=2, padding="same", dtype="float64"),
            (2, 5, 5, 2),
        ),
        (lambda: DepthwiseConv1D(2, strides=2, dtype="float64"), (2, 7, 3)),
        (lambda: Conv2DTranspose(3, 3, strides=2, padding="same", dtype="float64"), (2, 3, 4, 2)),
        (lambda: Conv1DTranspose(2, 3, strides=2, output_padding=1, dtype="float64"), (2, 4, 3)),
        (
            lambda: Conv2DTranspose(
                2, 2, strides=2, data_format="channels_first", use_bias=False, dtype="float64"
            ),
            (2, 3, 3, 4),
        ),
    ],
)
def test_layer_gradcheck_input_and_weights(layer, shape):
    layer_gradcheck(layer(), shape)


def test_separable_layer_gradcheck():
    layer = SeparableConv2D(4, 3, depth_multiplier=2, padding="same", dtype="float64")
    layer_gradcheck(layer, (2, 5, 5, 3), ("depthwise_kernel", "pointwise_kernel", "bias"))
    layer1 = SeparableConv1D(3, 3, strides=2, dtype="float64")
    layer_gradcheck(layer1, (2, 7, 2), ("depthwise_kernel", "pointwise_kernel", "bias"))


def test_layer_weight_layouts_follow_keras():
    x = np.zeros((1, 6, 6, 4), np.float32)
    depthwise = DepthwiseConv2D(3, depth_multiplier=2)
    depthwise(x)
    assert [w.shape for w in depthwise.weights] == [(3, 3, 4, 2), (8,)]
    separable = SeparableConv2D(5, 3, depth_multiplier=3)
    separable(x)
    assert [w.shape for w in separable.weights] == [(3, 3, 4, 3), (1, 1, 12, 5), (5,)]
    transposed = Conv2DTranspose(7, 3)
    transposed(x)
    assert [w.shape for w in transposed.weights] == [(3, 3, 7, 4), (7,)]
    grouped = Conv2D(6, 3, groups=2)
    grouped(x)
    assert grouped.kernel.shape == (3, 3, 2, 6)


def test_depthwise_layer_output_channel_order():
    """Output channel c * M + m is input channel c convolved with kernel[..., c, m]."""
    layer = DepthwiseConv2D(1, depth_multiplier=2, use_bias=False, dtype="float64")
    x = RNG.standard_normal((1, 2, 2, 3))
    layer(x)
    layer.set_weights([np.arange(1.0, 7.0).reshape(1, 1, 3, 2)])
    out = layer(x).data
    np.testing.assert_allclose(out[..., 3], x[..., 1] * 4.0)
    np.testing.assert_allclose(out[..., 4], x[..., 2] * 5.0)


def test_causal_conv1d_sees_only_the_past():
    layer = Conv1D(1, 3, padding="causal", dtype="float64")
    x = RNG.standard_normal((1, 6, 1))
    base = layer(x).data
    changed = x.copy()
    changed[0, 4] += 10.0
    after = layer(changed).data
    np.testing.assert_allclose(after[0, :4], base[0, :4])
    assert not np.allclose(after[0, 4:], base[0, 4:])


@pytest.mark.parametrize(
    "layer",
    [
        lambda: Conv2D(4, 3, strides=2, padding="same", groups=2, activation="relu"),
        lambda: Conv1D(2, 3, padding="causal", dilation_rate=2, kernel_regularizer="l2"),
        lambda: DepthwiseConv2D(3, depth_multiplier=2, data_format="channels_first"),
        lambda: SeparableConv2D(4, 3, depth_multiplier=2, pointwise_regularizer="l1"),
        lambda: Conv2DTranspose(3, 3, strides=2, output_padding=1, use_bias=False),
    ],
)
def test_config_round_trip_through_json(layer):
    original = layer()
    config = json.loads(json.dumps(original.get_config()))
    clone = type(original).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    channels = 4
    shape = (2, channels, 7, 7) if original.data_format == "channels_first" else (2, 7, 7)
    if original.rank == 2 and original.data_format == "channels_last":
        shape = (2, 7, 7, channels)
    elif original.rank == 1:
        shape = (2, 7, channels)
    x = RNG.standard_normal(shape).astype(np.float32)
    original(x)
    clone(x)
    clone.set_weights(original.get_weights())
    np.testing.assert_allclose(clone(x).data, original(x).data)


def test_wrong_rank_and_channel_errors_name_layer_and_shapes():
    layer = Conv2D(4, 3, name="my_conv")
    with pytest.raises(ValueError, match=r"'my_conv'.*expected ndim=4, found ndim=3"):
        layer(np.zeros((2, 8, 8), np.float32))
    layer(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(
        ValueError, match=r"'my_conv'.*axis -1 of input shape to have value 3.*\(2, 8, 8, 5\)"
    ):
        layer(np.zeros((2, 8, 8, 5), np.float32))
    first = Conv2D(2, 3, data_format="channels_first", name="cf_conv")
    first(np.zeros((1, 3, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"'cf_conv'.*axis 1 .* value 3.*\(1, 4, 6, 6\)"):
        first(np.zeros((1, 4, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"'small'.*output size.*\(2, 2, 1\)"):
        Conv1D(2, 5, name="small")(np.zeros((2, 2, 1), np.float32))
    with pytest.raises(ValueError, match="evenly divisible by the number of groups"):
        Conv2D(4, 3, groups=3)
    with pytest.raises(ValueError, match=r"groups=2, but the input has 3 channels"):
        Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3), np.float32))


def test_argument_validation():
    with pytest.raises(ValueError, match="filters"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        Conv2D(2, 3, padding="causal")  # causal is 1-D only
    with pytest.raises(ValueError, match="dilation_rate > 1"):
        Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="data_format"):
        Conv2D(2, 3, data_format="nhwc")
    with pytest.raises(ValueError, match="output_padding"):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="depth_multiplier"):
        DepthwiseConv2D(3, depth_multiplier=0)
    assert Conv1D(2, 3, padding="CAUSAL").padding == "causal"


def test_regularizers_add_losses_and_activity():
    layer = Conv2D(2, 3, kernel_regularizer="l2", activity_regularizer="l1")
    layer(RNG.standard_normal((2, 5, 5, 1)).astype(np.float32))
    assert len(layer.losses) == 2
