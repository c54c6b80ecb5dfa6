"""Convolution layers against PyTorch (float32, outputs and gradients to 1e-5).

Keras kernels convert to PyTorch's layouts: Conv (kh, kw, C/g, F) -> (F, C/g, kh, kw);
Conv transpose (kh, kw, F, C) -> (C, F, kh, kw); depthwise (kh, kw, C, M) ->
(C M, 1, kh, kw). Keras' asymmetric 'same' padding is applied with F.pad.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.conv import Conv1D, Conv2D
from dendrite.layers.conv_depthwise import DepthwiseConv2D, SeparableConv2D
from dendrite.layers.conv_transpose import Conv2DTranspose
from dendrite.ops.windows import same_padding

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(11)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def to_nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def to_nhwc(a):
    return np.moveaxis(a, 1, -1)


def run_dendrite(layer, x, upstream, names):
    """Output and gradients (input, then each named weight) of a dendrite layer."""
    inp = Tensor(x, requires_grad=True)
    out = layer(inp)
    out.backward(upstream)
    grads = {name: getattr(layer, name).grad for name in names}
    return out.data, inp.grad, grads


def torch_tensor(a):
    return torch.tensor(np.asarray(a), requires_grad=True)


def same_pads_nchw(x_shape_hw, ksize, strides, dilation):
    pads = [same_padding(n, k, s, d) for n, k, s, d in zip(x_shape_hw, ksize, strides, dilation)]
    # F.pad takes the last axis first: (left, right, top, bottom).
    return [p for pair in reversed(pads) for p in pair]


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({"filters": 8, "kernel_size": 3}, (4, 12, 11, 3)),
        ({"filters": 8, "kernel_size": (3, 2), "strides": (2, 1), "padding": "same"}, (3, 9, 8, 4)),
        ({"filters": 6, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (2, 9, 9, 2)),
        ({"filters": 8, "kernel_size": 3, "groups": 4, "activation": "relu"}, (2, 8, 8, 8)),
        ({"filters": 32, "kernel_size": 3, "padding": "same", "strides": 2}, (2, 10, 9, 32)),
    ],
)
def test_conv2d_matches_torch(kwargs, shape):
    layer = Conv2D(**kwargs, bias_initializer="glorot_uniform")
    x = RNG.standard_normal(shape).astype(np.float32)
    layer(x)
    out_shape = layer.compute_output_shape(shape)
    upstream = RNG.standard_normal(out_shape).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel", "bias"))

    xt = torch_tensor(to_nchw(x))
    kt = torch_tensor(np.transpose(layer.kernel.data, (3, 2, 0, 1)))
    bt = torch_tensor(layer.bias.data)
    strides = layer.strides
    xin = xt
    if layer.padding == "same":
        xin = F.pad(xt, same_pads_nchw(shape[1:3], layer.kernel_size, strides, layer.dilation_rate))
    yt = F.conv2d(xin, kt, bt, stride=strides, dilation=layer.dilation_rate, groups=layer.groups)
    if kwargs.get("activation") == "relu":
        yt = torch.relu(yt)
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    np.testing.assert_allclose(grads["kernel"], np.transpose(kt.grad.numpy(), (2, 3, 1, 0)), **TOL)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


def test_conv2d_channels_first_matches_torch():
    layer = Conv2D(5, 3, strides=2, data_format="channels_first")
    x = RNG.standard_normal((2, 3, 9, 8)).astype(np.float32)
    layer(x)
    upstream = RNG.standard_normal((2, 5, 4, 3)).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel",))
    xt = torch_tensor(x)
    kt = torch_tensor(np.transpose(layer.kernel.data, (3, 2, 0, 1)))
    yt = F.conv2d(xt, kt, torch.tensor(layer.bias.data), stride=2)
    yt.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(grads["kernel"], np.transpose(kt.grad.numpy(), (2, 3, 1, 0)), **TOL)


@pytest.mark.parametrize("padding,dilation,strides", [("causal", 2, 1), ("same", 1, 2)])
def test_conv1d_matches_torch(padding, dilation, strides):
    layer = Conv1D(4, 3, strides=strides, padding=padding, dilation_rate=dilation)
    x = RNG.standard_normal((3, 10, 2)).astype(np.float32)
    layer(x)
    upstream = RNG.standard_normal(layer.compute_output_shape(x.shape)).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel", "bias"))
    xt = torch_tensor(to_nchw(x))
    kt = torch_tensor(np.transpose(layer.kernel.data, (2, 1, 0)))
    bt = torch_tensor(layer.bias.data)
    if padding == "causal":
        pads = [(3 - 1) * dilation, 0]
    else:
        pads = list(same_padding(10, 3, strides, dilation))
    yt = F.conv1d(F.pad(xt, pads), kt, bt, stride=strides, dilation=dilation)
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    np.testing.assert_allclose(grads["kernel"], np.transpose(kt.grad.numpy(), (2, 1, 0)), **TOL)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


def test_depthwise_conv2d_matches_torch():
    layer = DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same")
    x = RNG.standard_normal((2, 9, 8, 3)).astype(np.float32)
    layer(x)
    upstream = RNG.standard_normal(layer.compute_output_shape(x.shape)).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel", "bias"))
    kernel = layer.kernel.data  # (3, 3, C, M)
    xt = torch_tensor(to_nchw(x))
    kt = torch_tensor(np.transpose(kernel.reshape(3, 3, 1, 6), (3, 2, 0, 1)))
    bt = torch_tensor(layer.bias.data)
    xin = F.pad(xt, same_pads_nchw((9, 8), (3, 3), (2, 2), (1, 1)))
    yt = F.conv2d(xin, kt, bt, stride=2, groups=3)
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    expected_k = np.transpose(kt.grad.numpy(), (2, 3, 1, 0)).reshape(kernel.shape)
    np.testing.assert_allclose(grads["kernel"], expected_k, **TOL)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


def test_separable_conv2d_matches_torch():
    layer = SeparableConv2D(5, 3, depth_multiplier=2, activation="relu")
    x = RNG.standard_normal((2, 7, 7, 3)).astype(np.float32)
    layer(x)
    upstream = RNG.standard_normal((2, 5, 5, 5)).astype(np.float32)
    names = ("depthwise_kernel", "pointwise_kernel", "bias")
    out, gx, grads = run_dendrite(layer, x, upstream, names)
    xt = torch_tensor(to_nchw(x))
    dt = torch_tensor(np.transpose(layer.depthwise_kernel.data.reshape(3, 3, 1, 6), (3, 2, 0, 1)))
    pt = torch_tensor(np.transpose(layer.pointwise_kernel.data, (3, 2, 0, 1)))
    bt = torch_tensor(layer.bias.data)
    yt = torch.relu(F.conv2d(F.conv2d(xt, dt, groups=3), pt, bt))
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    np.testing.assert_allclose(
        grads["pointwise_kernel"], np.transpose(pt.grad.numpy(), (2, 3, 1, 0)), **TOL
    )
    expected_dw = np.transpose(dt.grad.numpy(), (2, 3, 1, 0)).reshape(3, 3, 3, 2)
    np.testing.assert_allclose(grads["depthwise_kernel"], expected_dw, **TOL)


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({"filters": 4, "kernel_size": 3, "strides": 2}, (2, 5, 4, 3)),
        ({"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 1}, (2, 5, 4, 3)),
        ({"filters": 16, "kernel_size": 3, "strides": 1, "dilation_rate": 2}, (2, 4, 4, 5)),
    ],
)
def test_conv2d_transpose_valid_matches_torch(kwargs, shape):
    layer = Conv2DTranspose(**kwargs, bias_initializer="glorot_uniform")
    x = RNG.standard_normal(shape).astype(np.float32)
    layer(x)
    out_shape = layer.compute_output_shape(shape)
    upstream = RNG.standard_normal(out_shape).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel", "bias"))
    xt = torch_tensor(to_nchw(x))
    kt = torch_tensor(np.transpose(layer.kernel.data, (3, 2, 0, 1)))
    bt = torch_tensor(layer.bias.data)
    extra = kwargs.get("output_padding", 0)
    yt = F.conv_transpose2d(
        xt, kt, bt, stride=layer.strides, output_padding=extra, dilation=layer.dilation_rate
    )
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    np.testing.assert_allclose(grads["kernel"], np.transpose(kt.grad.numpy(), (2, 3, 1, 0)), **TOL)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


def test_conv2d_transpose_same_matches_cropped_torch():
    """Keras 'same', stride 2, kernel 3: output 2n; PyTorch's full output cropped (0, 1)."""
    layer = Conv2DTranspose(3, 3, strides=2, padding="same")
    x = RNG.standard_normal((2, 4, 5, 2)).astype(np.float32)
    layer(x)
    upstream = RNG.standard_normal((2, 8, 10, 3)).astype(np.float32)
    out, gx, grads = run_dendrite(layer, x, upstream, ("kernel",))
    xt = torch_tensor(to_nchw(x))
    kt = torch_tensor(np.transpose(layer.kernel.data, (3, 2, 0, 1)))
    full = F.conv_transpose2d(xt, kt, torch.tensor(layer.bias.data), stride=2)  # 9 x 11
    yt = full[:, :, :8, :10]
    yt.backward(torch.tensor(to_nchw(upstream)))
    np.testing.assert_allclose(out, to_nhwc(yt.detach().numpy()), **TOL)
    np.testing.assert_allclose(gx, to_nhwc(xt.grad.numpy()), **TOL)
    np.testing.assert_allclose(grads["kernel"], np.transpose(kt.grad.numpy(), (2, 3, 1, 0)), **TOL)
