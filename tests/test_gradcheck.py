"""``dendrite.testing.gradcheck`` accepts correct gradients and catches wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Function, Tensor
from dendrite.testing import gradcheck


class _WrongSquare(Function):
    """x^2 with a deliberately wrong VJP (3x instead of 2x); not registered."""

    def forward(self, x):
        self.saved = x
        return x * x

    def backward(self, g):
        return 3 * g * self.saved


class _DroppedSecondInput(Function):
    """a * b whose VJP forgets b's gradient."""

    def forward(self, a, b):
        self.saved = (a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        return g * b, None


class _TransposedGradient(Function):
    """A VJP with the right values in the wrong places; a sum-only check would miss it."""

    def forward(self, x):
        return x * np.arange(1, x.size + 1).reshape(x.shape)

    def backward(self, g):
        return (g * np.arange(1, g.size + 1).reshape(g.shape))[::-1]


@pytest.mark.parametrize("mode", ["directional", "elementwise"])
def test_accepts_correct_gradients(mode):
    rng = np.random.default_rng(0)
    assert gradcheck(
        lambda a, b: ops.tanh(a @ b), rng.random((3, 4)), rng.random((4, 2)), mode=mode
    )


@pytest.mark.parametrize("mode", ["directional", "elementwise"])
def test_catches_a_wrong_vjp_and_names_the_function(mode):
    with pytest.raises(AssertionError, match=r"gradcheck failed for wrong_square .*input 0"):
        gradcheck(_WrongSquare.apply, np.array([1.0, -2.0, 0.5]), mode=mode, name="wrong_square")


def test_catches_a_missing_input_gradient():
    with pytest.raises(AssertionError, match="input 1"):
        gradcheck(_DroppedSecondInput.apply, np.array([1.0, 2.0]), np.array([3.0, 4.0]))


def test_random_upstream_catches_misplaced_gradients():
    with pytest.raises(AssertionError):
        gradcheck(_TransposedGradient.apply, np.array([1.0, 2.0, 3.0]))


def test_integer_inputs_pass_through_unchecked():
    indices = np.array([2, 0, 2])
    assert gradcheck(lambda x, i: ops.take(x, i), np.array([1.0, 2.0, 3.0]), indices)


def test_float32_inputs_are_checked_in_float64():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x * x

    gradcheck(fn, np.array([1.0, 2.0], np.float32))
    assert set(seen) == {np.dtype(np.float64)}


def test_rejects_bad_usage():
    with pytest.raises(ValueError, match="mode"):
        gradcheck(ops.exp, np.ones(2), mode="sum")
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda x: x.numpy(), np.ones(2))
    with pytest.raises(AssertionError, match="float32"):
        gradcheck(lambda x: x.astype("float32"), np.ones(2))


def test_constant_output_has_zero_gradient():
    assert gradcheck(lambda x: Tensor(np.ones(2)) + 0 * x.detach(), np.ones(2))
