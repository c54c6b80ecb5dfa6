"""Conv3D and Conv3DTranspose: gradients against central differences (float64), outputs and
gradients against PyTorch (float32), both data formats, shapes, configs and errors.

Keras kernels convert to PyTorch's layouts: Conv3D (kd, kh, kw, C/g, F) -> (F, C/g, kd, kh,
kw); Conv3DTranspose (kd, kh, kw, F, C) -> (C, F, kd, kh, kw). Keras' asymmetric 'same'
padding is applied with F.pad; a transposed convolution's 'same' / output_padding output is
the full PyTorch output, padded with zeros at the end, cropped where Keras crops it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite import layers
from dendrite.core import Tensor
from dendrite.ops.conv3d import fused_conv3d, fused_conv3d_transpose
from dendrite.ops.windows import same_padding
from dendrite.testing import gradcheck

RNG = np.random.default_rng(3)

CONV_CASES = [
    ({"filters": 4, "kernel_size": 3}, (2, 5, 6, 5, 3)),
    (
        {"filters": 6, "kernel_size": (2, 3, 2), "strides": (2, 1, 2), "padding": "same"},
        (2, 5, 6, 7, 2),
    ),
    (
        {
            "filters": 4,
            "kernel_size": 3,
            "dilation_rate": (2, 1, 2),
            "groups": 2,
            "padding": "same",
        },
        (2, 6, 5, 6, 4),
    ),
    ({"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}, (2, 4, 6, 6, 4)),
    ({"filters": 4, "kernel_size": (1, 2, 2), "groups": 4, "use_bias": False}, (1, 3, 4, 4, 4)),
    ({"filters": 3, "kernel_size": 2, "strides": 3, "padding": "same"}, (3, 7, 5, 8, 2)),
]

TRANSPOSE_CASES = [
    ({"filters": 3, "kernel_size": 3, "strides": 2}, (2, 3, 4, 3, 2)),
    (
        {"filters": 2, "kernel_size": (3, 2, 2), "strides": (2, 1, 2), "padding": "same"},
        (2, 3, 3, 4, 3),
    ),
    ({"filters": 3, "kernel_size": 3, "strides": 2, "output_padding": 1}, (1, 2, 3, 2, 2)),
    (
        {"filters": 2, "kernel_size": 2, "dilation_rate": (2, 1, 2), "activation": "relu"},
        (2, 3, 3, 3, 2),
    ),
    (
        {
            "filters": 4,
            "kernel_size": (2, 3, 3),
            "strides": (1, 3, 2),
            "padding": "same",
            "output_padding": (0, 1, 1),
        },
        (2, 3, 2, 3, 2),
    ),
]


# --- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "options,x_shape,k_shape",
    [
        ({}, (2, 4, 3, 4, 2), (2, 2, 3, 2, 3)),
        ({"strides": (2, 1, 2), "padding": "same", "relu": True}, (1, 5, 4, 5, 2), (3, 2, 2, 2, 3)),
        (
            {"dilation_rate": (2, 1, 1), "padding": "same", "groups": 2},
            (2, 5, 3, 3, 4),
            (2, 2, 2, 2, 4),
        ),
    ],
)
def test_conv3d_gradients_match_central_differences(options, x_shape, k_shape):
    x = RNG.standard_normal(x_shape)
    k = RNG.standard_normal(k_shape)
    b = RNG.standard_normal(k_shape[-1])
    gradcheck(lambda x, k, b: fused_conv3d(x, k, b, **options), x, k, b, name="conv3d")
    gradcheck(
        lambda x, k, b: fused_conv3d(x, k, b, **options),
        x[:1, :3],
        k,
        b,
        mode="elementwise",
        name="conv3d",
    )


@pytest.mark.parametrize(
    "options,x_shape,k_shape",
    [
        ({"strides": 2}, (2, 2, 3, 2, 2), (3, 2, 2, 3, 2)),
        ({"strides": (2, 1, 2), "padding": "same", "relu": True}, (1, 3, 2, 3, 3), (2, 3, 2, 2, 3)),
        ({"strides": 2, "output_padding": 1, "dilation_rate": 1}, (2, 2, 2, 2, 2), (2, 2, 3, 2, 2)),
        ({"dilation_rate": (2, 1, 2)}, (1, 3, 2, 2, 2), (2, 2, 2, 3, 2)),
    ],
)
def test_conv3d_transpose_gradients_match_central_differences(options, x_shape, k_shape):
    x = RNG.standard_normal(x_shape)
    k = RNG.standard_normal(k_shape)
    b = RNG.standard_normal(k_shape[-2])
    gradcheck(lambda x, k, b: fused_conv3d_transpose(x, k, b, **options), x, k, b)
    gradcheck(
        lambda x, k, b: fused_conv3d_transpose(x, k, b, **options),
        x[:1],
        k,
        b,
        mode="elementwise",
    )


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.Conv3D(3, 2, padding="same", groups=3, activation="tanh"),
        lambda: layers.Conv3DTranspose(2, (2, 3, 2), strides=(1, 2, 2), padding="same"),
    ],
)
def test_layer_input_gradients_in_float64_channels_first(layer):
    layer = layer().__class__.from_config(
        {**layer().get_config(), "data_format": "channels_first", "dtype": "float64"}
    )
    x = RNG.standard_normal((2, 3, 3, 4, 3))
    assert layer(x).dtype == np.float64
    gradcheck(layer, x, name=type(layer).__name__)


# --- PyTorch ----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 2e-5, "atol": 2e-5}


def _torch(a):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=True)


def _to_first(a):
    return np.moveaxis(a, -1, 1)


def _run_layer(layer, x, upstream):
    inp = Tensor(x, requires_grad=True)
    out = layer(inp)
    out.backward(upstream)
    grads = [layer.kernel.grad] + ([layer.bias.grad] if layer.use_bias else [])
    return out.data, inp.grad, grads


def _f_pad(spatial, kernel, strides, dilation):
    pads = [same_padding(n, k, s, d) for n, k, s, d in zip(spatial, kernel, strides, dilation)]
    return [p for pair in reversed(pads) for p in pair]  # F.pad: the last axis first


def _torch_conv3d(layer, x_first):
    """Outputs (N, F, D, H, W) of torch's conv3d with the layer's weights and settings."""
    xt = _torch(x_first)
    kt = _torch(np.transpose(layer.kernel.data, (4, 3, 0, 1, 2)))
    bt = _torch(layer.bias.data) if layer.use_bias else None
    xin = xt
    if layer.padding == "same":
        pads = _f_pad(x_first.shape[2:], layer.kernel_size, layer.strides, layer.dilation_rate)
        xin = F.pad(xt, pads)
    yt = F.conv3d(
        xin, kt, bt, stride=layer.strides, dilation=layer.dilation_rate, groups=layer.groups
    )
    if layer.activation.__name__ == "relu":
        yt = torch.relu(yt)
    return yt, xt, [kt] + ([bt] if bt is not None else [])


def _torch_conv3d_transpose(layer, x_first, out_sizes):
    """Keras' transposed convolution from torch's full one (no padding): zeros appended,
    then the window Keras keeps (its 'same' crop), then the bias."""
    xt = _torch(x_first)
    kt = _torch(np.transpose(layer.kernel.data, (4, 3, 0, 1, 2)))
    bt = _torch(layer.bias.data)
    full = F.conv_transpose3d(xt, kt, stride=layer.strides, dilation=layer.dilation_rate)
    index = [slice(None), slice(None)]
    for axis, (n, k, s, d, size) in enumerate(
        zip(x_first.shape[2:], layer.kernel_size, layer.strides, layer.dilation_rate, out_sizes)
    ):
        total = (n - 1) * s + (k - 1) * d + 1 - size if layer.padding == "same" else 0
        before = max(total, 0) // 2
        missing = before + size - full.shape[2 + axis]
        if missing > 0:
            widths = [0, 0] * 3
            widths[2 * (2 - axis) + 1] = missing
            full = F.pad(full, widths)
        index.append(slice(before, before + size))
    yt = full[tuple(index)] + bt[:, None, None, None]
    if layer.activation.__name__ == "relu":
        yt = torch.relu(yt)
    return yt, xt, [kt, bt]


def _compare(layer, x, torch_fn):
    """Layer vs torch: outputs and every gradient; returns the largest absolute difference."""
    first = layer.data_format == "channels_first"
    out_shape = layer.compute_output_shape(x.shape)
    upstream = RNG.standard_normal(out_shape).astype(np.float32)
    out, gx, grads = _run_layer(layer, x, upstream)
    assert out.shape == out_shape and out.dtype == np.float32
    x_first = x if first else _to_first(x)
    yt, xt, weights = torch_fn(x_first)
    yt.backward(torch.tensor(upstream if first else np.ascontiguousarray(_to_first(upstream))))
    y_ref = yt.detach().numpy() if first else np.moveaxis(yt.detach().numpy(), 1, -1)
    gx_ref = xt.grad.numpy() if first else np.moveaxis(xt.grad.numpy(), 1, -1)
    np.testing.assert_allclose(out, y_ref, **TOL)
    np.testing.assert_allclose(gx, gx_ref, **TOL)
    worst = max(np.abs(out - y_ref).max(), np.abs(gx - gx_ref).max())
    gk_ref = np.transpose(weights[0].grad.numpy(), (2, 3, 4, 1, 0))
    np.testing.assert_allclose(grads[0], gk_ref, **TOL)
    worst = max(worst, np.abs(grads[0] - gk_ref).max())
    if len(grads) > 1:
        np.testing.assert_allclose(grads[1], weights[1].grad.numpy(), **TOL)
    return worst


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kwargs,shape", CONV_CASES)
def test_conv3d_matches_torch(kwargs, shape, data_format):
    layer = layers.Conv3D(**kwargs, data_format=data_format, bias_initializer="glorot_uniform")
    x = RNG.standard_normal(shape).astype(np.float32)
    if data_format == "channels_first":
        x = np.ascontiguousarray(_to_first(x))
    layer(x)
    assert layer.kernel.shape == (*layer.kernel_size, shape[-1] // layer.groups, layer.filters)
    _compare(layer, x, lambda x_first: _torch_conv3d(layer, x_first))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kwargs,shape", TRANSPOSE_CASES)
def test_conv3d_transpose_matches_torch(kwargs, shape, data_format):
    layer = layers.Conv3DTranspose(
        **kwargs, data_format=data_format, bias_initializer="glorot_uniform"
    )
    x = RNG.standard_normal(shape).astype(np.float32)
    if data_format == "channels_first":
        x = np.ascontiguousarray(_to_first(x))
    layer(x)
    assert layer.kernel.shape == (*layer.kernel_size, layer.filters, shape[-1])
    out_shape = layer.compute_output_shape(x.shape)
    sizes = out_shape[2:] if data_format == "channels_first" else out_shape[1:4]
    _compare(layer, x, lambda x_first: _torch_conv3d_transpose(layer, x_first, sizes))


def test_transpose_is_the_adjoint_of_the_convolution():
    """<conv(x), y> = <x, conv_transpose(y)> for the same kernel, strides and padding."""
    x = RNG.standard_normal((2, 6, 5, 7, 3))
    k = RNG.standard_normal((3, 2, 3, 3, 4))
    for padding in ("valid", "same"):
        y = fused_conv3d(x, k, strides=2, padding=padding).data
        g = RNG.standard_normal(y.shape)
        back = fused_conv3d_transpose(
            g, k, strides=2, padding=padding, output_padding=_extra(x.shape, y.shape, k, padding)
        ).data
        assert back.shape == x.shape
        np.testing.assert_allclose(np.sum(y * g), np.sum(x * back), rtol=1e-10)


def _extra(x_shape, y_shape, k, padding):
    """The output_padding that gives the convolution's input size back."""
    out = []
    for n, m, size in zip(x_shape[1:4], y_shape[1:4], k.shape[:3]):
        base = (m - 1) * 2 + (size % 2 if padding == "same" else size)
        out.append(n - base)
    return tuple(out)


# --- shapes, dtypes, configs, errors ----------------------------------------------------------
def test_batch_of_one_and_float64():
    layer = layers.Conv3D(2, 3, padding="same", dtype="float64")
    x = RNG.standard_normal((1, 3, 4, 5, 2))
    y = layer(x)
    assert y.shape == (1, 3, 4, 5, 2) and y.dtype == np.float64
    up = layers.Conv3DTranspose(2, 2, strides=2, dtype="float64")
    z = up(x)
    assert z.shape == (1, 6, 8, 10, 2) and z.dtype == np.float64
    # float32 layer on float64 data: float32 out, as the 2-D layers do
    assert layers.Conv3D(2, 1)(x).dtype == layers.Conv2D(2, 1)(x[:, 0]).dtype


def test_keras_defaults_and_config():
    conv = layers.Conv3D(8, 3)
    assert (conv.strides, conv.dilation_rate, conv.padding) == ((1, 1, 1), (1, 1, 1), "valid")
    assert conv.groups == 1 and conv.use_bias and conv.data_format == "channels_last"
    config = json.loads(json.dumps(conv.get_config()))
    assert config["kernel_size"] == [3, 3, 3] and config["name"] == conv.name
    assert layers.Conv3D.from_config(config).get_config() == conv.get_config()
    # Keras' positional order: data_format before output_padding
    up = layers.Conv3DTranspose(4, 3, 2, "same", "channels_first", 1)
    assert up.data_format == "channels_first" and up.output_padding == (1, 1, 1)
    config = json.loads(json.dumps(up.get_config()))
    again = layers.Conv3DTranspose.from_config(config)
    assert again.get_config() == up.get_config()
    assert layers.Convolution3D is layers.Conv3D
    assert layers.Convolution3DTranspose is layers.Conv3DTranspose


def test_weights_carry_over_between_layers():
    a = layers.Conv3D(4, (2, 3, 1), groups=2)
    b = layers.Conv3D(4, (2, 3, 1), groups=2)
    x = RNG.standard_normal((2, 3, 4, 2, 6)).astype(np.float32)
    a(x), b(x)
    assert [w.shape for w in a.get_weights()] == [(2, 3, 1, 3, 4), (4,)]
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a(x).data, b(x).data)


@pytest.mark.parametrize(
    "layer,shape,message",
    [
        (
            lambda: layers.Conv3D(2, 3),
            (2, 5, 5, 3),
            r"'conv3d.*expected ndim=5, found ndim=4.*\(2, 5, 5, 3\)",
        ),
        (
            lambda: layers.Conv3DTranspose(2, 3),
            (2, 5, 5, 5, 5, 3),
            r"expected ndim=5, found ndim=6",
        ),
        (lambda: layers.Conv3D(2, 4), (1, 3, 5, 5, 2), r"Conv3D.*not positive.*\(1, 3, 5, 5, 2\)"),
        (
            lambda: layers.Conv3D(2, 3, groups=2),
            (1, 4, 4, 4, 3),
            r"divisible by the number of groups",
        ),
    ],
)
def test_errors_name_the_layer_and_the_shape(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer()(np.zeros(shape, np.float32))


def test_argument_errors():
    with pytest.raises(ValueError, match="kernel_size.*3 integers"):
        layers.Conv3D(2, (3, 3))
    with pytest.raises(ValueError, match="strides > 1.*dilation_rate > 1"):
        layers.Conv3D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="output_padding.*< `strides`"):
        layers.Conv3DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="filters must be evenly divisible"):
        layers.Conv3D(3, 3, groups=2)
    with pytest.raises(ValueError, match="conv3d: expected a channels_last input of rank 5"):
        fused_conv3d(np.zeros((1, 3, 3, 3)), np.zeros((1, 1, 1, 3, 2)))
    with pytest.raises(ValueError, match="kernel of shape.*expects 4"):
        fused_conv3d_transpose(np.zeros((1, 2, 2, 2, 3)), np.zeros((1, 1, 1, 2, 4)))
    # a wrong input after building: the channel axis, named
    layer = layers.Conv3D(2, 1)
    layer(np.zeros((1, 2, 2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 2, 2, 2, 4), np.float32))


def test_keras_ops_take_volumes_as_keras_ops_do():
    """``ops.conv``, ``ops.conv_transpose``, ``ops.max_pool`` and ``ops.average_pool`` on
    rank-5 inputs (both data formats) against PyTorch's 3-D functions."""
    torch = pytest.importorskip("torch")
    from dendrite import ops

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, 7, 3)).astype("float32")
    to_torch = (0, 4, 1, 2, 3)
    back = (0, 2, 3, 4, 1)
    tx = torch.tensor(x).permute(*to_torch)
    kernel = rng.standard_normal((3, 2, 3, 3, 4)).astype("float32")
    expected = torch.nn.functional.conv3d(
        tx, torch.tensor(kernel).permute(4, 3, 0, 1, 2), stride=(1, 2, 1)
    )
    expected = expected.permute(*back).numpy()
    np.testing.assert_allclose(ops.conv(x, kernel, strides=(1, 2, 1)).data, expected, atol=2e-5)
    first = ops.conv(np.moveaxis(x, -1, 1), kernel, (1, 2, 1), data_format="channels_first")
    np.testing.assert_allclose(np.moveaxis(first.data, 1, -1), expected, atol=2e-5)
    transposed = rng.standard_normal((2, 3, 3, 4, 3)).astype("float32")
    expected = torch.nn.functional.conv_transpose3d(
        tx, torch.tensor(transposed).permute(4, 3, 0, 1, 2), stride=2
    )
    got = ops.conv_transpose(x, transposed, strides=2)
    np.testing.assert_allclose(got.data, expected.permute(*back).numpy(), atol=2e-5)
    pooled = torch.nn.functional.max_pool3d(tx, 2).permute(*back).numpy()
    np.testing.assert_array_equal(ops.max_pool(x, 2).data, pooled)
    mean = torch.nn.functional.avg_pool3d(tx, (2, 2, 3), stride=1).permute(*back).numpy()
    np.testing.assert_allclose(ops.average_pool(x, (2, 2, 3), strides=1).data, mean, atol=1e-6)
    with pytest.raises(ValueError, match=r"rank 3 \(1-D\), 4 \(2-D\) or 5 \(3-D\)"):
        ops.conv(np.zeros((1, 2, 3, 4, 5, 6), "float32"), kernel)
