"""Subclassed models: ``class M(dendrite.Model)`` with layers made in ``__init__`` and a
``call``; weights appear on the first call (or ``build(input_shape)``), as in Keras."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.core import Dense, Dropout
from dendrite.layers.input_layer import Input
from dendrite.models.functional import Functional
from dendrite.models.model import Model
from dendrite.optimizers import Adam


class TwoLayer(Model):
    def __init__(self, hidden: int = 16, penalty: float = 0.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.hidden = Dense(hidden, activation="relu")
        self.dropout = Dropout(0.1, seed=0)
        self.out = Dense(1)
        self.penalty = penalty
        self.training_flags: list = []

    def call(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        self.training_flags.append(training)
        h = self.hidden(inputs)
        if self.penalty:
            self.add_loss(self.penalty * ops.mean(ops.square(h)))
        return self.out(self.dropout(h, training=training))


class Blocks(Model):
    """Layers held in a list are tracked too."""

    def __init__(self) -> None:
        super().__init__(name="blocks")
        self.blocks = [Dense(4, activation="tanh") for _ in range(3)]
        self.head = Dense(2)

    def call(self, inputs: Tensor) -> Tensor:
        for block in self.blocks:
            inputs = block(inputs)
        return self.head(inputs)


def regression(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")


def test_weights_appear_on_the_first_call() -> None:
    model = TwoLayer()
    assert not model.built and model.weights == []
    x, _ = regression(4)
    assert model(x).shape == (4, 1)
    assert model.built
    assert [v.path for v in model.weights] == [
        f"{model.hidden.name}/kernel",
        f"{model.hidden.name}/bias",
        f"{model.out.name}/kernel",
        f"{model.out.name}/bias",
    ]
    assert model.layers == [model.hidden, model.dropout, model.out]


def test_build_with_a_shape_creates_the_weights() -> None:
    model = TwoLayer(hidden=5)
    model.build((None, 3))
    assert model.built
    assert [tuple(v.shape) for v in model.weights] == [(3, 5), (5,), (5, 1), (1,)]
    assert model.count_params() == 26


def test_subclassed_model_trains_evaluates_predicts() -> None:
    x, y = regression()
    model = TwoLayer()
    model.compile(optimizer=Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert set(history.history) == {"loss", "mae"}
    loss, mae = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and np.isfinite(mae)
    assert model.predict(x, verbose=0).shape == (128, 1)


def test_training_flag_reaches_call() -> None:
    x, y = regression(8)
    model = TwoLayer()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert True in model.training_flags
    model.training_flags.clear()
    model.predict(x, verbose=0)
    assert model.training_flags and not any(model.training_flags)


def test_add_loss_reaches_the_total_loss() -> None:
    x, y = regression(32)
    model = TwoLayer(penalty=0.5)
    model.compile("sgd", "mse")
    total = model.test_on_batch(x, y)
    predictions = model.predict(x, verbose=0)
    hidden = np.maximum(x @ model.hidden.kernel.data + model.hidden.bias.data, 0)
    expected = np.mean((predictions - y) ** 2) + 0.5 * np.mean(hidden**2)
    assert total == pytest.approx(expected, rel=1e-5)
    assert len(model.losses) == 1


def test_add_loss_alone_is_a_training_objective() -> None:
    x, _ = regression(64)
    model = TwoLayer(penalty=1.0)
    model.compile("sgd")  # no compiled loss: the added loss is what fit minimises
    history = model.fit(x, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_layers_in_lists_are_tracked() -> None:
    model = Blocks()
    x = np.ones((2, 5), "float32")
    assert model(x).shape == (2, 2)
    assert model.layers == [*model.blocks, model.head]
    assert len(model.trainable_weights) == 8
    model.compile("sgd", "mse")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, np.zeros((2, 2), "float32"))
    assert all(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def test_summary_lists_the_sublayers() -> None:
    model = TwoLayer(hidden=4)
    model(np.ones((1, 3), "float32"))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert f"{model.hidden.name} (Dense)" in text and f"{model.out.name} (Dense)" in text
    assert "Total params: 21" in text


def test_subclassed_model_as_a_layer_of_a_functional_model() -> None:
    inner = TwoLayer(hidden=4, name="inner_sub")
    x = Input(shape=(3,))
    model = Model(x, Dense(2)(inner(x)))
    assert isinstance(model, Functional)
    assert len(model.weights) == 6
    model.compile("adam", "mse")
    xs, _ = regression(16)
    before = inner.hidden.kernel.data.copy()
    model.fit(xs, np.zeros((16, 2), "float32"), epochs=1, verbose=0)
    assert not np.array_equal(before, inner.hidden.kernel.data)


def test_a_model_subclass_built_from_inputs_and_outputs_is_functional() -> None:
    """As Keras: Model subclasses accept (inputs, outputs) and become functional graphs
    that keep the subclass's methods (the usual home of a custom train_step)."""

    class Graph(Model):
        def describe(self) -> str:
            return "mine"

    x = Input(shape=(3,))
    model = Graph(inputs=x, outputs=Dense(1)(x))
    assert isinstance(model, Graph) and type(model).__name__ == "Graph"
    assert model.describe() == "mine" and len(model.layers) == 2
    assert model(np.ones((2, 3), "float32")).shape == (2, 1)
