"""keras.ops NumPy-like functions dendrite lacked (diff, trapezoid, vander, corrcoef,
correlate, cdist, sinc, i0, fabs, fmax, fmin, ldexp, logaddexp2, nextafter, isin, logspace,
geomspace, histogram, empty, array, dtype, saturate_cast, the complex parts, dsplit) and the
bit operations: values against NumPy, gradients against float64 central differences,
dtypes and edge cases. The same calls in real Keras: tests/test_ops_keras3_more_vs_keras.py."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(6)
X = RNG.standard_normal((3, 5))
Y = RNG.standard_normal((3, 5))

# (name, dendrite call, NumPy reference, float64 inputs)
CASES = [
    ("diff", lambda a: ops.diff(a), lambda a: np.diff(a), (X,)),
    ("diff_2_axis0", lambda a: ops.diff(a, 2, axis=0), lambda a: np.diff(a, 2, axis=0), (X,)),
    ("trapezoid", lambda a: ops.trapezoid(a), lambda a: np.trapezoid(a), (X,)),
    (
        "trapezoid_x",
        lambda a, b: ops.trapezoid(a, b[0], axis=1),
        lambda a, b: np.trapezoid(a, b[0], axis=1),
        (X, np.cumsum(np.abs(Y), axis=1)),
    ),
    (
        "trapezoid_x_nd",
        lambda a, b: ops.trapezoid(a, b, axis=0),
        lambda a, b: np.trapezoid(a, b, axis=0),
        (X, Y),
    ),
    (
        "trapezoid_dx",
        lambda a: ops.trapezoid(a, dx=0.3, axis=0),
        lambda a: np.trapezoid(a, dx=0.3, axis=0),
        (X,),
    ),
    ("vander", lambda a: ops.vander(a[0]), lambda a: np.vander(a[0]), (X,)),
    (
        "vander_n",
        lambda a: ops.vander(a[0], 3, increasing=True),
        lambda a: np.vander(a[0], 3, increasing=True),
        (X,),
    ),
    ("corrcoef", ops.corrcoef, np.corrcoef, (X,)),
    (
        "correlate",
        lambda a, b: ops.correlate(a[0], b[1, :3]),
        lambda a, b: np.correlate(a[0], b[1, :3]),
        (X, Y),
    ),
    (
        "correlate_full",
        lambda a, b: ops.correlate(a[0], b[1, :3], "full"),
        lambda a, b: np.correlate(a[0], b[1, :3], "full"),
        (X, Y),
    ),
    (
        "correlate_same",
        lambda a, b: ops.correlate(a[0], b[1, :3], "same"),
        lambda a, b: np.correlate(a[0], b[1, :3], "same"),
        (X, Y),
    ),
    (
        "cdist",
        lambda a, b: ops.cdist(a, b[:2]),
        lambda a, b: np.sqrt(((a[:, None] - b[None, :2]) ** 2).sum(-1)),
        (X, Y),
    ),
    ("sinc", ops.sinc, np.sinc, (X,)),
    ("i0", ops.i0, np.i0, (X * 3,)),
    ("fabs", ops.fabs, np.fabs, (X,)),
    ("fmax", ops.fmax, np.fmax, (X, Y)),
    ("fmin", ops.fmin, np.fmin, (X, Y)),
    ("logaddexp2", ops.logaddexp2, np.logaddexp2, (X, Y)),
    (
        "ldexp",
        lambda a: ops.ldexp(a, np.array([[-2], [0], [3]])),
        lambda a: np.ldexp(a, np.array([[-2], [0], [3]])),
        (X,),
    ),
    ("real", ops.real, np.real, (X,)),
    ("conj", ops.conj, np.conj, (X,)),
    (
        "saturate_cast",
        lambda a: ops.saturate_cast(a * 1e39, "float32"),
        lambda a: np.clip(a * 1e39, -3.4028235e38, 3.4028235e38).astype("float32"),
        (X,),
    ),
]


@pytest.mark.parametrize("name, fn, ref, inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients(name, fn, ref, inputs):
    out = fn(*[Tensor(a) for a in inputs])
    expected = ref(*inputs)
    assert out.shape == np.shape(expected), (out.shape, np.shape(expected))
    np.testing.assert_allclose(out.data, expected, rtol=1e-6 if name == "saturate_cast" else 1e-12)
    if name != "saturate_cast":
        gradcheck(fn, *inputs, mode="elementwise", name=name)


def test_special_points():
    # sinc at 0: 1 with slope 0; cdist between equal rows: 0 with a zero (not NaN) gradient
    zero = Tensor(np.array([0.0, 1e-30, 0.5]), requires_grad=True)
    ops.sum(ops.sinc(zero)).backward()
    np.testing.assert_allclose(ops.sinc(zero).data, np.sinc(zero.data))
    assert np.all(np.isfinite(zero.grad)) and zero.grad[0] == 0
    rows = Tensor(X[:2], requires_grad=True)
    distances = ops.cdist(rows, rows)
    np.testing.assert_allclose(np.diag(distances.data), 0.0)
    ops.sum(distances).backward()
    assert np.all(np.isfinite(rows.grad))
    # fmax / fmin: a NaN loses to a number, and gets no gradient
    a = Tensor(np.array([np.nan, 1.0, np.nan]), requires_grad=True)
    b = Tensor(np.array([2.0, np.nan, np.nan]), requires_grad=True)
    out = ops.fmax(a, b)
    np.testing.assert_array_equal(out.data, np.fmax(a.data, b.data))
    ops.sum(ops.where(ops.isnan(out), 0.0, out)).backward()
    np.testing.assert_array_equal(a.grad, [0, 1, 0])
    np.testing.assert_array_equal(b.grad, [1, 0, 0])
    # logaddexp2 without overflow
    assert ops.logaddexp2(Tensor(np.array([3000.0])), 3000.0).data[0] == 3001.0


def test_dtypes():
    ints = np.arange(6).reshape(2, 3).astype("int32")
    assert ops.sinc(ints).dtype == "float32"
    assert ops.fabs(ints).dtype == "float32"
    assert ops.i0(ints).dtype == "float32"
    assert ops.i0(ints.astype("int64")).dtype == "float64"
    assert ops.i0(Tensor(X.astype("float32"))).dtype == "float32"
    assert ops.diff(ints).dtype == "int32"
    assert ops.vander(np.array([1, 2, 3], "int32")).dtype == "int32"
    assert ops.corrcoef(ints).dtype == "float32"
    assert ops.correlate(ints[0], ints[1]).dtype == "float32"
    assert ops.ldexp(ints, ints).dtype == "float32"
    assert ops.logaddexp2(ints, 1).dtype == "float32"
    np.testing.assert_array_equal(
        ops.diff(np.array([True, False, False, True])).data, [True, False, True]
    )


def test_plain_results():
    a = np.array([[1, 5, 2], [7, 2, 9]])
    out = ops.isin(a, [2, 9])
    np.testing.assert_array_equal(out.data, np.isin(a, [2, 9]))
    np.testing.assert_array_equal(ops.isin(a, [2, 9], invert=True).data, ~np.isin(a, [2, 9]))
    x32 = np.array([1.0, 2.0, -1.0], "float32")
    np.testing.assert_array_equal(
        ops.nextafter(x32, np.float32(5.0)).data, np.nextafter(x32, np.float32(5.0))
    )
    assert ops.nextafter(x32, np.float32(5.0)).dtype == "float32"
    np.testing.assert_allclose(ops.logspace(0.0, 3.0, 4).data, [1, 10, 100, 1000])
    assert ops.logspace(0.0, 3.0, 4).dtype == "float32"
    np.testing.assert_allclose(
        ops.logspace(np.array([0.0, 1.0]), np.array([2.0, 3.0]), 3, axis=1).data,
        np.logspace([0.0, 1.0], [2.0, 3.0], 3, axis=1),
    )
    np.testing.assert_allclose(
        ops.geomspace(1.0, 256.0, 9, dtype="float64").data, 2.0 ** np.arange(9)
    )
    np.testing.assert_allclose(
        ops.geomspace(-1.0, -1000.0, 4, endpoint=False).data,
        np.geomspace(-1.0, -1000.0, 4, endpoint=False),
        rtol=1e-6,
    )
    counts, edges = ops.histogram(X, bins=4)
    expected = np.histogram(X, bins=4)
    np.testing.assert_array_equal(counts.data, expected[0])
    np.testing.assert_allclose(edges.data, expected[1])
    assert counts.dtype == np.float64
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        ops.histogram(X, bins=0)
    assert ops.empty((2, 3)).shape == (2, 3) and ops.empty((2,)).dtype == "float32"
    assert ops.empty_like(np.ones((2, 2), "int8")).dtype == "int8"
    assert ops.array([1.5, 2.5]).dtype == "float32"
    assert ops.array([1, 2], dtype="int16").dtype == "int16"
    assert ops.dtype(Tensor(X)) == "float64" and ops.dtype(np.ones(2, "int32")) == "int32"
    assert ops.dtype([1.0]) == "float32"


def test_saturate_cast():
    x = np.array([-300.0, -1.5, 0.4, 254.6, 300.0, np.inf], "float32")
    np.testing.assert_array_equal(ops.saturate_cast(x, "uint8").data, [0, 0, 0, 254, 255, 255])
    assert ops.saturate_cast(x, "uint8").dtype == "uint8"
    np.testing.assert_array_equal(
        ops.saturate_cast(np.array([1e30, -1e30], "float32"), "int64").data,
        [np.iinfo("int64").max, np.iinfo("int64").min],
    )
    np.testing.assert_array_equal(
        ops.saturate_cast(np.array([-1000, 5, 1000], "int32"), "int8").data, [-128, 5, 127]
    )
    np.testing.assert_array_equal(
        ops.saturate_cast(np.array([-5, 5], "int32"), "uint16").data, [0, 5]
    )
    t = Tensor(np.array([1.0, 1e300]), requires_grad=True)
    ops.sum(ops.saturate_cast(t, "float32")).backward()
    np.testing.assert_array_equal(t.grad, [1.0, 0.0])


def test_complex_parts_of_real_tensors_and_complex_arrays():
    t = Tensor(X, requires_grad=True)
    assert ops.real(t) is t and ops.conjugate(t) is t
    np.testing.assert_array_equal(ops.imag(t).data, np.zeros_like(X))
    np.testing.assert_array_equal(ops.angle(X).data, np.angle(X))
    assert ops.angle(np.array([-1, 2])).dtype == "float64"
    assert ops.angle(np.array([-1, 2], "int32")).dtype == "float32"
    assert ops.isreal(X).data.all()
    z = np.array([1 + 2j, -3 - 1j])
    np.testing.assert_array_equal(ops.real(z).data, z.real)
    np.testing.assert_array_equal(ops.imag(z).data, z.imag)
    np.testing.assert_array_equal(ops.conj(z).data, z.conj())
    np.testing.assert_array_equal(ops.isreal(z).data, [False, False])
    np.testing.assert_allclose(ops.angle(z).data, np.angle(z))


def test_dsplit():
    cube = RNG.standard_normal((2, 3, 4))
    parts = ops.dsplit(Tensor(cube), 2)
    for got, expected in zip(parts, np.dsplit(cube, 2)):
        np.testing.assert_array_equal(got.data, expected)
    parts = ops.dsplit(Tensor(cube), [1, 3])
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 2), (2, 3, 1)]
    with pytest.raises(ValueError, match="3 or more"):
        ops.dsplit(Tensor(X), 1)


def test_bessel_i0_gradient_far_out():
    x = np.array([-40.0, -7.5, 0.0, 0.3, 12.0, 95.0])
    t = Tensor(x, requires_grad=True)
    ops.sum(ops.i0(t)).backward()
    # I0' = I1, against the power series sum (x/2)^(2k+1) / (k! (k+1)!), term by term
    series = []
    for v in x:
        term, total = v / 2, 0.0
        for k in range(400):
            total += term
            term *= (v / 2) ** 2 / ((k + 1) * (k + 2))
        series.append(total)
    np.testing.assert_allclose(t.grad, series, rtol=1e-12)


# --- bit operations ---------------------------------------------------------------------------
A = np.array([[5, 12, -7], [0, 255, 3]], "int32")
B = np.array([[3, 10, 2], [1, 15, 1]], "int32")


@pytest.mark.parametrize(
    "name, ref",
    [
        ("bitwise_and", np.bitwise_and),
        ("bitwise_or", np.bitwise_or),
        ("bitwise_xor", np.bitwise_xor),
        ("bitwise_left_shift", np.left_shift),
        ("left_shift", np.left_shift),
        ("bitwise_right_shift", np.right_shift),
        ("right_shift", np.right_shift),
        ("gcd", np.gcd),
        ("lcm", np.lcm),
    ],
)
def test_binary_bit_operations(name, ref):
    out = getattr(ops, name)(A, B)
    np.testing.assert_array_equal(out.data, ref(A, B))
    assert out.dtype == "int32" and not out.requires_grad
    assert getattr(ops, name)(A, 3).dtype == "int32"  # a Python int keeps the tensor's dtype
    np.testing.assert_array_equal(getattr(ops, name)(A, 3).data, ref(A, 3))


def test_unary_bit_operations_and_errors():
    np.testing.assert_array_equal(ops.bitwise_not(A).data, ~A)
    np.testing.assert_array_equal(ops.bitwise_invert(A).data, ~A)
    np.testing.assert_array_equal(ops.bitwise_not(np.array([True, False])).data, [False, True])
    np.testing.assert_array_equal(
        ops.bitwise_and(np.array([True, True]), np.array([True, False])).data, [True, False]
    )
    assert ops.bitwise_and(6, 3).data == 2
    with pytest.raises(TypeError, match="integer or boolean"):
        ops.bitwise_and(np.ones(2), 1)
    with pytest.raises(TypeError, match="integer or boolean"):
        ops.bitwise_not(np.ones(2, "float32"))
