"""More keras.ops (issue #11): reductions, sorting, einsum, norms, triangles, control flow.
Values against NumPy, gradients against float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))


@pytest.mark.parametrize(
    "fn, ref",
    [
        (lambda t: ops.prod(t, axis=1), lambda a: np.prod(a, axis=1)),
        (lambda t: ops.prod(t), lambda a: np.prod(a)),
        (lambda t: ops.prod(t, axis=0, keepdims=True), lambda a: np.prod(a, 0, keepdims=True)),
        (lambda t: ops.cumsum(t, axis=1), lambda a: np.cumsum(a, axis=1)),
        (lambda t: ops.cumsum(t), lambda a: np.cumsum(a)),
        (lambda t: ops.cumprod(t, axis=0), lambda a: np.cumprod(a, axis=0)),
        (lambda t: ops.sort(t, axis=1), lambda a: np.sort(a, axis=1)),
        (lambda t: ops.sort(t, axis=0), lambda a: np.sort(a, axis=0)),
        (lambda t: ops.top_k(t, 2)[0], lambda a: -np.sort(-a, axis=-1)[:, :2]),
        (lambda t: ops.einsum("ij,kj->ik", t, t), lambda a: a @ a.T),
        (lambda t: ops.einsum("ij->j", t), lambda a: a.sum(0)),
        (lambda t: ops.einsum("...j,j->...", t, t[0]), lambda a: a @ a[0]),
        (lambda t: ops.norm(t), lambda a: np.linalg.norm(a)),
        (lambda t: ops.norm(t, ord=1, axis=1), lambda a: np.abs(a).sum(1)),
        (lambda t: ops.norm(t, ord=3, axis=-1), lambda a: (np.abs(a) ** 3).sum(-1) ** (1 / 3)),
        (lambda t: ops.outer(t[0], t[1]), lambda a: np.outer(a[0], a[1])),
        (lambda t: ops.dot(t, ops.transpose(t)), lambda a: a.dot(a.T)),
        (lambda t: ops.dot(t[0], t[1]), lambda a: a[0].dot(a[1])),
        (lambda t: ops.tril(t), lambda a: np.tril(a)),
        (lambda t: ops.triu(t, 1), lambda a: np.triu(a, 1)),
    ],
)
def test_values_and_gradients(fn, ref):
    np.testing.assert_allclose(fn(Tensor(X)).data, ref(X), rtol=1e-12, atol=1e-12)
    gradcheck(fn, X, mode="elementwise")


def test_prod_and_cumprod_gradients_are_exact_with_zeros():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 4.0], [1.5, -2.0, 0.5]])
    for fn in (
        lambda t: ops.prod(t, axis=1),
        lambda t: ops.prod(t),
        lambda t: ops.cumprod(t, axis=1),
    ):
        gradcheck(fn, x, mode="elementwise")
    t = Tensor(x[0], requires_grad=True)
    ops.prod(t).backward()
    np.testing.assert_array_equal(t.grad, [0.0, 6.0, 0.0])  # d/dx1 = 2 * 3


def test_integer_and_boolean_results():
    x = Tensor(np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 5.0]]))
    np.testing.assert_array_equal(ops.argsort(x).data, [[1, 2, 0], [0, 1, 2]])
    values, indices = ops.top_k(x, 2)
    np.testing.assert_array_equal(indices.data, [[0, 2], [1, 2]])  # ties: the lower index
    assert indices.dtype == "int32" and values.dtype == "float64"
    np.testing.assert_array_equal(ops.top_k(x, 2, sorted=False)[1].data, [[0, 2], [1, 2]])
    assert bool(ops.all(x >= 0).data) and not bool(ops.any(x > 5).data)
    np.testing.assert_array_equal(ops.any(x > 4, axis=1).data, [False, True])
    with pytest.raises(ValueError, match="top_k: k must be"):
        ops.top_k(x, 4)


def test_linspace_and_queries():
    np.testing.assert_allclose(ops.linspace(0, 1, 5).data, np.linspace(0, 1, 5))
    assert ops.linspace(0, 1, 5).dtype == "float32"
    x = Tensor(np.ones((2, 3)))
    assert ops.size(x) == 6 and ops.ndim(x) == 2 and ops.is_tensor(x) and not ops.is_tensor(1)
    assert ops.cumsum(x, axis=1, dtype="int32").dtype == "int32"
    assert ops.cumprod(x, dtype="float32").dtype == "float32"
    assert ops.prod(x, dtype="float32").dtype == "float32"


def test_stop_gradient_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = ops.sum(x * ops.stop_gradient(x))  # d/dx = stop(x), not 2x
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_control_flow():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    out = ops.cond(ops.sum(x) > 5, lambda: ops.sum(x * 2), lambda: ops.sum(x))
    out.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    assert ops.fori_loop(0, 4, lambda i, v: v + i, 10) == 16
    assert ops.while_loop(lambda a, b: a < 10, lambda a, b: (a * 2, b + 1), (1, 0)) == (16, 4)
    assert ops.while_loop(lambda a: a < 100, lambda a: a * 3, 1, maximum_iterations=2) == 9
    carry, ys = ops.scan(lambda c, v: (c + v, c * v), Tensor(0.0), Tensor(np.arange(4.0)))
    assert float(carry.data) == 6.0
    np.testing.assert_array_equal(ys.data, [0.0, 0.0, 2.0, 9.0])
    _, rev = ops.scan(lambda c, v: (c + v, c), Tensor(0.0), Tensor(np.arange(3.0)), reverse=True)
    np.testing.assert_array_equal(rev.data, [3.0, 2.0, 0.0])
    np.testing.assert_array_equal(ops.map(lambda r: ops.sum(r), Tensor(X)).data, X.sum(1))
    with pytest.raises(ValueError, match="pred must be a scalar"):
        ops.cond(Tensor(np.ones(2)), lambda: 1, lambda: 2)


def test_new_ops_record_on_symbolic_tensors(tmp_path):
    x = keras.Input((4,))
    values, _ = ops.top_k(x, 2)
    y = ops.concatenate(
        [ops.cumsum(x, axis=1), ops.sort(x), values, ops.norm(x, axis=-1, keepdims=True)],
        axis=-1,
    )
    model = keras.Model(x, y)
    a = RNG.standard_normal((5, 4)).astype("float32")
    expected = np.concatenate(
        [
            np.cumsum(a, 1),
            np.sort(a, 1),
            -np.sort(-a, 1)[:, :2],
            np.linalg.norm(a, axis=-1, keepdims=True),
        ],
        axis=-1,
    )
    np.testing.assert_allclose(model.predict(a, verbose=0), expected, rtol=1e-5)
    model.save(tmp_path / "m.dendrite")
    again = keras.models.load_model(tmp_path / "m.dendrite").predict(a, verbose=0)
    np.testing.assert_array_equal(again, model.predict(a, verbose=0))


def test_mod_and_floor_divide_follow_python_and_mod_is_differentiable():
    a = RNG.standard_normal((3, 4)) * 3
    b = np.where(RNG.random((3, 4)) > 0.5, 1.0, -1.0) * (RNG.random((3, 4)) + 0.7)
    np.testing.assert_array_equal(ops.floor_divide(Tensor(a), Tensor(b)).data, a // b)
    np.testing.assert_allclose(ops.mod(Tensor(a), Tensor(b)).data, np.mod(a, b), atol=1e-12)
    np.testing.assert_allclose((Tensor(a) % 2.5).data, a % 2.5, atol=1e-12)
    assert not ops.floor_divide(Tensor(a, requires_grad=True), 2.0).requires_grad
    # Away from the jumps of floor(a / b), d(a % b)/da = 1 and d/db = -floor(a / b).
    gradcheck(lambda x, y: ops.mod(x, y), a, b, mode="elementwise")


def test_norm_refuses_an_unknown_order():
    with pytest.raises(ValueError, match="norm: unsupported ord 'nuc'"):
        ops.norm(Tensor(X), ord="nuc")


def test_einsum_refuses_a_gradient_it_cannot_give_and_a_wrong_operand_count():
    square = Tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    np.testing.assert_allclose(ops.einsum("ii->i", square).data, np.diag(square.data))
    with pytest.raises(ValueError, match="no gradient for the repeated subscript"):
        ops.sum(ops.einsum("ii->i", square)).backward()
    with pytest.raises(ValueError, match="names 2 operands, but 1 were given"):
        ops.einsum("ij,jk->ik", square)
