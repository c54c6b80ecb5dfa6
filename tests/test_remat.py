"""keras.remat: the gradients of a rematerialised block equal the plain block's (and finite
differences), its graph keeps one node instead of the block's intermediates, and random
draws, the training flag and moving statistics are the same as in the plain run."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.core import Tensor, Variable, no_grad
from dendrite.core.backprop import backprop
from dendrite.layers.remat import Recompute
from dendrite.testing import gradcheck

RNG = np.random.default_rng(3)


def _block() -> keras.Sequential:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dropout(0.5),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )


def _step(f, block, x):
    """loss = sum(f(x)^2) in training; its value, dL/dx, dL/dW for every weight and the
    non-trainable state afterwards."""
    keras.utils.set_random_seed(1)
    xt = Tensor(x.copy(), requires_grad=True)
    y = f(xt, training=True)
    node = y._ctx
    recorded = (type(node), len(node.inputs))  # before backward releases the node
    loss = ops.sum(y * y)
    found = backprop(loss, np.ones((), loss.data.dtype))
    grads = [found[id(v)][1] for v in block.trainable_weights]
    state = [v.data.copy() for v in block.non_trainable_weights]
    return loss.data, found[id(xt)][1], grads, state, recorded


def test_a_layer_block_gives_the_plain_blocks_loss_gradients_and_statistics():
    x = RNG.standard_normal((8, 4)).astype("float32")
    block = _block()
    start = [v.data.copy() for v in block.weights]
    moving_before = [v.data.copy() for v in block.non_trainable_weights]
    plain = _step(block, block, x)
    for variable, value in zip(block.weights, start):
        variable.assign(value)
    remade = _step(keras.remat(block), block, x)
    np.testing.assert_array_equal(remade[0], plain[0])
    np.testing.assert_array_equal(remade[1], plain[1])
    for a, b in zip(remade[2], plain[2]):
        np.testing.assert_array_equal(a, b)
    # the moving statistics moved once (by the forward pass), not twice
    for a, b in zip(remade[3], plain[3]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(remade[3][0], moving_before[0])
    # one node stands for the whole block: its inputs are x and the trainable weights
    assert remade[4] == (Recompute, 1 + len(block.trainable_weights))
    assert plain[4][0] is not Recompute


def test_gradients_of_a_function_match_finite_differences():
    w = Variable(RNG.standard_normal((3, 2)), name="w")

    def f(x, scale=2.0):
        return ops.sin(ops.matmul(x, w)) * scale

    x = Tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    gradcheck(keras.remat(f), x)
    y = keras.remat(f)(x, scale=3.0)
    found = backprop(ops.sum(y), np.ones(()))
    expected = backprop(ops.sum(f(Tensor(x.data, requires_grad=True), scale=3.0)), np.ones(()))
    np.testing.assert_allclose(found[id(w)][1], expected[id(w)][1], rtol=1e-12)


def test_fit_with_a_rematerialised_block_trains_as_the_plain_one():
    class Net(keras.Model):
        def __init__(self, use_remat: bool) -> None:
            super().__init__()
            self.block = _block()
            self.head = keras.layers.Dense(2)
            self.run_block = keras.remat(self.block) if use_remat else self.block

        def call(self, x, training=False):
            return self.head(self.run_block(x, training=training))

    x = RNG.standard_normal((32, 4)).astype("float32")
    y = RNG.integers(0, 2, 32)
    results = []
    for use_remat in (False, True):
        model = Net(use_remat)
        model(x[:2])
        keras.utils.set_random_seed(7)
        model.head.set_weights([np.full((3, 2), 0.1, "float32"), np.zeros(2, "float32")])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        results.append((history.history["loss"], [w.copy() for w in model.get_weights()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def test_without_gradients_it_is_the_function_itself():
    block = _block()
    x = RNG.standard_normal((2, 4)).astype("float32")
    with no_grad():
        y = keras.remat(block)(x)
    assert y._ctx is None
    np.testing.assert_array_equal(y.data, block(x).data)


def test_errors_name_the_function():
    with pytest.raises(TypeError, match="remat: expected a layer or a function"):
        keras.remat(3)

    def pair(x):
        return x * 2.0, x

    with pytest.raises(ValueError, match="remat: 'pair' must return one tensor"):
        keras.remat(pair)(Tensor(np.ones(2), requires_grad=True))


@pytest.mark.parametrize(
    ("mode", "kwargs", "recomputed"),
    [
        ("full", {}, ("Recompute", "Recompute")),
        ("activations", {}, ("Recompute", "Dense")),  # b's linear activation passes through
        ("larger_than", {"output_size_threshold": 20}, ("Recompute", "Dense")),  # 64 > 20 > 12
        ("list_of_layers", {"layer_names": ["b"]}, ("Tanh", "Recompute")),
        (None, {}, ("Tanh", "Dense")),
    ],
)
def test_remat_scope_marks_the_layers_created_inside_it(mode, kwargs, recomputed):
    x = RNG.standard_normal((4, 8)).astype("float32")
    with keras.RematScope(mode, **kwargs):
        a = keras.layers.Dense(16, activation="tanh", name="a")
        b = keras.layers.Dense(3, name="b")
    after = keras.layers.Dense(3)
    assert after._remat_mode is None and a._remat_mode.mode == mode
    plain_a = keras.layers.Dense(16, activation="tanh")
    plain_b = keras.layers.Dense(3)
    for layer, twin in ((a, plain_a), (b, plain_b)):
        layer.build((None, 8 if layer is a else 16))
        twin.build((None, 8 if layer is a else 16))
        twin.set_weights(layer.get_weights())
    results = []
    for first, second in ((a, b), (plain_a, plain_b)):
        xt = Tensor(x, requires_grad=True)
        hidden = first(xt, training=True)
        y = second(hidden, training=True)
        kinds = (type(hidden._ctx).__name__, type(y._ctx).__name__)
        found = backprop(ops.sum(y * y), np.ones((), "float32"))
        results.append((kinds, found[id(xt)][1], found[id(first.kernel)][1]))
    assert results[0][0] == recomputed
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_remat_scope_checks_its_mode():
    with pytest.raises(ValueError, match="Invalid mode 'some'. Supported modes are: 'full'"):
        keras.RematScope("some")


def test_the_call_that_builds_a_block_runs_plain_then_calls_are_rematerialised():
    """States created during a run have no earlier value to replay: the building call
    keeps its graph, later ones are one Recompute node; the statistics move once a call."""

    class Block(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(5)
            self.norm = keras.layers.BatchNormalization()

        def call(self, x, training=False):
            return self.norm(self.dense(x), training=training)

    x = RNG.standard_normal((6, 3)).astype("float32")
    block = Block()
    twin = Block()
    run = keras.remat(block)
    kinds = []
    for step in range(2):
        xt = Tensor(x, requires_grad=True)
        y = run(xt, training=True)
        kinds.append(type(y._ctx).__name__)
        if step == 0:
            twin(x)  # build the twin, then give it the block's starting weights
            twin.set_weights([w for w in block.get_weights()])
            twin.norm.moving_mean.assign(np.zeros(5, "float32"))
            twin.norm.moving_variance.assign(np.ones(5, "float32"))
        expected = twin(Tensor(x, requires_grad=True), training=True)
        np.testing.assert_allclose(y.data, expected.data, rtol=1e-6)
        backprop(ops.sum(y * y), np.ones((), "float32"))
    assert kinds[0] != "Recompute" and kinds[1] == "Recompute"
    for mine, theirs in zip(block.non_trainable_weights, twin.non_trainable_weights):
        np.testing.assert_allclose(mine.data, theirs.data, rtol=1e-6)
