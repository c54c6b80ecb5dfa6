"""GradientTape (TensorFlow's custom-training-loop API) and Variable."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import ops
from dendrite.core import GradientTape, Tensor, Variable, no_grad


def test_tensorflow_custom_training_loop_idiom():
    rng = np.random.default_rng(0)
    x = tf.Tensor(rng.standard_normal((64, 3)))
    y = x.numpy() @ np.array([1.0, -2.0, 0.5]) + 0.3
    w = tf.Variable(np.zeros(3))
    b = tf.Variable(0.0)
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = ops.mean(ops.square(ops.matmul(x, w) + b - y))
        grads = tape.gradient(loss, [w, b])
        for var, grad in zip([w, b], grads):
            var.assign_sub(0.1 * grad.numpy())
    np.testing.assert_allclose(w.numpy(), [1.0, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(b.numpy(), 0.3, atol=1e-3)
    assert w.grad is None  # the tape returns gradients; it leaves .grad alone


def test_single_source_gives_a_single_gradient():
    w = Variable(np.array([1.0, 2.0]))
    with GradientTape() as tape:
        y = ops.sum(w * w)
    grad = tape.gradient(y, w)
    assert isinstance(grad, Tensor)
    np.testing.assert_allclose(grad.numpy(), [2.0, 4.0])


def test_non_persistent_tape_allows_one_call():
    w = Variable(np.array([1.0]))
    with GradientTape() as tape:
        y = ops.sum(w * 3)
    tape.gradient(y, w)
    with pytest.raises(RuntimeError, match="persistent=True"):
        tape.gradient(y, w)


def test_persistent_tape_allows_several_calls():
    w = Variable(np.array([1.0, 2.0]))
    with GradientTape(persistent=True) as tape:
        y = ops.sum(w * w)
        z = ops.sum(ops.exp(w))
    np.testing.assert_allclose(tape.gradient(y, w).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(tape.gradient(y, w).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(tape.gradient(z, w).numpy(), np.exp([1.0, 2.0]))


def test_structured_sources_keep_their_structure():
    a, b = Variable(np.array([1.0])), Variable(np.array([2.0]))
    with GradientTape(persistent=True) as tape:
        y = ops.sum(a * b)
    as_dict = tape.gradient(y, {"a": a, "b": b})
    assert set(as_dict) == {"a", "b"}
    np.testing.assert_allclose(as_dict["a"].numpy(), [2.0])
    as_list = tape.gradient(y, [b, a])
    assert isinstance(as_list, list)
    np.testing.assert_allclose(as_list[0].numpy(), [1.0])
    assert isinstance(tape.gradient(y, (a, b)), tuple)


def test_unconnected_sources_get_none_or_zeros():
    a, unused = Variable(np.array([1.0])), Variable(np.array([5.0, 6.0]))
    with GradientTape(persistent=True) as tape:
        y = ops.sum(a * 2)
    assert tape.gradient(y, [a, unused])[1] is None
    zeros = tape.gradient(y, [a, unused], unconnected_gradients="zero")[1]
    np.testing.assert_array_equal(zeros.numpy(), [0.0, 0.0])


def test_watch_a_constant_tensor():
    x = Tensor(np.array([3.0]))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(x * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [6.0])


def test_watching_ends_with_the_tape_but_its_record_stays():
    x = Tensor(np.array([3.0]))
    with GradientTape() as tape:
        tape.watch([x])
        y = ops.sum(x * x)
    assert not x.requires_grad and not (x * 2).requires_grad
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [6.0])


def test_unwatched_constant_has_no_gradient():
    x = Tensor(np.array([3.0]))
    with GradientTape() as tape:
        y = ops.sum(x * x)
    assert tape.gradient(y, x) is None


def test_watch_rejects_integers():
    with GradientTape() as tape, pytest.raises(TypeError, match="floating"):
        tape.watch(Tensor([1, 2]))


def test_non_scalar_target_is_summed():
    w = Variable(np.array([1.0, 2.0]))
    with GradientTape() as tape:
        y = w * np.array([3.0, 4.0])
    np.testing.assert_allclose(tape.gradient(y, w).numpy(), [3.0, 4.0])


def test_output_gradients_seed_the_target():
    w = Variable(np.array([1.0, 2.0]))
    with GradientTape() as tape:
        y = w * w
    grad = tape.gradient(y, w, output_gradients=np.array([10.0, -1.0]))
    np.testing.assert_allclose(grad.numpy(), [20.0, -4.0])


def test_tape_records_even_inside_no_grad():
    w = Variable(np.array([2.0]))
    with no_grad(), GradientTape() as tape:
        y = ops.sum(w * w)
    np.testing.assert_allclose(tape.gradient(y, w).numpy(), [4.0])


def test_intermediate_tensor_as_source():
    w = Variable(np.array([2.0]))
    with GradientTape() as tape:
        h = w * 3
        y = ops.sum(h * h)
    np.testing.assert_allclose(tape.gradient(y, h).numpy(), [12.0])


def test_gradient_keeps_float32():
    w = Variable(np.array([1.0, 2.0], np.float32))
    with GradientTape() as tape:
        y = ops.sum(w * 0.5)
    assert tape.gradient(y, w).dtype == np.float32


# --- Variable ---------------------------------------------------------------------------------
def test_variable_assign_in_place_and_shape_errors():
    v = Variable(np.zeros((2, 3)), name="kernel")
    buffer = v.data
    v.assign(np.ones((2, 3)))
    v.assign_add(np.ones((2, 3)))
    v.assign_sub(np.full((2, 3), 0.5))
    assert v.data is buffer
    np.testing.assert_allclose(v.numpy(), 1.5)
    for method in (v.assign, v.assign_add, v.assign_sub):
        with pytest.raises(ValueError, match=r"shape \(3, 2\).*'kernel'.*shape \(2, 3\)"):
            method(np.ones((3, 2)))


def test_variable_copies_its_initial_value_and_takes_callables():
    init = np.ones(2)
    v = Variable(init)
    v.assign_add(np.ones(2))
    assert init[0] == 1.0
    assert Variable(lambda: np.zeros(3)).shape == (3,)


def test_trainable_and_non_trainable_variables():
    assert Variable(np.ones(2)).requires_grad
    frozen = Variable(np.ones(2), trainable=False)
    assert not frozen.requires_grad and not frozen.trainable
    assert Variable(np.array([1, 2]), trainable=False).dtype.kind == "i"
    with pytest.raises(TypeError, match="floating"):
        Variable(np.array([1, 2]))
    assert "kernel" in repr(Variable(np.ones(1), name="kernel"))
