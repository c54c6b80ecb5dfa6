"""What the ops promise beyond matching gradients: Keras names and defaults, tie rules,
stability at extreme inputs, dtypes, errors, and the non-differentiable helpers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing.op_cases import CASES, sample


def grad_of(fn, values, dtype=np.float64):
    x = Tensor(np.asarray(values, dtype=dtype), requires_grad=True)
    out = fn(x)
    ops.sum(out).backward()
    return out.numpy(), x.grad


# --- dtypes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_in_float32_out_and_gradients(case):
    rng = np.random.default_rng(0)
    shapes = case.shapes[0]
    tensors = [
        Tensor(sample(case.domain, s, rng).astype(np.float32), requires_grad=True) for s in shapes
    ]
    kwargs = {"axis": -1, "keepdims": False} if case.kind == "reduce" else {}
    out = case.fn(*tensors, **kwargs)
    assert out.dtype == np.float32, f"{case.id} gave {out.dtype}"
    ops.sum(out * 1.0).backward()
    for t in tensors:
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape, case.id


# --- tie rules and kinks ----------------------------------------------------------------------
def test_max_and_min_split_ties_evenly():
    _, grad = grad_of(lambda x: ops.max(x, axis=1), [[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    np.testing.assert_array_equal(grad, [[0, 0.5, 0.5], [1, 0, 0]])
    _, grad = grad_of(lambda x: ops.min(x), [1.0, 1.0, 1.0, 4.0])
    np.testing.assert_allclose(grad, [1 / 3, 1 / 3, 1 / 3, 0])


def test_maximum_and_minimum_ties_give_half_to_each():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 5.0, 0.0]), requires_grad=True)
    ops.sum(ops.maximum(a, b) + 10 * ops.minimum(a, b)).backward()
    np.testing.assert_array_equal(a.grad, [5.5, 10.0, 1.0])
    np.testing.assert_array_equal(b.grad, [5.5, 1.0, 10.0])


def test_no_nan_gradients_at_zero():
    for fn in (ops.relu, ops.abs, ops.relu6, ops.leaky_relu, ops.elu, ops.softplus, ops.silu):
        _, grad = grad_of(fn, [0.0])
        assert np.isfinite(grad).all(), fn.__name__
    assert grad_of(ops.relu, [0.0])[1][0] == 0.0
    assert grad_of(ops.abs, [0.0])[1][0] == 0.0
    assert grad_of(ops.sqrt, [0.0])[1][0] == np.inf  # the maths: no finite slope at 0
    assert grad_of(lambda x: ops.std(x, axis=0), [[2.0], [2.0]])[1].tolist() == [[0.0], [0.0]]


def test_clip_passes_gradient_inside_and_on_the_bounds():
    _, grad = grad_of(lambda x: ops.clip(x, -1.0, 1.0), [-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(grad, [0, 1, 1, 1, 0])


# --- stability --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_softplus_family_is_stable_far_from_zero(dtype):
    x = [-1000.0, -150.0, -101.0, 101.0, 150.0, 1000.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, ds = grad_of(ops.sigmoid, x, dtype)
        p, dp = grad_of(ops.softplus, x, dtype)
        ls, dls = grad_of(ops.log_sigmoid, x, dtype)
        si, dsi = grad_of(ops.silu, x, dtype)
        e, de = grad_of(ops.elu, x, dtype)
    for arr in (s, ds, p, dp, ls, dls, si, dsi, e, de):
        assert np.isfinite(arr).all()
    np.testing.assert_allclose(s, [0, 0, 0, 1, 1, 1], atol=1e-30)
    np.testing.assert_allclose(p, [0, 0, 0, 101, 150, 1000], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(dp, [0, 0, 0, 1, 1, 1], atol=1e-30)
    np.testing.assert_allclose(ls, [-1000, -150, -101, 0, 0, 0], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_stable_for_huge_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse, dlse = grad_of(lambda x: ops.logsumexp(x, axis=-1), z, dtype)
        ls, dls = grad_of(ops.log_softmax, z, dtype)
        sm, dsm = grad_of(ops.softmax, z, dtype)
    np.testing.assert_allclose(lse, [1e4, 3 + math.log(3)], rtol=1e-6)
    np.testing.assert_allclose(ls[0], [0, -1e4, -2e4], rtol=1e-6)
    np.testing.assert_allclose(sm.sum(-1), [1, 1], rtol=1e-6)
    np.testing.assert_allclose(dlse, [[1, 0, 0], [1 / 3] * 3], rtol=1e-6)
    for arr in (dls, dsm):
        assert np.isfinite(arr).all()


def test_erf_matches_math_erf():
    x = np.linspace(-7, 7, 2001)
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(ops.erf(Tensor(x)).numpy(), expected, rtol=0, atol=4e-16)
    assert ops.erf(Tensor(x.astype(np.float32))).dtype == np.float32


# --- Keras definitions and defaults -----------------------------------------------------------
def test_activation_definitions():
    x = np.linspace(-5, 5, 41)
    t = Tensor(x)
    np.testing.assert_allclose(ops.hard_sigmoid(t).numpy(), np.clip(x + 3, 0, 6) / 6)
    np.testing.assert_allclose(ops.hard_silu(t).numpy(), x * np.clip(x + 3, 0, 6) / 6)
    np.testing.assert_allclose(ops.leaky_relu(t).numpy(), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(ops.relu6(Tensor(x * 2)).numpy(), np.clip(x * 2, 0, 6))
    np.testing.assert_allclose(ops.elu(t, alpha=2.0).numpy(), np.where(x > 0, x, 2 * np.expm1(x)))
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(ops.gelu(t).numpy(), tanh_form)  # Keras: approximate=True
    exact = x * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    np.testing.assert_allclose(ops.gelu(t, approximate=False).numpy(), exact, atol=1e-15)
    selu = 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))
    np.testing.assert_allclose(ops.selu(t).numpy(), selu)
    np.testing.assert_allclose(ops.softsign(t).numpy(), x / (1 + np.abs(x)))
    assert ops.swish is ops.silu and ops.linear(t) is t


def test_reductions_keras_signatures():
    x = Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]))
    assert ops.max(x).item() == 7.0 and ops.min(x, axis=0).numpy().tolist() == [1.0, 0.0, 2.0]
    assert ops.max(x, axis=1, keepdims=True).shape == (2, 1)
    np.testing.assert_allclose(ops.var(x, axis=1).numpy(), np.var(x.numpy(), axis=1))
    np.testing.assert_allclose(ops.std(x).numpy(), np.std(x.numpy()))
    assert ops.argmax(x).item() == 3 and ops.argmax(x, axis=1).numpy().tolist() == [1, 0]
    assert ops.argmin(x, axis=0, keepdims=True).shape == (1, 3)
    assert not ops.argmax(Tensor(np.ones(2), requires_grad=True)).requires_grad


# --- shape errors name the op and the shapes ----------------------------------------------------
@pytest.mark.parametrize(
    "call,pattern",
    [
        (lambda a, b: ops.add(a, b), r"add: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: a * b, r"multiply: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: a - b, r"subtract: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: a / b, r"divide: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: a**b, r"power: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: ops.maximum(a, b), r"maximum: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: ops.minimum(a, b), r"minimum: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (lambda a, b: a @ b, r"matmul: incompatible shapes \(2, 3\) and \(4, 5\)"),
        (
            lambda a, b: ops.tensordot(a, b, 1),
            r"tensordot: incompatible shapes \(2, 3\) and \(4, 5\)",
        ),
        (
            lambda a, b: ops.concatenate([a, b], 0),
            r"concatenate: incompatible shapes \(2, 3\), \(4, 5\)",
        ),
        (lambda a, b: ops.stack([a, b]), r"stack: .*\(2, 3\), \(4, 5\)"),
        (lambda a, b: ops.where(np.ones((2, 3), bool), a, b), r"where: .*\(2, 3\).*\(4, 5\)"),
        (lambda a, b: a == b, r"equal: incompatible shapes \(2, 3\) and \(4, 5\)"),
    ],
)
def test_mismatched_shapes_name_the_op_and_both_shapes(call, pattern):
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=pattern):
        call(a, b)


def test_other_shape_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        ops.reshape(x, (4,))
    with pytest.raises(ValueError, match=r"broadcast_to: .*\(2, 3\).*\(4, 3\)"):
        ops.broadcast_to(x, (4, 3))
    with pytest.raises(ValueError, match=r"squeeze: .*axis 1.*\(2, 3\)"):
        ops.squeeze(x, 1)
    with pytest.raises(ValueError, match=r"split: .*\(2, 3\).*2 equal"):
        ops.split(x, 2, axis=1)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        ops.sum(x, axis=2)
    with pytest.raises(ValueError, match=r"matmul: .*at least 1 dimension"):
        ops.matmul(x, Tensor(2.0))
    with pytest.raises(IndexError, match=r"getitem: .*\(2, 3\)"):
        x[5]


# --- movement, joining, indexing ----------------------------------------------------------------
def test_shape_helpers():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert ops.expand_dims(x, 1).shape == (2, 1, 3)
    assert ops.expand_dims(x, -1).shape == (2, 3, 1)
    assert ops.squeeze(Tensor(np.ones((1, 2, 1))), axis=0).shape == (2, 1)
    assert ops.moveaxis(Tensor(np.ones((2, 3, 4))), 0, -1).shape == (3, 4, 2)
    assert ops.swapaxes(x, 0, 1).shape == (3, 2)
    np.testing.assert_array_equal(ops.tile(x, 2).numpy(), np.tile(x.numpy(), 2))
    np.testing.assert_array_equal(ops.repeat(x, 2).numpy(), np.repeat(x.numpy(), 2))
    assert [p.shape for p in ops.split(x, [1], axis=1)] == [(2, 1), (2, 2)]
    np.testing.assert_array_equal(
        ops.take(x, Tensor(np.array([2, 0])), axis=1).numpy(), x.numpy()[:, [2, 0]]
    )
    padded = ops.pad(x, 1, constant_values=9.0).numpy()
    assert padded.shape == (4, 5) and padded[0, 0] == 9.0


# --- creation and conversion --------------------------------------------------------------------
def test_creation_defaults_to_float32():
    assert ops.zeros((2, 3)).dtype == np.float32 and ops.ones(4).shape == (4,)
    assert ops.full((2,), 7).dtype == np.float32
    assert ops.zeros((2,), dtype="float64").dtype == np.float64
    x64 = Tensor(np.ones(3))
    assert ops.zeros_like(x64).dtype == np.float64 and ops.ones_like(x64, "int32").dtype == np.int32
    assert ops.full_like(x64, 2.0).numpy().tolist() == [2.0, 2.0, 2.0]
    assert ops.arange(5).numpy().tolist() == [0, 1, 2, 3, 4] and ops.arange(5).dtype.kind == "i"
    assert ops.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert ops.arange(1, 7, 2, dtype="float64").numpy().tolist() == [1.0, 3.0, 5.0]
    assert ops.eye(3).numpy().trace() == 3.0
    assert ops.shape(Tensor(np.ones((2, 5)))) == (2, 5)


def test_one_hot():
    labels = Tensor(np.array([0, 2, 1, 5, -1]))
    out = ops.one_hot(labels, 3)
    assert out.dtype == np.float32 and out.shape == (5, 3) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy()[:3], np.eye(3)[[0, 2, 1]])
    np.testing.assert_array_equal(out.numpy()[3:], 0)  # out of range: all zeros
    assert ops.one_hot(np.array([[0, 1]]), 4, axis=1).shape == (1, 4, 2)
    assert ops.one_hot([1], 2, dtype="int32").dtype == np.int32


def test_convert_and_cast():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert ops.convert_to_tensor(x) is x
    assert ops.convert_to_tensor([1.5, 2.0]).dtype == np.float32
    assert ops.convert_to_tensor(np.ones(2), dtype="float32").dtype == np.float32
    array = ops.convert_to_numpy(x)
    array[0] = 5.0
    assert x.numpy()[0] == 1.0
    y = ops.cast(x, "float64")
    assert y.dtype == np.float64 and y.requires_grad
    ops.sum(y * 2).backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 2.0]
    as_int = ops.cast(x, "int32")
    assert as_int.dtype == np.int32 and not as_int.requires_grad
    assert x.astype("float32") is x


def test_plain_results_have_no_gradient():
    x = Tensor(np.array([-1.5, 0.2, 2.5]), requires_grad=True)
    for result in (
        ops.sign(x),
        ops.floor(x),
        ops.ceil(x),
        ops.round(x),
        ops.equal(x, 0.2),
        ops.logical_not(x > 0),
        ops.isfinite(x),
        ops.isnan(x),
        (x > 0) & (x < 1),
        (x > 0) | ~(x < 1),
    ):
        assert not result.requires_grad and result._ctx is None
    np.testing.assert_array_equal(ops.sign(x).numpy(), [-1, 1, 1])
    np.testing.assert_array_equal(((x > 0) & (x < 1)).numpy(), [False, True, False])
    rows, cols = ops.where(np.array([[True, False], [False, True]]))
    assert rows.numpy().tolist() == [0, 1] and cols.numpy().tolist() == [0, 1]


# --- tensor methods -----------------------------------------------------------------------------
def test_tensor_methods():
    x = Tensor(np.array([[-1.0, 4.0, 2.0], [3.0, -2.0, 0.5]]), requires_grad=True)
    assert abs(x).numpy().min() >= 0 and x.abs().shape == (2, 3)
    assert x.max().item() == 4.0 and x.min(axis=1).numpy().tolist() == [-1.0, -2.0]
    assert x.argmax().item() == 1 and x.argmin(axis=0).numpy().tolist() == [0, 1, 1]
    assert x.T.shape == (3, 2) and x.transpose(1, 0).shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.flatten().shape == (6,) and x.expand_dims(0).shape == (1, 2, 3)
    assert x.expand_dims(0).squeeze().shape == (2, 3)
    assert x.astype("float32").dtype == np.float32
    assert x.clip(0.0, 1.0).numpy().max() == 1.0 and x.square().sum().item() == 34.25
    assert x.sum(axis=0).shape == (3,) and x.mean().item() == pytest.approx(6.5 / 6)
    y = (x.abs() + 1).sqrt().log().exp().tanh().sigmoid().relu()
    assert y.shape == (2, 3) and y.requires_grad
    assert x.softmax().numpy().sum(axis=-1) == pytest.approx([1, 1])
    assert x.var().item() == pytest.approx(np.var(x.numpy()))


def test_numpy_reductions_take_tensors():
    """np.mean(t), np.std(t, ddof=1) ... call the methods with NumPy's arguments."""
    data = np.array([[-1.0, 4.0, 2.0], [3.0, -2.0, 0.5]], np.float32)
    x = Tensor(data)
    for fn in (np.sum, np.mean, np.max, np.min, np.var, np.std):
        np.testing.assert_allclose(fn(x).numpy(), fn(data), rtol=1e-6)
        np.testing.assert_allclose(fn(x, axis=1, keepdims=True).numpy(), fn(data, 1, keepdims=True))
    for ddof in (1, 2):
        np.testing.assert_allclose(np.std(x, ddof=ddof).numpy(), np.std(data, ddof=ddof), 1e-6)
        np.testing.assert_allclose(np.var(x, 0, ddof=1).numpy(), np.var(data, 0, ddof=1), 1e-6)
    assert x.sum(dtype="float64").dtype == np.float64 and np.mean(x).dtype == np.float32
    with pytest.raises(TypeError, match=r"Tensor.sum\(\) does not take out="):
        np.sum(x, out=np.zeros(()))
    w = Tensor(data.astype(np.float64), requires_grad=True)
    w.std(ddof=1).backward()
    centred = data - data.mean()
    np.testing.assert_allclose(w.grad, centred / (5 * np.std(data, ddof=1)), rtol=1e-6)


def test_fully_masked_slices():
    z = Tensor(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = ops.logsumexp(z, axis=-1)
        probabilities = ops.softmax(z).numpy()
    assert lse.numpy()[0] == -np.inf and lse.numpy()[1] == 0.0  # log of an empty sum
    np.testing.assert_array_equal(probabilities[1], [1.0, 0.0])
    assert np.isnan(probabilities[0]).all()  # 0/0, as in PyTorch and TensorFlow
