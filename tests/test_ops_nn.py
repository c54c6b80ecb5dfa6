"""The fused loss primitives: values and VJPs against unfused NumPy, gradcheck and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor, no_grad
from dendrite.ops import nn
from dendrite.ops.nn import (
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from dendrite.testing import gradcheck

RNG = np.random.default_rng(1234)


def np_log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z.astype(np.float64)
    shifted = z - z.max(axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis, keepdims=True))


def np_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(np_log_softmax(z, axis))


def np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def onehot(labels: np.ndarray, classes: int, axis: int = -1) -> np.ndarray:
    out = np.eye(classes)[labels]
    return np.moveaxis(out, -1, axis)


def soft_labels(shape: tuple, axis: int = -1) -> np.ndarray:
    raw = RNG.random(shape)
    return raw / raw.sum(axis, keepdims=True)


def value_and_grad(fn, labels, logits, upstream=None):
    z = Tensor(logits, requires_grad=True)
    out = fn(labels, z)
    upstream = np.ones(out.shape) if upstream is None else upstream
    out.backward(upstream)
    return out.data, z.grad


# --- softmax_cross_entropy ------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((5, 4), -1), ((7,), 0), ((2, 3, 6), -1), ((3, 4, 5), 1)])
def test_softmax_cross_entropy_matches_unfused(shape, axis):
    z = RNG.standard_normal(shape) * 3
    y = soft_labels(shape, axis)
    g = RNG.standard_normal(np.delete(np.array(shape), axis % len(shape)))
    loss, grad = value_and_grad(lambda a, b: softmax_cross_entropy(a, b, axis=axis), y, z, g)
    expected = -np.sum(y * np_log_softmax(z, axis), axis)
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=1e-12)
    g_col = np.expand_dims(g, axis)
    expected_grad = g_col * (np_softmax(z, axis) * y.sum(axis, keepdims=True) - y)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_softmax_cross_entropy_unnormalised_labels_grad():
    """sum(y) != 1 (e.g. weighted targets): dl/dz = g (softmax sum(y) - y)."""
    z = RNG.standard_normal((4, 5))
    y = RNG.random((4, 5)) * 2
    gradcheck(lambda a, b: softmax_cross_entropy(a, b), y, z, name="softmax_ce")


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_cross_entropy_gradcheck_both_inputs(axis):
    shape = (3, 4, 5)
    gradcheck(
        lambda y, z: softmax_cross_entropy(y, z, axis=axis),
        soft_labels(shape, axis),
        RNG.standard_normal(shape),
        name="softmax_cross_entropy",
    )
    gradcheck(
        lambda y, z: softmax_cross_entropy(y, z, axis=axis),
        soft_labels(shape, axis),
        RNG.standard_normal(shape),
        mode="elementwise",
        name="softmax_cross_entropy",
    )


def test_softmax_cross_entropy_label_grad_only_when_asked():
    z = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    y = Tensor(soft_labels((3, 4)), requires_grad=True)
    softmax_cross_entropy(y, z).sum().backward()
    np.testing.assert_allclose(y.grad, -np_log_softmax(z.data), rtol=1e-12)
    y2 = Tensor(y.data, requires_grad=True)
    softmax_cross_entropy(y2, z.data).sum().backward()
    np.testing.assert_allclose(y2.grad, y.grad)


def test_softmax_cross_entropy_float32_stays_float32():
    z = Tensor(RNG.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    out = softmax_cross_entropy(np.eye(3)[[0, 1, 2, 0]], z)
    assert out.dtype == np.float32
    out.sum().backward()
    assert z.grad.dtype == np.float32


def test_softmax_cross_entropy_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape.*\(4, 3\).*\(4, 5\)"):
        softmax_cross_entropy(np.zeros((4, 3)), np.zeros((4, 5)))


# --- sparse_softmax_cross_entropy -----------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((5,), 0), ((2, 3, 7), -1), ((2, 5, 3), 1)])
def test_sparse_matches_dense(shape, axis):
    z = RNG.standard_normal(shape) * 2
    classes = shape[axis]
    label_shape = tuple(np.delete(np.array(shape), axis % len(shape)))
    k = RNG.integers(0, classes, size=label_shape)
    g = RNG.standard_normal(label_shape)
    loss, grad = value_and_grad(lambda a, b: sparse_softmax_cross_entropy(a, b, axis=axis), k, z, g)
    y = onehot(k, classes, axis)
    dense_loss, dense_grad = value_and_grad(
        lambda a, b: softmax_cross_entropy(a, b, axis=axis), y, z, g
    )
    np.testing.assert_allclose(loss, -np.sum(y * np_log_softmax(z, axis), axis), rtol=1e-12)
    np.testing.assert_allclose(loss, dense_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, dense_grad, rtol=1e-10, atol=1e-14)


def test_sparse_gradcheck():
    k = RNG.integers(0, 5, size=(4, 3))
    gradcheck(lambda z: sparse_softmax_cross_entropy(k, z), RNG.standard_normal((4, 3, 5)))
    gradcheck(
        lambda z: sparse_softmax_cross_entropy(k[:, 0], z, axis=0),
        RNG.standard_normal((5, 4)),
        mode="elementwise",
    )


@pytest.mark.parametrize("bad", [10, -1, 11])
def test_sparse_label_out_of_range(bad):
    labels = np.array([0, 3, bad])
    with pytest.raises(ValueError, match=rf"label {bad} is out of range for 10 classes"):
        sparse_softmax_cross_entropy(labels, np.zeros((3, 10)))


def test_sparse_label_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="shape of the logits without the class axis"):
        sparse_softmax_cross_entropy(np.zeros((4, 1), dtype=int), np.zeros((4, 3)))
    with pytest.raises(TypeError, match="integers"):
        sparse_softmax_cross_entropy(np.array(["a", "b"]), np.zeros((2, 3)))


def test_sparse_float_labels_are_cast():
    z = RNG.standard_normal((3, 4))
    a = sparse_softmax_cross_entropy(np.array([0.0, 3.0, 1.0]), z).data
    b = sparse_softmax_cross_entropy(np.array([0, 3, 1]), z).data
    np.testing.assert_array_equal(a, b)


def test_sparse_ignore_class():
    z = RNG.standard_normal((5, 4))
    k = np.array([1, -1, 3, -1, 0])
    loss, grad = value_and_grad(
        lambda a, b: sparse_softmax_cross_entropy(a, b, ignore_class=-1), k, z
    )
    keep = k != -1
    full = -np_log_softmax(z)[np.arange(5), np.where(keep, k, 0)]
    np.testing.assert_allclose(loss, np.where(keep, full, 0.0), rtol=1e-12)
    assert np.all(grad[~keep] == 0)
    np.testing.assert_allclose(
        grad[keep], np_softmax(z)[keep] - onehot(k[keep], 4), rtol=1e-10, atol=1e-14
    )
    # a label of 255 marked as ignored is not out of range
    sparse_softmax_cross_entropy(np.array([255, 1]), z[:2], ignore_class=255)


def test_sparse_second_backward_is_identical():
    z = Tensor(RNG.standard_normal((4, 6)), requires_grad=True)
    out = sparse_softmax_cross_entropy(np.array([1, 2, 3, 0]), z).sum()
    out.backward(retain_graph=True)
    first = z.grad.copy()
    z.grad = None
    out.backward()
    np.testing.assert_array_equal(z.grad, first)


def test_no_saved_arrays_without_grad():
    z = Tensor(RNG.standard_normal((4, 6)), requires_grad=True)
    with no_grad():
        out = sparse_softmax_cross_entropy(np.array([1, 2, 3, 0]), z)
    assert out._ctx is None and not out.requires_grad


# --- sigmoid_binary_cross_entropy ------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6,), (4, 3), (2, 3, 2)])
def test_sigmoid_bce_matches_unfused(shape):
    z = RNG.standard_normal(shape) * 3
    y = RNG.random(shape)
    g = RNG.standard_normal(shape)
    loss, grad = value_and_grad(sigmoid_binary_cross_entropy, y, z, g)
    p = np_sigmoid(z)
    np.testing.assert_allclose(loss, -(y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-10)
    np.testing.assert_allclose(grad, g * (p - y), rtol=1e-10, atol=1e-14)


def test_sigmoid_bce_gradcheck_both_inputs():
    gradcheck(sigmoid_binary_cross_entropy, RNG.random((4, 3)), RNG.standard_normal((4, 3)) * 4)
    gradcheck(
        sigmoid_binary_cross_entropy,
        RNG.random((3, 1)),
        RNG.standard_normal((3, 4)),
        mode="elementwise",
    )


def test_sigmoid_bce_broadcast_labels():
    z = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    out = sigmoid_binary_cross_entropy(np.array([1.0, 0.0, 1.0, 0.0]), z)
    assert out.shape == (3, 4)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        sigmoid_binary_cross_entropy(np.zeros(3), z)


# --- stability --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_finite(dtype):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]], dtype=dtype)
    y = np.eye(3, dtype=dtype)[[1, 2]]
    loss, grad = value_and_grad(softmax_cross_entropy, y, z)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, [2000.0, 0.0])
    np.testing.assert_allclose(grad, [[1, -1, 0], [0, 0, 0]], atol=1e-6)

    loss, grad = value_and_grad(sparse_softmax_cross_entropy, np.array([1, 2]), z)
    np.testing.assert_allclose(loss, [2000.0, 0.0])
    assert np.all(np.isfinite(grad))

    zb = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=dtype)
    yb = np.array([0.0, 1.0, 1.0, 0.0, 1.0], dtype=dtype)
    loss, grad = value_and_grad(sigmoid_binary_cross_entropy, yb, zb)
    np.testing.assert_allclose(loss, [1000.0, 1000.0, 0.0, 0.0, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [1.0, -1.0, 0.0, 0.0, -0.5], atol=1e-7)
    assert loss.dtype == dtype and grad.dtype == dtype


# --- PyTorch ----------------------------------------------------------------------------------
def test_against_torch():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    z = RNG.standard_normal((16, 10)) * 4
    k = RNG.integers(0, 10, size=16)

    tz = torch.tensor(z, requires_grad=True)
    expected = f.cross_entropy(tz, torch.tensor(k), reduction="none")
    expected.sum().backward()
    loss, grad = value_and_grad(sparse_softmax_cross_entropy, k, z)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-5, atol=1e-7)

    y = soft_labels((16, 10))
    tz = torch.tensor(z, requires_grad=True)
    expected = f.cross_entropy(tz, torch.tensor(y), reduction="none")
    expected.sum().backward()
    loss, grad = value_and_grad(softmax_cross_entropy, y, z)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-5, atol=1e-7)

    # label smoothing: torch's label_smoothing=eps equals dendrite with smoothed targets
    eps = 0.1
    tz = torch.tensor(z, requires_grad=True)
    expected = f.cross_entropy(tz, torch.tensor(k), label_smoothing=eps, reduction="none")
    expected.sum().backward()
    smoothed = np.eye(10)[k] * (1 - eps) + eps / 10
    loss, grad = value_and_grad(softmax_cross_entropy, smoothed, z)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-5, atol=1e-7)

    zb = RNG.standard_normal((8, 3)) * 5
    yb = RNG.random((8, 3))
    tz = torch.tensor(zb, requires_grad=True)
    expected = f.binary_cross_entropy_with_logits(tz, torch.tensor(yb), reduction="none")
    expected.sum().backward()
    loss, grad = value_and_grad(sigmoid_binary_cross_entropy, yb, zb)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_against_torch_float32_extremes():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    z = (RNG.standard_normal((8, 5)) * 500).astype(np.float32)
    k = RNG.integers(0, 5, size=8)
    tz = torch.tensor(z, requires_grad=True)
    expected = f.cross_entropy(tz, torch.tensor(k), reduction="none")
    expected.sum().backward()
    loss, grad = value_and_grad(sparse_softmax_cross_entropy, k, z)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(grad, tz.grad.numpy(), atol=1e-5)


# --- Keras-named ops: logits or probabilities ---------------------------------------------------
def test_keras_ops_probabilities_and_logits():
    from dendrite import ops
    from dendrite.ops.nn import (
        binary_crossentropy,
        categorical_crossentropy,
        sparse_categorical_crossentropy,
    )

    z = RNG.standard_normal((5, 4)) * 2
    k = RNG.integers(0, 4, 5)
    y = onehot(k, 4)
    p = np_softmax(z)
    expected = -np_log_softmax(z)[np.arange(5), k]
    np.testing.assert_allclose(categorical_crossentropy(y, z, from_logits=True).data, expected)
    np.testing.assert_allclose(categorical_crossentropy(y, p).data, expected, rtol=1e-10)
    np.testing.assert_allclose(categorical_crossentropy(y.tolist(), p * 3).data, expected)
    np.testing.assert_allclose(
        sparse_categorical_crossentropy(k, z, from_logits=True).data, expected
    )
    np.testing.assert_allclose(sparse_categorical_crossentropy(k[:, None], p).data, expected)
    # a recorded softmax hands its logits over: exact for saturated outputs
    big = Tensor(np.array([[0.0, 900.0]]), requires_grad=True)
    out = categorical_crossentropy(np.array([[1.0, 0.0]]), ops.softmax(big))
    np.testing.assert_allclose(out.data, [900.0])
    out = sparse_categorical_crossentropy(np.array([0]), ops.softmax(big))
    np.testing.assert_allclose(out.data, [900.0])
    clipped = categorical_crossentropy(np.array([[1.0, 0.0]]), ops.softmax(big).data)
    np.testing.assert_allclose(clipped.data, [-np.log(1e-7)], rtol=1e-6)

    zb = RNG.standard_normal((3, 2)) * 3
    yb = RNG.integers(0, 2, (3, 2)).astype(float)
    expected = np.maximum(zb, 0) - zb * yb + np.log1p(np.exp(-np.abs(zb)))
    np.testing.assert_allclose(binary_crossentropy(yb, zb, from_logits=True).data, expected)
    np.testing.assert_allclose(binary_crossentropy(yb, np_sigmoid(zb)).data, expected, rtol=1e-9)
    huge = Tensor(np.array([-800.0, 800.0]), requires_grad=True)
    out = binary_crossentropy(np.array([1.0, 1.0]), ops.sigmoid(huge))
    np.testing.assert_allclose(out.data, [800.0, 0.0])
    with pytest.raises(ValueError, match="same shape"):
        categorical_crossentropy(k, z)
    with pytest.raises(ValueError, match="one integer label per sample"):
        sparse_categorical_crossentropy(y, z)
    with pytest.raises(ValueError, match="label 4 is out of range for 4 classes"):
        sparse_categorical_crossentropy(np.array([0, 4, 1, 1, 2]), p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_crossentropy_of_a_recorded_softmax_reuses_it_exactly(dtype):
    """With y = softmax(z) in the graph, the cross-entropy takes the softmax's own shift,
    sum and probabilities: the loss and the gradient are the bits that the fused op
    computes from the logits."""
    rng = np.random.default_rng(5)
    z_data = (rng.standard_normal((7, 5)) * 4).astype(dtype)
    labels = rng.integers(0, 5, 7)
    upstream = rng.standard_normal(7).astype(dtype)
    results = []
    for through_softmax in (True, False):
        z = Tensor(z_data, requires_grad=True)
        if through_softmax:
            loss = nn.sparse_categorical_crossentropy(labels, ops.softmax(z))
        else:
            loss = nn.sparse_softmax_cross_entropy(labels, z)
        loss.backward(upstream)
        results.append((loss.data, z.grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_sigmoid_binary_cross_entropy_of_scalars():
    z = Tensor(np.float64(0.3), requires_grad=True)
    out = nn.sigmoid_binary_cross_entropy(np.float64(1.0), z)
    assert out.shape == ()
    np.testing.assert_allclose(out.data, np.log1p(np.exp(-0.3)), rtol=1e-12)
    out.backward()
    np.testing.assert_allclose(z.grad, 1.0 / (1.0 + np.exp(-0.3)) - 1.0, rtol=1e-12)
