"""The 3-D pooling and reshaping layers: MaxPooling3D, AveragePooling3D, the global
poolings, UpSampling3D, ZeroPadding3D, Cropping3D. Gradients against central differences
(float64), outputs and input gradients against PyTorch (float32) in both data formats,
Keras' defaults, configs and errors.

Keras' 'same' pooling pads at the end first; its average leaves the padding out of the
count. The PyTorch references pad with F.pad (-inf for max) and divide a zero-padded sum by
the count of real positions in each window.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite import layers
from dendrite.core import Tensor
from dendrite.ops.pooling3d import average_pool3d, max_pool3d
from dendrite.ops.windows import same_padding
from dendrite.testing import gradcheck

RNG = np.random.default_rng(5)

POOL_CASES = [
    ({"pool_size": 2}, (2, 4, 6, 4, 3)),
    ({"pool_size": (3, 2, 2), "strides": (1, 2, 1)}, (2, 5, 4, 5, 2)),
    ({"pool_size": 3, "strides": 2, "padding": "same"}, (2, 5, 6, 7, 2)),
    ({"pool_size": (2, 3, 1), "padding": "same"}, (1, 3, 5, 2, 4)),
    ({"pool_size": (1, 2, 3), "strides": 1}, (2, 2, 3, 4, 3)),
]


# --- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize("pool", [max_pool3d, average_pool3d])
@pytest.mark.parametrize(
    "options",
    [
        {"pool_size": 2},
        {"pool_size": (2, 3, 2), "strides": 1, "padding": "same"},
        {"pool_size": 3, "strides": (2, 1, 2), "padding": "same", "data_format": "channels_first"},
    ],
)
def test_pool_gradients_match_central_differences(pool, options):
    x = RNG.standard_normal((2, 4, 5, 4, 3))
    gradcheck(lambda x: pool(x, **options), x, name=pool.__name__)
    gradcheck(lambda x: pool(x, **options), x[:1, :3], mode="elementwise", name=pool.__name__)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.UpSampling3D((2, 1, 3), data_format="channels_first", dtype="float64"),
        lambda: layers.ZeroPadding3D(((1, 0), 2, (0, 1)), dtype="float64"),
        lambda: layers.Cropping3D(
            ((1, 0), 1, (0, 2)), data_format="channels_first", dtype="float64"
        ),
        lambda: layers.GlobalMaxPooling3D(dtype="float64"),
        lambda: layers.GlobalAveragePooling3D(keepdims=True, dtype="float64"),
    ],
)
def test_layer_gradients_match_central_differences(layer):
    gradcheck(layer(), RNG.standard_normal((2, 3, 4, 5, 3)))


# --- PyTorch ----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _to_first(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def _torch_pool(layer, x_first):
    """Keras' pooling in PyTorch, on (N, C, D, H, W)."""
    xt = torch.tensor(x_first, requires_grad=True)
    kernel, strides = layer.pool_size, layer.strides
    pads = [0] * 6
    if layer.padding == "same":
        pairs = [same_padding(n, k, s) for n, k, s in zip(x_first.shape[2:], kernel, strides)]
        pads = [p for pair in reversed(pairs) for p in pair]
    if isinstance(layer, layers.MaxPooling3D):
        padded = F.pad(xt, pads, value=-float("inf"))
        return F.max_pool3d(padded, kernel, strides), xt
    total = F.avg_pool3d(F.pad(xt, pads), kernel, strides)
    count = F.avg_pool3d(F.pad(torch.ones_like(xt), pads), kernel, strides)
    return total / count, xt


@pytest.mark.parametrize("cls", [layers.MaxPooling3D, layers.AveragePooling3D])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kwargs,shape", POOL_CASES)
def test_pooling_matches_torch(cls, kwargs, shape, data_format):
    layer = cls(**kwargs, data_format=data_format)
    x = RNG.standard_normal(shape).astype(np.float32)
    first = data_format == "channels_first"
    if first:
        x = _to_first(x)
    inp = Tensor(x, requires_grad=True)
    out = layer(inp)
    assert out.shape == layer.compute_output_shape(x.shape)
    upstream = RNG.standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    yt, xt = _torch_pool(layer, x if first else _to_first(x))
    yt.backward(torch.tensor(upstream if first else _to_first(upstream)))
    y_ref, gx_ref = yt.detach().numpy(), xt.grad.numpy()
    if not first:
        y_ref, gx_ref = np.moveaxis(y_ref, 1, -1), np.moveaxis(gx_ref, 1, -1)
    np.testing.assert_allclose(out.data, y_ref, **TOL)
    np.testing.assert_allclose(inp.grad, gx_ref, **TOL)


def test_max_pool_ties_go_to_the_first_maximum_as_in_torch():
    x = np.zeros((1, 4, 4, 4, 1), np.float32)
    x[0, 1, 0, 1] = x[0, 0, 1, 1] = x[0, 1, 1, 0] = 1.0  # three tied maxima in one window
    inp = Tensor(x, requires_grad=True)
    layers.MaxPooling3D()(inp).backward(np.ones((1, 2, 2, 2, 1), np.float32))
    xt = torch.tensor(_to_first(x), requires_grad=True)
    F.max_pool3d(xt, 2).backward(torch.ones((1, 1, 2, 2, 2)))
    np.testing.assert_array_equal(inp.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_upsampling_matches_torch_nearest(data_format):
    layer = layers.UpSampling3D((2, 3, 1), data_format=data_format)
    x = RNG.standard_normal((2, 2, 3, 4, 3)).astype(np.float32)
    first = data_format == "channels_first"
    y = layer(x).data
    x_first = x if first else _to_first(x)
    ref = F.interpolate(torch.tensor(x_first), scale_factor=(2, 3, 1), mode="nearest").numpy()
    np.testing.assert_array_equal(y, ref if first else np.moveaxis(ref, 1, -1))
    assert y.shape == layer.compute_output_shape(x.shape)


# --- NumPy references, defaults, configs, errors -----------------------------------------------
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_padding_cropping_and_global_pools_match_numpy(data_format):
    x = RNG.standard_normal((2, 3, 4, 5, 3)).astype(np.float32)
    axes = (1, 2, 3) if data_format == "channels_last" else (2, 3, 4)
    pads = [(0, 0)] * 5
    for axis, pair in zip(axes, ((1, 0), (2, 2), (0, 1))):
        pads[axis] = pair
    got = layers.ZeroPadding3D(((1, 0), 2, (0, 1)), data_format=data_format)(x).data
    np.testing.assert_array_equal(got, np.pad(x, pads))
    index = [slice(None)] * 5
    for axis, (a, b) in zip(axes, ((1, 0), (1, 1), (0, 2))):
        index[axis] = slice(a, x.shape[axis] - b)
    got = layers.Cropping3D(((1, 0), 1, (0, 2)), data_format=data_format)(x).data
    np.testing.assert_array_equal(got, x[tuple(index)])
    gmax = layers.GlobalMaxPooling3D(data_format=data_format)(x).data
    np.testing.assert_array_equal(gmax, x.max(axis=axes))
    gavg = layers.GlobalAveragePooling3D(data_format=data_format, keepdims=True)(x).data
    np.testing.assert_allclose(gavg, x.mean(axis=axes, keepdims=True), rtol=1e-6)


def test_keras_defaults_aliases_and_configs():
    assert layers.MaxPooling3D().pool_size == (2, 2, 2)
    assert layers.AveragePooling3D(3).strides == (3, 3, 3)
    assert layers.ZeroPadding3D().padding == ((1, 1), (1, 1), (1, 1))
    assert layers.ZeroPadding3D((1, 2, 3)).padding == ((1, 1), (2, 2), (3, 3))
    assert layers.Cropping3D().cropping == ((1, 1), (1, 1), (1, 1))
    assert layers.Cropping3D(2).cropping == ((2, 2),) * 3
    assert layers.UpSampling3D().size == (2, 2, 2)
    assert layers.GlobalAveragePooling3D().keepdims is False
    pairs = {
        "MaxPool3D": layers.MaxPooling3D,
        "AvgPool3D": layers.AveragePooling3D,
        "GlobalMaxPool3D": layers.GlobalMaxPooling3D,
        "GlobalAvgPool3D": layers.GlobalAveragePooling3D,
    }
    for alias, cls in pairs.items():
        assert getattr(layers, alias) is cls and alias in layers.__all__
    for layer in (
        layers.MaxPooling3D((2, 1, 2), strides=1, padding="same", data_format="channels_first"),
        layers.AveragePooling3D(),
        layers.GlobalMaxPooling3D(keepdims=True),
        layers.UpSampling3D((1, 2, 3)),
        layers.ZeroPadding3D(((0, 1), (2, 3), (4, 5))),
        layers.Cropping3D(((0, 1), (2, 3), (4, 5))),
    ):
        config = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(config).get_config() == layer.get_config()


def test_batch_of_one_and_float64():
    x = RNG.standard_normal((1, 4, 4, 4, 2))
    for layer in (
        layers.MaxPooling3D(dtype="float64"),
        layers.AveragePooling3D(padding="same", dtype="float64"),
        layers.UpSampling3D(dtype="float64"),
        layers.ZeroPadding3D(dtype="float64"),
        layers.Cropping3D(dtype="float64"),
        layers.GlobalAveragePooling3D(dtype="float64"),
    ):
        y = layer(x)
        assert y.dtype == np.float64 and y.shape == layer.compute_output_shape(x.shape)


@pytest.mark.parametrize(
    "layer,shape,message",
    [
        (
            layers.MaxPooling3D,
            (2, 4, 4, 3),
            r"'max_pooling3d.*expected ndim=5, found ndim=4.*\(2, 4, 4, 3\)",
        ),
        (layers.AveragePooling3D, (2, 4, 4, 4, 4, 3), r"expected ndim=5, found ndim=6"),
        (layers.GlobalMaxPooling3D, (2, 4, 3), r"'global_max_pooling3d.*expected ndim=5"),
        (layers.GlobalAveragePooling3D, (2, 4, 4, 3), r"expected ndim=5, found ndim=4"),
        (layers.UpSampling3D, (2, 4, 4, 3), r"'up_sampling3d.*expected ndim=5"),
        (layers.ZeroPadding3D, (2, 4, 3), r"'zero_padding3d.*expected ndim=5"),
        (layers.Cropping3D, (2, 4, 4, 3), r"'cropping3d.*expected ndim=5"),
        (
            lambda: layers.MaxPooling3D(3),
            (1, 2, 4, 4, 1),
            r"MaxPooling3D.*does not fit.*\(1, 2, 4, 4, 1\)",
        ),
        (
            lambda: layers.Cropping3D(2),
            (1, 4, 5, 5, 1),
            r"Cropping3D.*must be smaller.*\(1, 4, 5, 5, 1\)",
        ),
    ],
)
def test_errors_name_the_layer_and_the_shape(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer()(np.zeros(shape, np.float32))


def test_argument_errors():
    with pytest.raises(ValueError, match="pool_size.*3 integers"):
        layers.MaxPooling3D((2, 2))
    with pytest.raises(ValueError, match="padding.*'valid', 'same'"):
        layers.AveragePooling3D(padding="causal")
    with pytest.raises(ValueError, match="cannot be negative"):
        layers.Cropping3D(-1)
    with pytest.raises(ValueError, match="tuple of 3 ints"):
        layers.ZeroPadding3D((1, 2))
    with pytest.raises(ValueError, match="size.*3 integers"):
        layers.UpSampling3D((2, 2))
    with pytest.raises(ValueError, match="max_pool: expected an input of rank 5"):
        max_pool3d(np.zeros((1, 2, 2, 2)), 2)
    with pytest.raises(ValueError, match="average_pool: the pool size"):
        average_pool3d(np.zeros((1, 2, 2, 2, 1)), 3)
