"""Optimizer slots never decay into subnormal floats (they made steps ~100x slower)."""

import numpy as np

import dendrite as tf


def test_momentum_of_a_weight_without_gradient_is_flushed_to_zero():
    variable = tf.Variable(np.ones(4, dtype="float32"))
    optimizer = tf.optimizers.Adam(1e-3)
    grad = np.array([1.0, 1.0, 1.0, 1.0], dtype="float32")
    optimizer.apply_gradients([(grad, variable)])
    zero = np.zeros(4, dtype="float32")
    zero[0] = 1e-3  # one weight keeps a (small) gradient
    for _ in range(850):  # without flushing, 0.1 * 0.9**850 is a subnormal 1e-40
        optimizer.apply_gradients([(zero, variable)])
    momentum = optimizer.variables[2].data  # iterations, learning_rate, then the momentum
    assert momentum[1:].tolist() == [0.0, 0.0, 0.0]
    assert momentum[0] > 1e-5
    tiny = np.finfo(np.float32).tiny
    for slot in optimizer.variables:
        values = np.abs(slot.data[slot.data != 0]) if slot.data.dtype.kind == "f" else []
        assert np.all(np.asarray(values) >= tiny)


def test_flushing_does_not_change_the_trajectory_visibly():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(8, 3)).astype("float32")
    grads = [rng.normal(size=(8, 3)).astype("float32") * (i < 5) for i in range(300)]
    variable = tf.Variable(start.copy())
    optimizer = tf.optimizers.Adam(1e-2)
    for grad in grads:
        optimizer.apply_gradients([(grad, variable)])
    # The same updates in float64 without any flushing.
    w, m, v = start.astype(np.float64), np.zeros((8, 3)), np.zeros((8, 3))
    for t, grad in enumerate(grads, start=1):
        m += 0.1 * (grad - m)
        v += 0.001 * (grad * grad - v)
        alpha = 1e-2 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w -= alpha * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-4, atol=1e-5)
