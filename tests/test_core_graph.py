"""The autodiff engine: Tensor basics, accumulation, deep graphs, release, no_grad, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dendrite import ops
from dendrite.core import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from dendrite.testing import gradcheck


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# --- Tensor basics --------------------------------------------------------------------------
def test_default_dtype_is_float32_and_float64_is_kept():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor([1, 2], dtype="float64").dtype == np.float64


def test_properties_and_numpy():
    data = np.arange(6.0).reshape(2, 3)
    t = Tensor(data)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), data)
    assert float(Tensor(2.5)) == 2.5 and Tensor(np.array([4.0])).item() == 4.0
    assert "requires_grad=True" in repr(leaf([1.0]))


def test_integer_tensors_cannot_require_gradients():
    with pytest.raises(TypeError, match="floating"):
        Tensor([1, 2], requires_grad=True)


def test_operators_record_and_backward():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 5.0])
    y = (a * b + a / b - b**2 + (-a)) @ Tensor(np.ones(2))
    y.backward()
    np.testing.assert_allclose(a.grad, [3 + 1 / 3 - 1, 5 + 1 / 5 - 1])
    np.testing.assert_allclose(b.grad, [1 - 1 / 9 - 6, 2 - 2 / 25 - 10])


def test_reflected_operators_with_numbers_and_arrays():
    x = leaf([1.0, 2.0])
    y = ops.sum(2.0 - x + 1 / x + np.array([1.0, 1.0]) * x + 2**x)
    y.backward()
    np.testing.assert_allclose(
        x.grad, -1 - 1 / np.array([1, 4]) + 1 + np.log(2) * 2 ** np.array([1, 2])
    )


def test_indexing_and_slicing_route_gradients():
    x = leaf(np.arange(12.0).reshape(3, 4))
    y = ops.sum(x[1:, ::2]) + ops.sum(x[0]) * 2 + ops.sum(x[[0, 0], [1, 1]])
    y.backward()
    expected = np.zeros((3, 4))
    expected[1:, ::2] += 1
    expected[0] += 2
    expected[0, 1] += 2
    np.testing.assert_array_equal(x.grad, expected)


# --- accumulation, depth, release ------------------------------------------------------------
def test_gradient_accumulates_when_a_tensor_is_used_twice():
    x = leaf([3.0])
    y = x * x + x  # x feeds two nodes, and one of them twice
    y.backward(np.ones(1))
    np.testing.assert_allclose(x.grad, [7.0])


def test_diamond_graph():
    x = leaf([2.0])
    a = ops.exp(x)
    y = ops.sum(a * a + ops.log(a))  # e^{2x} + x
    y.backward()
    np.testing.assert_allclose(x.grad, [2 * np.exp(4.0) + 1])


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    ops.sum(x * 3).backward()
    ops.sum(x * 3).backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_ten_thousand_op_chain_has_no_recursion_error():
    x = leaf([0.5])
    h = x
    for _ in range(10_000):  # a long recurrent unroll
        h = h * 0.9999 + 0.0001
    ops.sum(h).backward()
    np.testing.assert_allclose(x.grad, [0.9999**10_000], rtol=1e-10)


def test_graph_is_released_after_backward():
    x = leaf([1.0, 2.0])
    y = ops.sum(ops.exp(x) * x)
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_second_backward_adds_the_same_gradient():
    x = leaf([1.0, -2.0, 0.5])
    y = ops.sum(ops.tanh(x) * x + x * x)
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([[1.0, 2.0]])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(1, 2\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        y.backward(np.ones(3))
    y.backward(np.array([[1.0, 10.0]]))
    np.testing.assert_allclose(x.grad, [[2.0, 20.0]])


def test_backward_without_requires_grad_explains():
    with pytest.raises(RuntimeError, match="does not require gradients"):
        (Tensor([1.0]) * 2).sum().backward()


def test_only_requested_inputs_get_gradients():
    x, c = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    ops.sum(x * c).backward()
    assert c.grad is None and not c.requires_grad
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


# --- no_grad, detach, comparisons ------------------------------------------------------------
def test_no_grad_records_nothing():
    x = leaf([1.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2 + 1
        with enable_grad():
            z = x * 3
    assert is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad


def test_no_grad_as_decorator():
    @no_grad()
    def step(t):
        return t * t

    x = leaf([2.0])
    assert not step(x).requires_grad
    assert is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([2.0])
    d = x.detach()
    assert not d.requires_grad and d._ctx is None and d.data is x.data
    y = ops.sum(x * d)
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0])


def test_comparisons_give_plain_boolean_tensors():
    x = leaf([1.0, 2.0, 3.0])
    for result in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2, x > Tensor([0.0, 5.0, 1.0])):
        assert isinstance(result, Tensor)
        assert result.dtype == np.bool_ and not result.requires_grad and result._ctx is None
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    assert len({x, x}) == 1  # still hashable by identity


def test_ndarray_on_the_left_defers_to_the_tensor():
    x = leaf([1.0, 2.0])
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, Tensor) and y.requires_grad


# --- dtype policy -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expression",
    [
        lambda x: x * 2.0,
        lambda x: 2.0 * x,
        lambda x: x + 1,
        lambda x: 1 - x,
        lambda x: x / 3,
        lambda x: 3.0 / x,
        lambda x: x**2,
        lambda x: 2.0**x,
        lambda x: ops.maximum(x, 0.5),
        lambda x: ops.where(x.data > 0, x, 0.0),
        lambda x: ops.clip(x, 0.0, 1.0),
    ],
)
def test_python_scalars_do_not_upcast(expression):
    x32 = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = expression(x32)
    assert y.dtype == np.float32
    ops.sum(y).backward()
    assert x32.grad.dtype == np.float32
    x64 = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert expression(x64).dtype == np.float64


def test_integer_tensors_stay_integer_with_int_scalars():
    i = Tensor(np.array([1, 2], np.int32))
    assert (i + 1).dtype == np.int32 and (i * 2).dtype == np.int32


# --- nodes that pass no gradient ----------------------------------------------------------------
class _Blocker(Function):
    """Identity forward whose VJP passes nothing back (like a stop-gradient node)."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return None


class _TooManyGradients(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g, g


def test_a_node_that_passes_no_gradient_does_not_stall_the_sweep():
    x = leaf([2.0])
    h = x * 3  # feeds both the blocked path and the live one
    blocked = _Blocker.apply(h * h)
    y = ops.sum(blocked * 5 + h)
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0])


def test_a_vjp_with_the_wrong_number_of_gradients_is_reported():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="_TooManyGradients.backward returned 2 gradients for 1"):
        ops.sum(_TooManyGradients.apply(x)).backward()


def test_backward_on_a_leaf_sets_its_gradient():
    x = leaf(2.0)
    x.backward()
    assert x.grad == 1.0


# --- the sweep order on arbitrary graphs --------------------------------------------------------
_STEPS = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50), st.sampled_from("+-*t")),
    min_size=1,
    max_size=14,
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=_STEPS)
def test_random_dags_match_finite_differences(steps):
    """Random graphs where tensors are reused at any distance: the one-pass sweep must still
    run every node after all of its consumers."""

    def fn(x, y):
        nodes = [x, y]
        for i, j, op in steps:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            if op == "+":
                nodes.append(a + b)
            elif op == "-":
                nodes.append(a - b * 0.5)
            elif op == "*":
                nodes.append(ops.tanh(a) * b)
            else:
                nodes.append(ops.tanh(a))
        return nodes[-1] + nodes[len(nodes) // 2] * 0.25

    rng = np.random.default_rng(len(steps))
    gradcheck(fn, rng.standard_normal(3), rng.standard_normal(3), name="random graph")


def test_a_gradient_takes_the_dtype_of_its_tensor():
    """As PyTorch: a float32 tensor's gradient is float32 even where it met a float64 one
    (the float64 gradient is cast at that edge, so every VJP gets its output's dtype), and
    the values are the float64 ones rounded."""
    seen = []

    class Spy(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            seen.append(g.dtype)
            return g * 2

    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    w = Tensor(np.array([0.1, 0.3], np.float64), requires_grad=True)
    y = Spy.apply(x) * w
    assert y.dtype == np.float64
    y.sum().backward()
    assert seen == [np.float32]
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, np.float32([0.1, 0.3]) * 2)
    np.testing.assert_allclose(w.grad, [2.0, 4.0])


def test_integer_and_complex_gradients_are_left_as_they_come():
    """Only real floating gradients of a real floating tensor change precision."""
    z = Tensor(np.array([1 + 1j, 2 - 1j], np.complex64), requires_grad=True)
    (z * Tensor(np.array([1.0, 2.0], np.float64))).sum().backward()
    assert z.grad.dtype.kind == "c"
