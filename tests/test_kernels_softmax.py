"""csrc/softmax.c (the softmax over the last axis and the sparse cross-entropy's label
lookups, dendrite/ops/softmax.py and dendrite/ops/nn.py) against the NumPy paths they
replace, bit for bit: both float types, rows shorter and longer than NumPy's pairwise
block, NaN, infinities and rows of -inf, every integer label dtype, bad labels; and the
NumPy paths for arrays the kernels do not take."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from dendrite import _native
from dendrite.core import Tensor

# The modules (dendrite.ops re-exports functions of the same names).
nn_ops = importlib.import_module("dendrite.ops.nn")
softmax_ops = importlib.import_module("dendrite.ops.softmax")

pytestmark = pytest.mark.needs_kernels

SHAPES = [(1, 1), (32, 10), (3, 7), (4, 8), (5, 17), (2, 128), (3, 129), (2, 3, 300), (1, 1000)]


def _logits(shape, dtype, seed, specials=True):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * rng.uniform(0.1, 30)).astype(dtype)
    if specials and z.shape[-1] >= 4 and z.size // z.shape[-1] >= 4:
        rows = z.reshape(-1, z.shape[-1])
        rows[0, 1] = np.nan
        rows[1, 2] = np.inf
        rows[2, :] = -np.inf  # a fully masked row
        rows[3, 0] = -np.inf
    return z


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def _numpy_softmax(x):
    shift = np.maximum.reduce(x, axis=-1, keepdims=True, initial=np.finfo(x.dtype).min)
    e = np.exp(x - shift)
    total = np.add.reduce(e, axis=-1, keepdims=True)
    return e / total, shift, total


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the ops' NumPy paths (the references)."""

    def switch():
        monkeypatch.setattr(softmax_ops, "ROW_KERNELS", False)

    return switch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_exp_shifted_has_numpys_bits(dtype, shape):
    x = _logits(shape, dtype, 0)
    assert softmax_ops.rows_of(x) == x.size // shape[-1]
    with np.errstate(all="ignore"):
        out, shift, total = softmax_ops.exp_shifted(x, normalize=True)
        expected = _numpy_softmax(x)
    for got, want in zip((out, shift, total), expected):
        _same_bits(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("floored", [True, False])
def test_exp_shifted_without_normalizing_keeps_the_exponentials(dtype, floored):
    x = _logits((6, 33), dtype, 1)
    with np.errstate(all="ignore"):
        e, shift, total = softmax_ops.exp_shifted(x, normalize=False, floored=floored)
        lowest = {"initial": np.finfo(dtype).min} if floored else {}
        want_shift = np.maximum.reduce(x, axis=-1, keepdims=True, **lowest)
        want_e = np.exp(x - want_shift)
    _same_bits(shift, want_shift)
    _same_bits(e, want_e)
    _same_bits(total, np.add.reduce(want_e, axis=-1, keepdims=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 10), (2, 3, 300), (3, 129)])
def test_the_softmax_op_has_the_same_bits_on_either_path(dtype, shape, numpy_only):
    x = _logits(shape, dtype, 2)
    op = softmax_ops.Softmax()
    with np.errstate(all="ignore"):
        out = op.forward(x, -1)
        saved = op.saved
        numpy_only()
        reference = softmax_ops.Softmax()
        expected = reference.forward(x, -1)
    _same_bits(out, expected)
    for got, want in zip(saved[2:], reference.saved[2:]):  # the shift and the sum
        _same_bits(got, want)


def test_the_softmax_op_uses_the_kernels_only_where_they_pay(monkeypatch):
    calls = []
    original = _native.kernels.softmax_shift
    monkeypatch.setattr(
        _native.kernels, "softmax_shift", lambda *a: calls.append(a[0].shape) or original(*a)
    )
    small = np.ones((32, 10), np.float32)
    large = np.ones((64, softmax_ops.ROW_KERNELS_UP_TO // 64 + 1), np.float32)
    softmax_ops.Softmax().forward(small, -1)
    softmax_ops.Softmax().forward(large, -1)
    softmax_ops.Softmax().forward(small, 0)  # not the last axis
    softmax_ops.Softmax().forward(np.asfortranarray(np.ones((10, 32), np.float32)), -1)
    softmax_ops.Softmax().forward(np.ones((4, 0), np.float32), -1)  # no classes
    softmax_ops.Softmax().forward(np.ones((3, 5), np.float16), -1)
    assert calls == [(32, 10)]


def _cross_entropy(labels, logits, softmax=None, needs_grad=True, axis=-1):
    op = nn_ops.SparseSoftmaxCrossEntropy()
    op.needs_grad = (False, True) if needs_grad else ()
    loss = op.forward(labels, logits, axis, None, softmax)
    grad = None
    if needs_grad:
        g = np.random.default_rng(5).uniform(0.5, 2, labels.shape).astype(logits.dtype)
        grad = op.backward(g)[1]
    return loss, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 10), (5, 17), (4, 6, 130), (1, 1)])
@pytest.mark.parametrize("recorded", [False, True])
def test_sparse_cross_entropy_has_the_same_bits_on_either_path(dtype, shape, recorded, numpy_only):
    z = _logits(shape, dtype, 3)
    labels = np.random.default_rng(4).integers(0, shape[-1], shape[:-1])
    runs = []
    with np.errstate(all="ignore"):
        for _ in range(2):
            kept = None
            if recorded:
                op = softmax_ops.Softmax()
                op.forward(z, -1)
                out, _, shift, total = op.saved
                kept = (out, shift, total)
            runs.append(_cross_entropy(labels, z, kept))
            numpy_only()
    (loss, grad), (want_loss, want_grad) = runs
    _same_bits(loss, want_loss)
    _same_bits(grad, want_grad)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.int8, np.uint8, np.uint64])
def test_every_integer_label_dtype_takes_the_kernels(label_dtype, numpy_only, monkeypatch):
    calls = []
    original = _native.kernels.sparse_pick
    monkeypatch.setattr(_native.kernels, "sparse_pick", lambda *a: calls.append(1) or original(*a))
    z = _logits((9, 7), np.float32, 6, specials=False)
    labels = np.arange(9).astype(label_dtype) % 7
    loss, grad = _cross_entropy(labels, z)
    assert calls == [1]
    numpy_only()
    want_loss, want_grad = _cross_entropy(labels, z)
    _same_bits(loss, want_loss)
    _same_bits(grad, want_grad)


@pytest.mark.parametrize(
    "labels, named",
    [
        (np.array([0, 3, -1, 2]), "label -1"),
        (np.array([0, 4, 9, 2]), "label 9"),
        (np.array([0, 1, 2, 2**63 + 5], dtype=np.uint64), f"label {2**63 + 5}"),
        (np.array([0, 1, 2, 7], dtype=np.int8), "label 7"),
    ],
)
def test_a_bad_label_raises_the_same_error_on_either_path(labels, named, numpy_only):
    z = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match=named) as kernel_error:
        _cross_entropy(labels, z)
    numpy_only()
    with pytest.raises(ValueError) as numpy_error:
        _cross_entropy(labels, z)
    assert str(kernel_error.value) == str(numpy_error.value)


def test_a_class_axis_not_last_and_ignore_class_take_numpys_path(monkeypatch):
    def refuse(*args):
        raise AssertionError("the kernels were called")

    monkeypatch.setattr(_native.kernels, "sparse_pick", refuse)
    monkeypatch.setattr(_native.kernels, "sparse_grad", refuse)
    z = _logits((4, 5, 6), np.float32, 7, specials=False)
    labels = np.random.default_rng(8).integers(0, 5, (4, 6))
    loss, grad = _cross_entropy(labels, z, axis=1)
    assert loss.shape == (4, 6) and grad.shape == (4, 5, 6)
    op = nn_ops.SparseSoftmaxCrossEntropy()
    op.needs_grad = (False, True)
    ignored = np.where(labels[:, 0] == 0, 4, labels[:, 0])
    loss = op.forward(ignored, z[:, :, 0], -1, 4)
    assert np.all(loss[ignored == 4] == 0)
    op.backward(np.ones(4, np.float32))


def test_the_fused_loss_keeps_its_gradient_through_the_kernels():
    """dL/dz of the mean sparse cross-entropy from logits, float64, by central differences."""
    rng = np.random.default_rng(9)
    z = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)

    def loss_of(values):
        return float(np.mean(_cross_entropy(labels, values, needs_grad=False)[0]))

    logits = Tensor(z.copy(), requires_grad=True)
    nn_ops.sparse_softmax_cross_entropy(labels, logits).mean().backward()
    numeric = np.zeros_like(z)
    step = 1e-6
    for index in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (loss_of(up) - loss_of(down)) / (2 * step)
    np.testing.assert_allclose(logits.grad, numeric, rtol=1e-6, atol=1e-9)


def test_the_c_arguments_are_checked():
    k = _native.kernels
    x = np.zeros((4, 3), np.float32)
    e = np.empty_like(x)
    shift = np.empty(4, np.float32)
    with pytest.raises(ValueError, match="bad sizes"):
        k.softmax_shift(x, e, shift, -1, 3)
    with pytest.raises(ValueError, match="bad sizes"):
        k.softmax_normalize(e, shift, 4, 0)
    with pytest.raises(ValueError, match="expected sizes"):
        k.softmax_shift(x, e, shift, 5, 3)  # larger than the arrays
    with pytest.raises(ValueError, match="one dtype"):
        k.softmax_shift(x, e.astype(np.float64), shift, 4, 3)
    with pytest.raises(ValueError, match="int64"):
        k.sparse_pick(np.zeros(4, np.int32), x, shift, np.empty(4, np.int64), 4, 3)
    with pytest.raises(ValueError, match="int64"):
        k.sparse_grad(x, shift, np.zeros(3, np.int64), e, 4, 3)  # too few indices
    with pytest.raises(ValueError, match="out of range"):
        k.sparse_grad(x, shift, np.array([0, 3, 6, 12]), e, 4, 3)
    with pytest.raises(ValueError, match="contiguous"):
        k.softmax_shift(x, np.ones((4, 3), np.float32)[:, ::-1], shift, 4, 3)  # not contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("floored", [True, False])
def test_tied_zeros_keep_numpys_sign_in_the_shift(dtype, floored):
    """Of equal values np.maximum's reduction keeps the later: +0 or -0 as NumPy's."""
    x = np.array([[0.0, -0.0], [-0.0, 0.0], [-0.0, -0.0], [0.0, 0.0]], dtype=dtype)
    _, shift, _ = softmax_ops.exp_shifted(x, normalize=True, floored=floored)
    lowest = {"initial": np.finfo(dtype).min} if floored else {}
    _same_bits(shift, np.maximum.reduce(x, axis=-1, keepdims=True, **lowest))


@pytest.mark.parametrize("labels", [np.array([True, False, True]), np.array([2.0, 0.0, 1.0])])
def test_bool_and_float_labels_take_numpys_lookup_and_the_same_gradient(labels, numpy_only):
    z = _logits((3, 4), np.float32, 10, specials=False)
    loss, grad = _cross_entropy(labels, z)
    numpy_only()
    want_loss, want_grad = _cross_entropy(labels, z)
    _same_bits(loss, want_loss)
    _same_bits(grad, want_grad)
