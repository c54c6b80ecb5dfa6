"""Cross-entropy losses: probabilities and logits, label smoothing, softmax/sigmoid detection,
sparse labels, ignore_class, gradients."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import losses, ops
from dendrite.core import Tensor, no_grad
from dendrite.testing import gradcheck


@pytest.fixture(autouse=True)
def floatx64():
    """Loss classes cast arrays to floatx (Keras); these value checks compare with float64
    references, so they run with floatx float64."""
    from dendrite import config

    config.set_floatx("float64")
    yield
    config.set_floatx("float32")


RNG = np.random.default_rng(11)
EPS = 1e-7


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def np_cce_probs(y, p, axis=-1):
    p = np.clip(p / p.sum(axis, keepdims=True), EPS, 1 - EPS)
    return -np.sum(y * np.log(p), axis)


def np_bce_probs(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), -1)


def np_bce_logits(y, z):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), -1)


def onehot(k, classes):
    return np.eye(classes)[k]


# --- keras documentation examples -----------------------------------------------------------
def test_keras_documented_values():
    np.testing.assert_allclose(
        losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]).data,
        [0.916, 0.714],
        atol=1e-3,
    )
    probs = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    expected = [0.0513, 2.303]
    np.testing.assert_allclose(
        losses.categorical_crossentropy([[0, 1, 0], [0, 0, 1]], probs).data, expected, atol=1e-3
    )
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy([1, 2], probs).data, expected, atol=1e-3
    )
    y = np.array([[0, 1], [0, 0]])
    z = np.array([[-18.6, 0.51], [2.94, -12.8]])
    bce = losses.BinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(bce(y, z).data, 0.8654, atol=1e-4)
    np.testing.assert_allclose(bce(y, z, sample_weight=[0.8, 0.2]).data, 0.243, atol=1e-3)
    focal = losses.BinaryFocalCrossentropy(gamma=2, from_logits=True)
    np.testing.assert_allclose(
        focal([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]).data, 0.691, atol=1e-3
    )
    balanced = losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=3, from_logits=True)
    np.testing.assert_allclose(balanced(y, z).data, 0.482, atol=1e-3)


# --- categorical ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((2, 3, 5), -1), ((3, 4, 2), 1)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_categorical_values(shape, axis, smoothing):
    z = RNG.standard_normal(shape) * 2
    ax = axis % len(shape)
    labels = RNG.integers(0, shape[ax], shape[:ax] + shape[ax + 1 :])
    y = np.moveaxis(onehot(labels, shape[ax]), -1, ax)
    ys = y * (1 - smoothing) + smoothing / shape[axis]
    p = np_softmax(z, axis)
    kwargs = {"label_smoothing": smoothing, "axis": axis}
    from_logits = losses.categorical_crossentropy(y, z, from_logits=True, **kwargs)
    np.testing.assert_allclose(from_logits.data, -np.sum(ys * np.log(p), axis), rtol=1e-10)
    from_probs = losses.categorical_crossentropy(y, p, **kwargs)
    np.testing.assert_allclose(from_probs.data, np_cce_probs(ys, p, axis), rtol=1e-10)
    loss = losses.CategoricalCrossentropy(**kwargs)
    np.testing.assert_allclose(loss(y, p).data, np_cce_probs(ys, p, axis).mean(), rtol=1e-10)


def test_categorical_renormalises_and_clips():
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[2.0, 2.0, 4.0], [0.0, 1.0, 0.0]])  # unnormalised; a zero probability
    out = losses.categorical_crossentropy(y, p).data
    np.testing.assert_allclose(out, [np.log(4.0), -np.log(EPS)])


def test_categorical_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape.*\(4,\).*\(4, 3\)"):
        losses.categorical_crossentropy(np.zeros(4), np.ones((4, 3)) / 3)


@pytest.mark.parametrize("from_logits", [True, False])
def test_categorical_gradients(from_logits):
    y = onehot(RNG.integers(0, 4, 5), 4) * 0.9 + 0.025
    z = RNG.standard_normal((5, 4))
    x = z if from_logits else np_softmax(z) * 1.3  # unnormalised probabilities
    gradcheck(lambda t: losses.categorical_crossentropy(y, t, from_logits=from_logits), x)
    gradcheck(
        lambda t: losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.1)(
            y, t, sample_weight=np.arange(5.0)
        ),
        x,
    )


# --- softmax / sigmoid detection --------------------------------------------------------------
def test_softmax_output_uses_logits():
    z = Tensor(np.array([[1000.0, 0.0, -1000.0], [3.0, 1.0, 0.2]]), requires_grad=True)
    y = onehot(np.array([1, 0]), 3)
    out = losses.categorical_crossentropy(y, ops.softmax(z))
    # exact, not clipped at -log(1e-7) = 16.1
    np.testing.assert_allclose(out.data[0], 1000.0)
    out.sum().backward()
    np.testing.assert_allclose(z.grad, np_softmax(z.data) - y, atol=1e-12)

    z2 = Tensor(z.data, requires_grad=True)
    losses.sparse_categorical_crossentropy(np.array([1, 0]), ops.softmax(z2)).sum().backward()
    np.testing.assert_allclose(z2.grad, z.grad)


def test_softmax_detection_requires_matching_axis():
    z = RNG.standard_normal((3, 4))
    y = onehot(np.array([1, 0, 3]), 4)
    p = ops.softmax(Tensor(z, requires_grad=True), axis=0)  # a softmax over the batch axis
    np.testing.assert_allclose(
        losses.categorical_crossentropy(y, p).data, np_cce_probs(y, p.data), rtol=1e-12
    )


def test_unrecorded_softmax_uses_its_logits_too():
    # Evaluation runs without recording: the loss must still start from the logits, or
    # validation would report another number than training for the same weights.
    z = np.array([[1000.0, 0.0, -1000.0]])
    with no_grad():
        p = ops.softmax(Tensor(z))
    for loss in (losses.categorical_crossentropy, losses.sparse_categorical_crossentropy):
        y = onehot(np.array([1]), 3) if loss is losses.categorical_crossentropy else [1]
        np.testing.assert_allclose(loss(y, p).data, [1000.0], rtol=1e-12)


def test_plain_probabilities_are_clipped():
    p = np.array([[1.0, 0.0, 0.0]])
    out = losses.categorical_crossentropy(onehot(np.array([1]), 3), p)
    np.testing.assert_allclose(out.data, [-np.log(EPS)], rtol=1e-6)


def test_sigmoid_output_uses_logits():
    z = Tensor(np.array([[800.0], [-800.0], [0.3]]), requires_grad=True)
    y = np.array([0.0, 0.0, 1.0])
    out = losses.BinaryCrossentropy(reduction="none")(y, ops.sigmoid(z))
    np.testing.assert_allclose(out.data, [800.0, 0.0, np.log1p(np.exp(-0.3))], rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(z.grad[:, 0], np_sigmoid(z.data[:, 0]) - y, atol=1e-12)


# --- binary -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6,), (5, 3), (2, 3, 4)])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_binary_values(shape, smoothing):
    z = RNG.standard_normal(shape) * 3
    y = RNG.integers(0, 2, shape).astype(float)
    ys = y * (1 - smoothing) + 0.5 * smoothing
    np.testing.assert_allclose(
        losses.binary_crossentropy(y, z, from_logits=True, label_smoothing=smoothing).data,
        np_bce_logits(ys, z),
        rtol=1e-10,
    )
    p = np_sigmoid(z)
    np.testing.assert_allclose(
        losses.binary_crossentropy(y, p, label_smoothing=smoothing).data,
        np_bce_probs(ys, p),
        rtol=1e-10,
    )
    loss = losses.BinaryCrossentropy(label_smoothing=smoothing)
    np.testing.assert_allclose(loss(y, p).data, np.mean(np_bce_probs(ys, p)), rtol=1e-10)


def test_binary_column_predictions():
    """(n,) labels against (n, 1) outputs: element-wise, as Keras's LossFunctionWrapper."""
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = np.array([[0.9], [0.2], [0.4], [0.5]])
    expected = np.mean(np_bce_probs(y[:, None], p))
    np.testing.assert_allclose(losses.BinaryCrossentropy()(y, p).data, expected, rtol=1e-12)
    np.testing.assert_allclose(losses.binary_crossentropy(y, p).data, np_bce_probs(y[:, None], p))


def test_binary_clipping_and_axis():
    out = losses.binary_crossentropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])).data
    np.testing.assert_allclose(out, [-np.log(EPS)], rtol=1e-6)
    y, p = RNG.integers(0, 2, (3, 4)).astype(float), RNG.random((3, 4))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(losses.binary_crossentropy(y, p, axis=0).data, bce.mean(0))


@pytest.mark.parametrize("from_logits", [True, False])
def test_binary_gradients(from_logits):
    y = RNG.random((4, 3))
    z = RNG.standard_normal((4, 3))
    x = z if from_logits else np_sigmoid(z)
    gradcheck(lambda t: losses.binary_crossentropy(y, t, from_logits=from_logits), x)
    gradcheck(lambda t: losses.binary_crossentropy(t, x, from_logits=from_logits), y)
    gradcheck(lambda t: losses.BinaryFocalCrossentropy(from_logits=from_logits, gamma=1.5)(y, t), x)


def test_binary_focal_reference():
    y = RNG.integers(0, 2, (5, 3)).astype(float)
    p = RNG.random((5, 3)) * 0.9 + 0.05
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    p_t = y * p + (1 - y) * (1 - p)
    weight = y * 0.4 + (1 - y) * 0.6
    expected = np.mean(weight * (1 - p_t) ** 3 * bce, -1)
    out = losses.binary_focal_crossentropy(y, p, apply_class_balancing=True, alpha=0.4, gamma=3)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


# --- sparse -----------------------------------------------------------------------------------
@pytest.mark.parametrize("labels_shape", ["flat", "column"])
def test_sparse_values_and_grad(labels_shape):
    z = RNG.standard_normal((6, 5)) * 2
    k = RNG.integers(0, 5, 6)
    labels = k if labels_shape == "flat" else k[:, None]
    logp = np.log(np_softmax(z))[np.arange(6), k]
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(labels, z, from_logits=True).data, -logp
    )
    p = np_softmax(z)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, p).data, -logp)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss(labels, z).data, -logp.mean())
    np.testing.assert_allclose(loss(labels.astype(np.float32), z).data, -logp.mean())
    gradcheck(lambda t: loss(labels, t, sample_weight=np.arange(6.0)), z)
    gradcheck(lambda t: losses.SparseCategoricalCrossentropy()(labels, t), p * 2)


def test_sparse_sequence_labels():
    z = RNG.standard_normal((2, 3, 4))
    k = RNG.integers(0, 4, (2, 3))
    expected = -np.log(np.take_along_axis(np_softmax(z), k[..., None], -1))[..., 0]
    out = losses.sparse_categorical_crossentropy(k, z, from_logits=True)
    np.testing.assert_allclose(out.data, expected)
    zt = np.moveaxis(z, -1, 1)
    out = losses.sparse_categorical_crossentropy(k, zt, from_logits=True, axis=1)
    np.testing.assert_allclose(out.data, expected)


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_label_out_of_range(from_logits):
    y_pred = np.full((3, 10), 0.1)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    with pytest.raises(ValueError, match=r"label 10 is out of range for 10 classes"):
        loss(np.array([0, 10, 3]), y_pred)
    with pytest.raises(ValueError, match=r"label -2 is out of range"):
        loss(np.array([0, -2, 3]), y_pred)
    with pytest.raises(ValueError, match="one integer label per sample"):
        loss(np.zeros((3, 10)), y_pred)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.uint64, np.float64])
@pytest.mark.parametrize("sequence", [False, True])
def test_sparse_labels_of_any_integer_dtype(dtype, sequence):
    """uint64 labels once failed in the NumPy path (int64 indices += uint64 is float64);
    a class axis that is not last takes that path."""
    z = RNG.standard_normal((5, 4, 3)) if sequence else RNG.standard_normal((5, 4))
    k = RNG.integers(0, 4, (5, 3) if sequence else 5)
    expected = losses.sparse_categorical_crossentropy(k, z, from_logits=True, axis=1).data
    out = losses.sparse_categorical_crossentropy(k.astype(dtype), z, from_logits=True, axis=1)
    np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_ignore_class(from_logits):
    z = RNG.standard_normal((6, 3))
    k = np.array([0, -1, 2, 1, -1, 2])
    keep = k != -1
    x = z if from_logits else np_softmax(z)
    full = -np.log(np_softmax(z))[np.arange(6), np.where(keep, k, 0)]
    out = losses.sparse_categorical_crossentropy(k, x, from_logits=from_logits, ignore_class=-1)
    np.testing.assert_allclose(out.data, np.where(keep, full, 0.0), rtol=1e-7, atol=1e-12)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1)
    np.testing.assert_allclose(loss(k, x).data, full[keep].mean(), rtol=1e-7)  # mean of valid
    summed = losses.SparseCategoricalCrossentropy(
        from_logits=from_logits, ignore_class=-1, reduction="sum"
    )
    np.testing.assert_allclose(summed(k, x).data, full[keep].sum(), rtol=1e-7)
    w = np.arange(1.0, 7.0)
    np.testing.assert_allclose(
        loss(k, x, sample_weight=w).data, (full * w)[keep].sum() / keep.sum(), rtol=1e-7
    )
    t = Tensor(x, requires_grad=True)
    loss(k, t).backward()
    assert np.all(t.grad[~keep] == 0)


def test_sparse_float32_path():
    z = Tensor(RNG.standard_normal((8, 10)).astype(np.float32), requires_grad=True)
    out = losses.SparseCategoricalCrossentropy()(RNG.integers(0, 10, 8), ops.softmax(z))
    assert out.dtype == np.float32
    out.backward()
    assert z.grad.dtype == np.float32


# --- stability ------------------------------------------------------------------------------
def test_extreme_logits_all_losses():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], dtype=np.float32)
    cases = [
        (losses.CategoricalCrossentropy(from_logits=True), onehot(np.array([1, 0]), 3)),
        (losses.SparseCategoricalCrossentropy(from_logits=True), np.array([1, 0])),
        (losses.BinaryCrossentropy(from_logits=True), np.array([[0, 1, 1], [1, 0, 1.0]])),
        (losses.BinaryFocalCrossentropy(from_logits=True), np.array([[0, 1, 1], [1, 0, 1.0]])),
    ]
    for loss, y in cases:
        t = Tensor(z, requires_grad=True)
        out = loss(y, t)
        out.backward()
        assert np.isfinite(out.data) and np.all(np.isfinite(t.grad)), loss.name


# --- against PyTorch ----------------------------------------------------------------------------
def test_losses_against_torch():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    z = RNG.standard_normal((12, 7)) * 3
    k = RNG.integers(0, 7, 12)
    w = RNG.random(12)

    tz = torch.tensor(z, requires_grad=True)
    expected = (f.cross_entropy(tz, torch.tensor(k), reduction="none") * torch.tensor(w)).mean()
    expected.backward()
    t = Tensor(z, requires_grad=True)
    out = losses.SparseCategoricalCrossentropy(from_logits=True)(k, t, sample_weight=w)
    out.backward()
    np.testing.assert_allclose(out.data, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(t.grad, tz.grad.numpy(), rtol=1e-5, atol=1e-8)

    tz = torch.tensor(z, requires_grad=True)
    expected = f.cross_entropy(tz, torch.tensor(k), label_smoothing=0.1)
    expected.backward()
    t = Tensor(z, requires_grad=True)
    out = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(onehot(k, 7), t)
    out.backward()
    np.testing.assert_allclose(out.data, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(t.grad, tz.grad.numpy(), rtol=1e-5, atol=1e-8)

    y = RNG.random((12, 7))
    tz = torch.tensor(z, requires_grad=True)
    expected = f.binary_cross_entropy_with_logits(tz, torch.tensor(y))
    expected.backward()
    t = Tensor(z, requires_grad=True)
    out = losses.BinaryCrossentropy(from_logits=True)(y, t)
    out.backward()
    np.testing.assert_allclose(out.data, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(t.grad, tz.grad.numpy(), rtol=1e-5, atol=1e-8)

    tz = torch.tensor(z, requires_grad=True)
    expected = f.huber_loss(tz, torch.tensor(y), delta=1.0)
    expected.backward()
    t = Tensor(z, requires_grad=True)
    out = losses.Huber()(y, t)
    out.backward()
    np.testing.assert_allclose(out.data, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(t.grad, tz.grad.numpy(), rtol=1e-5, atol=1e-8)
