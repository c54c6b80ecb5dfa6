"""Pooling: the MaxPool / AvgPool primitives and the pooling layers (values against a
NumPy reference, gradchecks in float64, tie routing, masks, configs, errors) and, when
PyTorch is installed, parity with F.max_pool2d / F.avg_pool2d / F.max_pool1d."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from dendrite.ops.pooling import average_pool, max_pool
from dendrite.testing import gradcheck

RNG = np.random.default_rng(3)


def reference_pool(x, pool, strides, pads, mode):
    """NumPy oracle over output positions (NHWC), padding excluded from the average."""
    n, h, w, c = x.shape
    (pt, pb), (pl, pr) = pads
    oh = (h + pt + pb - pool[0]) // strides[0] + 1
    ow = (w + pl + pr - pool[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, c))
    for p in range(oh):
        for q in range(ow):
            top, left = p * strides[0] - pt, q * strides[1] - pl
            patch = x[:, max(top, 0) : top + pool[0], max(left, 0) : left + pool[1]]
            out[:, p, q] = patch.max(axis=(1, 2)) if mode == "max" else patch.mean(axis=(1, 2))
    return out


CASES = [
    # (shape, pool, strides, padding)
    ((2, 6, 6, 3), (2, 2), None, "valid"),
    ((2, 7, 5, 2), (2, 2), None, "valid"),  # odd sizes: the last row/column is dropped
    ((2, 7, 7, 2), (3, 3), (2, 2), "valid"),  # overlapping windows
    ((2, 7, 6, 2), (3, 2), (2, 1), "same"),
    ((2, 5, 5, 1), (2, 2), (3, 3), "same"),  # gaps between windows
]


@pytest.mark.parametrize("op,mode", [(max_pool, "max"), (average_pool, "avg")])
@pytest.mark.parametrize("case", CASES)
def test_pool_matches_reference_and_gradchecks(op, mode, case):
    shape, pool, strides, padding = case
    x = RNG.standard_normal(shape)
    steps = strides or pool
    out = op(x, pool, strides, padding)
    if padding == "same":
        pads = []
        for n, k, s in zip(shape[1:3], pool, steps):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
    else:
        pads = [(0, 0), (0, 0)]
    np.testing.assert_allclose(out.data, reference_pool(x, pool, steps, pads, mode), atol=1e-12)
    gradcheck(lambda t: op(t, pool, strides, padding), x, name=f"{op.__name__}{case}")


def test_max_pool_routes_ties_to_the_first_maximum():
    x = np.array([[1.0, 1.0], [1.0, 0.0]]).reshape(1, 2, 2, 1)
    inp = Tensor(x, requires_grad=True)
    max_pool(inp, 2).backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(inp.grad[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])
    # Overlapping windows: an element that is the maximum of two windows gets both shares.
    x = np.array([0.0, 5.0, 1.0, 2.0]).reshape(1, 4, 1)
    inp = Tensor(x, requires_grad=True)
    max_pool(inp, 2, strides=1).backward(np.array([1.0, 10.0, 100.0]).reshape(1, 3, 1))
    np.testing.assert_array_equal(inp.grad.ravel(), [0.0, 11.0, 0.0, 100.0])


def test_pool_1d_and_channels_first():
    x = RNG.standard_normal((2, 9, 3))
    out = max_pool(x, 3, strides=2, padding="same")
    np.testing.assert_allclose(out.data, max_pool(x[:, None], (1, 3), (1, 2), "same").data[:, 0])
    first = average_pool(np.moveaxis(x, -1, 1), 2, data_format="channels_first")
    np.testing.assert_allclose(np.moveaxis(first.data, 1, -1), average_pool(x, 2).data)
    gradcheck(lambda t: max_pool(t, 2, data_format="channels_first"), np.moveaxis(x, -1, 1))


def test_average_pool_same_excludes_padding():
    x = np.ones((1, 3, 3, 1))
    out = average_pool(x, 2, strides=2, padding="same")
    np.testing.assert_allclose(out.data, np.ones((1, 2, 2, 1)))


def test_pool_float32_and_no_grad_path():
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    out = max_pool(Tensor(x), 2)
    assert out.dtype == np.float32 and not out.requires_grad
    np.testing.assert_array_equal(out.data, x.reshape(2, 3, 2, 3, 2, 4).max(axis=(2, 4)))


def test_pool_errors():
    with pytest.raises(ValueError, match=r"max_pool: the pool size \(3, 3\) does not fit"):
        max_pool(np.zeros((1, 2, 2, 1)), 3)
    with pytest.raises(ValueError, match=r"rank 3 .* 4 \(2-D\) or 5"):
        max_pool(np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="padding"):
        max_pool(np.zeros((1, 4, 4, 1)), 2, padding="full")


# --- layers ---------------------------------------------------------------------------------
def test_max_pooling2d_layer():
    layer = MaxPooling2D()
    assert layer.pool_size == (2, 2) and layer.strides == (2, 2)
    x = RNG.standard_normal((2, 26, 26, 4)).astype(np.float32)
    out = layer(x)
    assert out.shape == (2, 13, 13, 4) == layer.compute_output_shape((2, 26, 26, 4))
    assert layer.compute_output_shape((None, 11, 11, 64)) == (None, 5, 5, 64)
    assert MaxPooling2D(3, 2, "same").compute_output_shape((None, 7, 8, 1)) == (None, 4, 4, 1)
    assert AveragePooling1D(3, data_format="channels_first").compute_output_shape(
        (None, 2, 10)
    ) == (None, 2, 3)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda: MaxPooling2D(3, 2, "same", dtype="float64"), (2, 7, 6, 2)),
        (lambda: AveragePooling2D(2, data_format="channels_first", dtype="float64"), (2, 2, 5, 4)),
        (lambda: MaxPooling1D(2, 1, dtype="float64"), (2, 6, 3)),
        (lambda: AveragePooling1D(3, 2, "same", dtype="float64"), (2, 7, 3)),
        (lambda: GlobalMaxPooling2D(dtype="float64"), (2, 3, 4, 2)),
        (lambda: GlobalAveragePooling2D(keepdims=True, dtype="float64"), (2, 3, 4, 2)),
        (lambda: GlobalMaxPooling1D(data_format="channels_first", dtype="float64"), (2, 3, 5)),
        (lambda: GlobalAveragePooling1D(dtype="float64"), (2, 5, 3)),
    ],
)
def test_pooling_layers_gradcheck(layer, shape):
    instance = layer()
    gradcheck(instance, RNG.standard_normal(shape), name=instance.name)


def test_global_pooling_values_and_shapes():
    x = RNG.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(GlobalMaxPooling2D()(x).data, x.max(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(
        GlobalAveragePooling2D(data_format="channels_first")(x).data, x.mean(axis=(2, 3)), rtol=1e-6
    )
    layer = GlobalAveragePooling2D(keepdims=True)
    assert layer(x).shape == (2, 1, 1, 5) == layer.compute_output_shape((2, 3, 4, 5))
    assert GlobalMaxPooling1D().compute_output_shape((None, 7, 3)) == (None, 3)


def test_global_average_pooling1d_mask():
    x = RNG.standard_normal((2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    out = GlobalAveragePooling1D()(Tensor(x), mask=mask)
    # A float32 layer: a mean near 0 needs an absolute tolerance too.
    np.testing.assert_allclose(out.data[0], x[0, :2].mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out.data[1], x[1].mean(axis=0), rtol=1e-6, atol=1e-7)
    layer = GlobalAveragePooling1D(dtype="float64")
    gradcheck(lambda t: layer(t, mask=mask), x)
    assert layer.compute_mask(x, mask) is None


@pytest.mark.parametrize(
    "layer",
    [
        lambda: MaxPooling2D((3, 2), strides=(2, 1), padding="same"),
        lambda: AveragePooling1D(4, data_format="channels_first"),
        lambda: GlobalAveragePooling2D(keepdims=True, data_format="channels_first"),
        lambda: GlobalMaxPooling1D(),
    ],
)
def test_pooling_config_round_trip(layer):
    original = layer()
    config = json.loads(json.dumps(original.get_config()))
    clone = type(original).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config


def test_pooling_layer_errors_name_layer_and_shapes():
    with pytest.raises(ValueError, match=r"'pool'.*expected ndim=4, found ndim=3"):
        MaxPooling2D(name="pool")(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"'tiny'.*pool_size=\(3, 3\).*\(1, 2, 2, 1\)"):
        AveragePooling2D(3, name="tiny")(np.zeros((1, 2, 2, 1), np.float32))
    with pytest.raises(ValueError, match=r"'gp'.*expected ndim=3"):
        GlobalAveragePooling1D(name="gp")(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="pool_size"):
        MaxPooling2D((2, 2, 2))


# --- PyTorch parity -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pool,strides,shape", [(2, None, (3, 26, 26, 8)), (3, 2, (2, 11, 9, 4)), (2, 1, (2, 5, 6, 3))]
)
def test_pooling_matches_torch(pool, strides, shape):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(shape).astype(np.float32)
    x[0, :2, :2] = 0.5  # ties
    for op, torch_op in (
        (max_pool, torch.nn.functional.max_pool2d),
        (average_pool, torch.nn.functional.avg_pool2d),
    ):
        inp = Tensor(x, requires_grad=True)
        out = op(inp, pool, strides)
        upstream = RNG.standard_normal(out.shape).astype(np.float32)
        out.backward(upstream)
        xt = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
        yt = torch_op(xt, pool, strides or pool)
        yt.backward(torch.tensor(np.moveaxis(upstream, -1, 1).copy()))
        np.testing.assert_allclose(out.data, np.moveaxis(yt.detach().numpy(), 1, -1), atol=1e-6)
        np.testing.assert_allclose(inp.grad, np.moveaxis(xt.grad.numpy(), 1, -1), atol=1e-5)


def test_max_pooling1d_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 9, 3)).astype(np.float32)
    layer = MaxPooling1D(3, strides=2)
    inp = Tensor(x, requires_grad=True)
    out = layer(inp)
    out.backward(np.ones(out.shape, np.float32))
    xt = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    yt = torch.nn.functional.max_pool1d(xt, 3, 2)
    yt.sum().backward()
    np.testing.assert_allclose(out.data, np.moveaxis(yt.detach().numpy(), 1, -1))
    np.testing.assert_allclose(inp.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


@pytest.mark.parametrize("pool", [2, 3, (2, 3), (1, 2), (3, 1)])
def test_max_pool_ties_route_like_torch(pool):
    """Integer-valued inputs tie everywhere; the gradient still goes where PyTorch's does
    (the first maximum of each window in row-major order)."""
    torch = pytest.importorskip("torch")
    x = RNG.integers(0, 3, (3, 9, 9, 4)).astype(np.float32)
    inp = Tensor(x, requires_grad=True)
    out = max_pool(inp, pool)
    upstream = RNG.standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    xt = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, pool)
    yt.backward(torch.tensor(np.moveaxis(upstream, -1, 1).copy()))
    np.testing.assert_array_equal(out.data, np.moveaxis(yt.detach().numpy(), 1, -1))
    np.testing.assert_array_equal(inp.grad, np.moveaxis(xt.grad.numpy(), 1, -1))
