"""keras.ops that dendrite lacked (element-wise maths and activations): values against
NumPy and the standard library, gradients against float64 central differences, dtypes,
edge cases, symbolic inputs, and the activations registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dendrite as keras
from dendrite import activations, ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(0)
REAL = RNG.uniform(-2.5, 2.5, (3, 4))
UNIT = RNG.uniform(-0.9, 0.9, (3, 4))  # inside (-1, 1)
ABOVE_ONE = RNG.uniform(1.2, 4.0, (3, 4))
POSITIVE = RNG.uniform(0.2, 4.0, (3, 4))
NONZERO = np.where(np.abs(REAL) < 0.2, 0.7, REAL)

_erf = np.vectorize(math.erf)
_erfc = np.vectorize(math.erfc)

# (name, dendrite function, NumPy reference, input)
UNARY = [
    ("tan", ops.tan, np.tan, UNIT),
    ("arcsin", ops.arcsin, np.arcsin, UNIT),
    ("arccos", ops.arccos, np.arccos, UNIT),
    ("arctan", ops.arctan, np.arctan, REAL),
    ("sinh", ops.sinh, np.sinh, REAL),
    ("cosh", ops.cosh, np.cosh, REAL),
    ("arcsinh", ops.arcsinh, np.arcsinh, REAL),
    ("arccosh", ops.arccosh, np.arccosh, ABOVE_ONE),
    ("arctanh", ops.arctanh, np.arctanh, UNIT),
    ("log2", ops.log2, np.log2, POSITIVE),
    ("log10", ops.log10, np.log10, POSITIVE),
    ("exp2", ops.exp2, np.exp2, REAL),
    ("cbrt", ops.cbrt, np.cbrt, NONZERO),
    ("deg2rad", ops.deg2rad, np.deg2rad, REAL * 90),
    ("rad2deg", ops.rad2deg, np.rad2deg, REAL),
    ("erfc", ops.erfc, _erfc, REAL),
]


@pytest.mark.parametrize("name, fn, ref, x", UNARY, ids=[u[0] for u in UNARY])
def test_unary_values_and_gradients(name, fn, ref, x):
    np.testing.assert_allclose(fn(Tensor(x)).data, ref(x), rtol=1e-13, atol=1e-15)
    gradcheck(fn, x, mode="elementwise", name=name)
    assert fn(Tensor(x.astype("float32"))).dtype == "float32"
    assert fn(Tensor(np.zeros((0, 3)))).shape == (0, 3)
    scalar = fn(Tensor(x[0, 0]))
    assert scalar.shape == () and np.isclose(scalar.data, ref(x[0, 0]))


def test_integer_inputs_become_floatx():
    for fn in (ops.tan, ops.arcsin, ops.arctan, ops.sinh, ops.log2, ops.exp2, ops.cbrt):
        assert fn(np.array([1, 1])).dtype == "float32"
    np.testing.assert_array_equal(ops.exp2(np.array([0, 3, -1])).data, [1.0, 8.0, 0.5])


def test_erfc_keeps_precision_where_1_minus_erf_cannot():
    x = np.array([-30.0, -3.0, -1.0, 0.0, 0.5, 1.0, 5.0, 7.99, 8.0, 10.0, 20.0, 26.0])
    np.testing.assert_allclose(ops.erfc(Tensor(x)).data, _erfc(x), rtol=1e-14, atol=0)
    assert ops.erfc(Tensor(np.array(30.0))).data == 0.0


def test_erfinv_inverts_erf_and_has_the_right_gradient():
    x = np.array([-0.999999, -0.9, -0.3, 0.0, 1e-8, 0.4, 0.95, 0.999999])
    y = ops.erfinv(Tensor(x)).data
    np.testing.assert_allclose(_erf(y), x, rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(ops.erfinv(Tensor(np.array([1.0, -1.0]))).data, [np.inf, -np.inf])
    assert np.all(np.isnan(ops.erfinv(Tensor(np.array([1.5, -2.0]))).data))
    gradcheck(ops.erfinv, UNIT, mode="elementwise")
    assert ops.erfinv(Tensor(UNIT.astype("float32"))).dtype == "float32"


def test_sinh_is_exact_near_zero():
    tiny = np.array([1e-20, -3e-12, 2e-8])
    np.testing.assert_allclose(ops.sinh(Tensor(tiny)).data, np.sinh(tiny), rtol=1e-15)
    np.testing.assert_allclose(ops.arctanh(Tensor(tiny)).data, np.arctanh(tiny), rtol=1e-15)


def test_domain_edges_follow_the_maths():
    with np.errstate(all="ignore"):
        assert np.isnan(ops.arcsin(Tensor(np.array(1.5))).data)
        assert np.isnan(ops.arccosh(Tensor(np.array(0.5))).data)
        np.testing.assert_array_equal(ops.arctanh(Tensor(np.array([1.0]))).data, [np.inf])
    assert ops.cbrt(Tensor(np.array(-27.0))).data == -3.0


BINARY = [
    ("arctan2", ops.arctan2, np.arctan2, (REAL, NONZERO)),
    ("hypot", ops.hypot, np.hypot, (REAL, NONZERO)),
    ("logaddexp", ops.logaddexp, np.logaddexp, (REAL, REAL[::-1])),
    ("fmod", ops.fmod, np.fmod, (REAL * 3, np.abs(NONZERO) + 0.5)),
    ("divide_no_nan", ops.divide_no_nan, np.divide, (REAL, NONZERO)),
]


@pytest.mark.parametrize("name, fn, ref, xs", BINARY, ids=[b[0] for b in BINARY])
def test_binary_values_gradients_and_broadcasting(name, fn, ref, xs):
    a, b = xs
    np.testing.assert_allclose(fn(Tensor(a), Tensor(b)).data, ref(a, b), rtol=1e-13)
    gradcheck(fn, a, b, mode="elementwise", name=name)
    row = b[:1]  # (1, 4) broadcast against (3, 4), and a vector of 4
    np.testing.assert_allclose(fn(Tensor(a), Tensor(row)).data, ref(a, row), rtol=1e-13)
    gradcheck(fn, a, row[0], name=f"{name} broadcast")
    with pytest.raises(ValueError):
        fn(Tensor(np.ones((2, 3))), Tensor(np.ones((4,))))


def test_binary_special_points():
    zero = Tensor(np.zeros(3), requires_grad=True)
    ops.sum(ops.hypot(zero, zero)).backward()
    np.testing.assert_array_equal(zero.grad, 0)  # no slope at the origin, not NaN
    np.testing.assert_allclose(
        ops.arctan2(Tensor(np.array([1.0, -1.0, 0.0])), Tensor(np.array([-1.0, -1.0, -1.0]))).data,
        np.arctan2([1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]),
    )
    big = np.array([1e30, -1e30])
    np.testing.assert_allclose(ops.hypot(Tensor(big.astype("float32")), 1.0).data, 1e30)
    np.testing.assert_allclose(
        ops.logaddexp(Tensor(np.array([1000.0])), 1000.0).data, 1000 + math.log(2)
    )
    a = Tensor(np.array([1.0, 2.0, 0.0]), requires_grad=True)
    b = Tensor(np.array([0.0, 4.0, 0.0]), requires_grad=True)
    out = ops.divide_no_nan(a, b)
    np.testing.assert_array_equal(out.data, [0.0, 0.5, 0.0])
    ops.sum(out).backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.25, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, -2.0 / 16, 0.0])
    np.testing.assert_array_equal(ops.fmod(np.array([-7, 7]), np.array([3, -3])).data, [-1, 1])


def test_non_differentiable_results_are_plain():
    x = np.array([-np.inf, -2.5, -0.0, 0.0, 1.7, np.inf, np.nan])
    t = Tensor(x, requires_grad=True)
    for fn, ref in [
        (ops.trunc, np.trunc),
        (ops.signbit, np.signbit),
        (ops.isinf, np.isinf),
        (ops.isposinf, np.isposinf),
        (ops.isneginf, np.isneginf),
    ]:
        out = fn(t)
        np.testing.assert_array_equal(out.data, ref(x))
        assert not out.requires_grad and out.dtype == ref(x).dtype
    h = ops.heaviside(Tensor(np.array([-1.0, 0.0, 2.0])), 0.5)
    np.testing.assert_array_equal(h.data, [0.0, 0.5, 1.0])
    assert not h.requires_grad
    assert ops.heaviside(np.array([-1, 0, 3]), np.array(1)).dtype == "float32"


def test_nan_to_num_values_and_gradient():
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0])
    np.testing.assert_array_equal(ops.nan_to_num(Tensor(x)).data, np.nan_to_num(x))
    np.testing.assert_array_equal(
        ops.nan_to_num(Tensor(x), nan=1.0, posinf=9.0, neginf=-9.0).data,
        np.nan_to_num(x, nan=1.0, posinf=9.0, neginf=-9.0),
    )
    assert ops.nan_to_num(Tensor(x.astype("float32"))).data[1] == np.finfo("float32").max
    t = Tensor(x, requires_grad=True)
    ops.sum(ops.nan_to_num(t)).backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(ops.nan_to_num(np.array([1, 2])).data, [1, 2])


# --- activations --------------------------------------------------------------------------
def _sparsemax_reference(x: np.ndarray) -> np.ndarray:
    """The simplex projection by bisection on tau (independent of the sorting formula)."""
    out = np.empty_like(x)
    for i, row in enumerate(x.reshape(-1, x.shape[-1])):
        lo, hi = row.min() - 1, row.max()
        for _ in range(200):
            tau = (lo + hi) / 2
            lo, hi = (tau, hi) if np.maximum(row - tau, 0).sum() > 1 else (lo, tau)
        out.reshape(-1, x.shape[-1])[i] = np.maximum(row - (lo + hi) / 2, 0)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


AWAY = np.where(np.abs(np.abs(REAL) - 1) < 0.05, REAL + 0.2, REAL)  # off the kinks at +-1
AWAY = np.where(np.abs(np.abs(AWAY) - 0.5) < 0.05, AWAY + 0.15, AWAY)  # and at +-0.5
ACTIVATIONS = [
    (
        "celu",
        lambda t: ops.celu(t, alpha=0.7),
        lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)),
    ),
    ("glu", ops.glu, lambda x: x[:, :2] * _sigmoid(x[:, 2:])),
    ("glu_axis0", lambda t: ops.glu(t[:2], axis=0), lambda x: x[:1] * _sigmoid(x[1:2])),
    ("hard_tanh", ops.hard_tanh, lambda x: np.clip(x, -1, 1)),
    ("hard_shrink", ops.hard_shrink, lambda x: np.where(np.abs(x) > 0.5, x, 0)),
    (
        "soft_shrink",
        lambda t: ops.soft_shrink(t, threshold=0.3),
        lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.3, 0),
    ),
    ("tanh_shrink", ops.tanh_shrink, lambda x: x - np.tanh(x)),
    ("squareplus", lambda t: ops.squareplus(t, b=2), lambda x: (x + np.sqrt(x * x + 2)) / 2),
    (
        "sparse_plus",
        ops.sparse_plus,
        lambda x: np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / 4, x)),
    ),
    ("sparse_sigmoid", ops.sparse_sigmoid, lambda x: np.clip((x + 1) / 2, 0, 1)),
    ("threshold", lambda t: ops.threshold(t, 0.3, -2.0), lambda x: np.where(x > 0.3, x, -2.0)),
    ("sparsemax", ops.sparsemax, _sparsemax_reference),
    (
        "sparsemax_axis0",
        lambda t: ops.sparsemax(t, axis=0),
        lambda x: _sparsemax_reference(x.T).T,
    ),
]


@pytest.mark.parametrize("name, fn, ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_values_and_gradients(name, fn, ref):
    np.testing.assert_allclose(fn(Tensor(AWAY)).data, ref(AWAY), rtol=1e-12, atol=1e-12)
    gradcheck(fn, AWAY, mode="elementwise", name=name)
    assert fn(Tensor(AWAY.astype("float32"))).dtype == "float32"


def test_sparsemax_rows_are_distributions_with_zeros():
    x = RNG.standard_normal((5, 7)) * 3
    y = ops.sparsemax(Tensor(x)).data
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-12)
    assert (y >= 0).all() and (y == 0).any()
    ties = np.array([[1.0, 1.0, -5.0]])
    np.testing.assert_allclose(ops.sparsemax(Tensor(ties)).data, [[0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="sparsemax: axis"):
        ops.sparsemax(Tensor(x), axis=2)


def test_activation_errors():
    with pytest.raises(ValueError, match="glu: axis -1"):
        ops.glu(Tensor(np.ones((2, 3))))


def test_keras_activations_registry_has_the_new_functions():
    x = Tensor(AWAY)
    for name in (
        "celu",
        "glu",
        "hard_tanh",
        "hard_shrink",
        "soft_shrink",
        "tanh_shrink",
        "squareplus",
        "sparse_plus",
        "sparse_sigmoid",
        "sparsemax",
    ):
        fn = activations.get(name)
        np.testing.assert_array_equal(fn(x).data, getattr(ops, name)(x).data)
        assert activations.serialize(fn) == name and getattr(activations, name) is fn
    np.testing.assert_array_equal(
        activations.threshold(x, 0.1, 0.0).data, ops.threshold(x, 0.1, 0.0).data
    )
    layer = keras.layers.Dense(4, activation="sparsemax")
    np.testing.assert_allclose(layer(Tensor(REAL.astype("float32"))).data.sum(-1), 1, rtol=1e-6)


def test_new_elementwise_ops_record_on_symbolic_tensors():
    x = keras.Input((4,))
    outs = [
        ops.tan(x),
        ops.arctan2(x, 2.0),
        ops.erfinv(ops.multiply(x, 0.5)),
        ops.divide_no_nan(x, x),
        ops.sparsemax(x),
        ops.glu(x),
        ops.isinf(x),
        ops.nan_to_num(x),
    ]
    model = keras.Model(x, outs)
    a = RNG.uniform(-0.9, 0.9, (3, 4)).astype("float32")
    got = model.predict(a, verbose=0)
    eager = [
        ops.tan(a),
        ops.arctan2(a, 2.0),
        ops.erfinv(a * 0.5),
        ops.divide_no_nan(a, a),
        ops.sparsemax(a),
        ops.glu(a),
        ops.isinf(a),
        ops.nan_to_num(a),
    ]
    for g, e in zip(got, eager):
        np.testing.assert_allclose(np.asarray(g), e.data, rtol=1e-6)
