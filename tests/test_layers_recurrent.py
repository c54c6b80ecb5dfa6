"""SimpleRNN, LSTM, GRU and RNN(cell): gradients, Keras semantics (masks, go_backwards,
states, dropout), the fused path against the step-by-step cell path, configs and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor, no_grad
from dendrite.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from dendrite.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell

B, T, F, U = 3, 5, 4, 6


def _x(dtype: str = "float64", seed: int = 0, shape: tuple = (B, T, F)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _mask(seed: int = 1) -> np.ndarray:
    mask = np.random.default_rng(seed).random((B, T)) > 0.35
    mask[0] = [True, True, True, False, False]  # right padding
    mask[1] = [False, False, True, True, True]  # left padding
    return mask


def _flat(outputs: object) -> Tensor:
    """All outputs as one tensor, so a single upstream gradient covers each of them."""
    items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return ops.concatenate([ops.reshape(o, (-1,)) for o in items], axis=0)


def check_gradients(call: object, layer: object, arrays: list, seed: int = 0) -> None:
    """Directional float64 check of d<u, call(*arrays)> w.r.t. every input and weight."""
    rng = np.random.default_rng(seed)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = _flat(call(*tensors))
    upstream = rng.standard_normal(out.shape)
    for w in layer.trainable_weights:
        w.grad = None
    out.backward(upstream)

    def objective() -> float:
        with no_grad():
            return float(np.sum(upstream * _flat(call(*[Tensor(a) for a in arrays])).data))

    eps = 1e-6
    targets = [(f"input {i}", a, t.grad) for i, (a, t) in enumerate(zip(arrays, tensors))]
    targets += [(w.path, w.data, w.grad) for w in layer.trainable_weights]
    for label, data, analytic in targets:
        direction = rng.standard_normal(data.shape)
        original = data.copy()
        data[...] = original + eps * direction
        plus = objective()
        data[...] = original - eps * direction
        minus = objective()
        data[...] = original
        numeric = (plus - minus) / (2 * eps)
        computed = float(np.sum((0 if analytic is None else analytic) * direction))
        assert abs(computed - numeric) <= 1e-6 + 1e-5 * abs(numeric), (
            f"{layer.name} gradient of {label}: analytic {computed}, numeric {numeric}"
        )


LAYERS = {
    "simple_rnn": lambda **kw: SimpleRNN(U, **kw),
    "lstm": lambda **kw: LSTM(U, **kw),
    "gru": lambda **kw: GRU(U, **kw),
    "gru_reset_before": lambda **kw: GRU(U, reset_after=False, **kw),
}
OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True, "go_backwards": True},
    {"return_sequences": True, "return_state": True, "go_backwards": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "default")
@pytest.mark.parametrize("kind", LAYERS)
def test_gradcheck_float64(kind: str, options: dict) -> None:
    layer = LAYERS[kind](dtype="float64", **options)
    x = _x()
    layer(x)
    # Non-zero biases, so every bias path is exercised.
    for w in layer.weights:
        w.data[...] += np.random.default_rng(3).normal(0, 0.3, w.shape)
    check_gradients(lambda x: layer(x), layer, [x])


@pytest.mark.parametrize("kind", LAYERS)
def test_gradcheck_with_mask_and_initial_state(kind: str) -> None:
    layer = LAYERS[kind](dtype="float64", return_sequences=True, return_state=True)
    x, mask = _x(), _mask()
    layer(x)
    count = len(layer.state_size)
    states = [_x(seed=10 + i, shape=(B, U)) for i in range(count)]
    check_gradients(lambda x, *s: layer(x, mask=mask, initial_state=list(s)), layer, [x, *states])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck_non_default_activations(kind: str) -> None:
    layer = LAYERS[kind](
        dtype="float64",
        activation="relu",
        recurrent_activation="hard_sigmoid",
        return_sequences=True,
        go_backwards=True,
    )
    x = _x()
    layer(x)
    check_gradients(lambda x: layer(x, mask=_mask()), layer, [x])


def _cell_path(layer: object) -> object:
    """Force the step-by-step cell path (the reference for the fused primitives)."""
    layer.cell.fused_activations = lambda: None
    return layer


@pytest.mark.parametrize("activations", [("tanh", "sigmoid"), ("relu", "hard_sigmoid")])
@pytest.mark.parametrize("kind", LAYERS)
def test_fused_path_equals_cell_path(kind: str, activations: tuple) -> None:
    kwargs = {"activation": activations[0]}
    if kind != "simple_rnn":
        kwargs["recurrent_activation"] = activations[1]
    options = {"return_sequences": True, "return_state": True}
    fused = LAYERS[kind](dtype="float64", **kwargs, **options)
    x, mask = _x(), _mask()
    fused(x)
    slow = _cell_path(LAYERS[kind](dtype="float64", **kwargs, **options))
    slow(x)
    slow.set_weights(fused.get_weights())
    states = [_x(seed=5 + i, shape=(B, U)) for i in range(len(fused.state_size))]
    for go_backwards in (False, True):
        fused.go_backwards = slow.go_backwards = go_backwards
        for call in (
            {},
            {"mask": mask},
            {"mask": mask, "initial_state": states},
        ):
            xs = [Tensor(x, requires_grad=True) for _ in range(2)]
            a, b = fused(xs[0], **call), slow(xs[1], **call)
            for p, q in zip(a, b):
                np.testing.assert_allclose(p.data, q.data, atol=1e-12)
            upstream = np.random.default_rng(0).standard_normal(_flat(a).shape)
            _flat(a).backward(upstream)
            _flat(b).backward(upstream)
            np.testing.assert_allclose(xs[0].grad, xs[1].grad, atol=1e-12)


def test_custom_activation_uses_the_cell_path() -> None:
    layer = LSTM(U, activation=lambda z: ops.tanh(z) * 0.5, dtype="float64")
    assert layer.cell.fused_activations() is None
    x = _x()
    layer(x)
    check_gradients(lambda x: layer(x, mask=_mask()), layer, [x])


def test_masking_semantics() -> None:
    """Masked steps carry the state; outputs repeat the last output (zeros before any)."""
    layer = GRU(U, return_sequences=True, return_state=True)
    x = _x("float32")
    mask = _mask()
    seq, state = layer(x, mask=mask)
    # Sample 0 (steps 3, 4 masked) equals running on its first three steps only.
    short_seq, short_state = layer(x[:1, :3])
    np.testing.assert_allclose(seq.data[0, :3], short_seq.data[0], atol=1e-6)
    np.testing.assert_allclose(seq.data[0, 3], seq.data[0, 2])
    np.testing.assert_allclose(state.data[0], short_state.data[0], atol=1e-6)
    # Sample 1 (steps 0, 1 masked) equals running on its last three steps.
    tail_seq, _ = layer(x[1:2, 2:])
    np.testing.assert_array_equal(seq.data[1, :2], 0)
    np.testing.assert_allclose(seq.data[1, 2:], tail_seq.data[0], atol=1e-6)
    # With an initial state, outputs before the first used step are still zeros (Keras).
    init = np.ones((B, U), dtype="float32")
    seq2, state2 = layer(x, mask=mask, initial_state=init)
    np.testing.assert_array_equal(seq2.data[1, :2], 0)
    all_masked = np.zeros((B, T), dtype=bool)
    seq3, state3 = layer(x, mask=all_masked, initial_state=init)
    np.testing.assert_array_equal(seq3.data, 0)
    np.testing.assert_array_equal(state3.data, init)


def test_mask_from_masking_layer_and_output_mask() -> None:
    from dendrite.layers.embedding import Masking

    x = _x("float32")
    x[0, 3:] = 0.0
    masked = Masking(0.0)(Tensor(x))
    layer = LSTM(U, return_sequences=True)
    out = layer(masked)
    np.testing.assert_array_equal(out._keras_mask, masked._keras_mask)
    np.testing.assert_allclose(out.data[0, 3], out.data[0, 2])
    assert LSTM(U)(masked)._keras_mask is None  # the last output carries no time mask


def test_go_backwards_returns_reversed_order() -> None:
    forward = SimpleRNN(U, return_sequences=True)
    x = _x("float32")
    y = forward(x)
    backward = SimpleRNN(U, return_sequences=True, go_backwards=True)
    backward(x)
    backward.set_weights(forward.get_weights())
    np.testing.assert_allclose(backward(x[:, ::-1].copy()).data, y.data, atol=1e-6)


def test_states_chain_across_calls() -> None:
    """Running two halves with return_state / initial_state equals one full run."""
    layer = LSTM(U, return_sequences=True, return_state=True)
    x = _x("float32")
    full, h, c = layer(x)
    first, h1, c1 = layer(x[:, :2])
    second, h2, c2 = layer(x[:, 2:], initial_state=[h1, c1])
    np.testing.assert_allclose(np.concatenate([first.data, second.data], 1), full.data, atol=1e-6)
    np.testing.assert_allclose(h2.data, h.data, atol=1e-6)
    np.testing.assert_allclose(c2.data, c.data, atol=1e-6)


def test_weight_layouts_and_initialisation() -> None:
    x = _x("float32")
    lstm, gru, gru_before, rnn = LSTM(U), GRU(U), GRU(U, reset_after=False), SimpleRNN(U)
    for layer in (lstm, gru, gru_before, rnn):
        layer(x)
    assert [w.shape for w in lstm.weights] == [(F, 4 * U), (U, 4 * U), (4 * U,)]
    assert [w.shape for w in gru.weights] == [(F, 3 * U), (U, 3 * U), (2, 3 * U)]
    assert [w.shape for w in gru_before.weights] == [(F, 3 * U), (U, 3 * U), (3 * U,)]
    assert [w.shape for w in rnn.weights] == [(F, U), (U, U), (U,)]
    assert [w.path for w in lstm.weights] == [
        f"{lstm.name}/lstm_cell/kernel",
        f"{lstm.name}/lstm_cell/recurrent_kernel",
        f"{lstm.name}/lstm_cell/bias",
    ]
    bias = lstm.weights[2].data
    np.testing.assert_array_equal(bias[U : 2 * U], 1)  # unit_forget_bias
    np.testing.assert_array_equal(np.delete(bias, np.s_[U : 2 * U]), 0)
    rk = rnn.weights[1].data
    np.testing.assert_allclose(rk.T @ rk, np.eye(U), atol=1e-5)  # orthogonal
    assert LSTM(U, unit_forget_bias=False)(x) is not None
    assert lstm.units == U and lstm.dropout == 0.0 and gru.reset_after


def test_dropout_only_in_training_and_seeded() -> None:
    x = _x("float32")
    layer = LSTM(U, dropout=0.5, recurrent_dropout=0.3, seed=7, return_sequences=True)
    inference = layer(x).data
    np.testing.assert_array_equal(layer(x, training=False).data, inference)
    trained = layer(x, training=True).data
    assert not np.allclose(trained, inference)
    # The same seed draws the same masks; they are forgotten after each sequence.
    first = LSTM(U, dropout=0.5, recurrent_dropout=0.3, seed=11, return_sequences=True)
    second = LSTM(U, dropout=0.5, recurrent_dropout=0.3, seed=11, return_sequences=True)
    first(x)
    second(x)
    second.set_weights(first.get_weights())
    np.testing.assert_array_equal(first(x, training=True).data, second(x, training=True).data)
    assert first.cell._masks == {}


def test_regularizer_losses() -> None:
    layer = GRU(U, kernel_regularizer="l2", recurrent_regularizer="l1", activity_regularizer="l2")
    layer(_x("float32"))
    assert len(layer.losses) == 3


@pytest.mark.parametrize(
    "layer",
    [
        SimpleRNN(U, activation="relu", return_sequences=True, dropout=0.1, seed=3),
        LSTM(U, return_state=True, go_backwards=True, unit_forget_bias=False),
        GRU(U, reset_after=False, recurrent_activation="hard_sigmoid", use_bias=False),
        RNN(LSTMCell(U), return_sequences=True),
        RNN(GRUCell(U, reset_after=False), return_state=True),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer: object) -> None:
    x = _x("float32")
    expected = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    got = clone(x)
    for a, b in zip(_flat(got).data, _flat(expected).data):
        assert a == b
    assert clone.get_config() == config


def test_rnn_with_cells_matches_the_layers() -> None:
    x = _x("float32")
    for layer_cls, cell_cls in ((SimpleRNN, SimpleRNNCell), (LSTM, LSTMCell), (GRU, GRUCell)):
        layer, rnn = layer_cls(U, return_sequences=True), RNN(cell_cls(U), return_sequences=True)
        layer(x)
        rnn(x)
        rnn.set_weights(layer.get_weights())
        np.testing.assert_allclose(rnn(x).data, layer(x).data, atol=1e-6)


def test_custom_cell_in_rnn() -> None:
    from dendrite.layers.base import Layer

    class MinimalRNNCell(Layer):
        def __init__(self, units: int, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape: tuple) -> None:
            self.kernel = self.add_weight((input_shape[-1], self.units), name="kernel")
            self.recurrent_kernel = self.add_weight((self.units, self.units), name="rk")

        def call(self, inputs: Tensor, states: list) -> tuple:
            output = ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
            return output, [output]

    layer = RNN(MinimalRNNCell(3, dtype="float64"), return_sequences=True, dtype="float64")
    x = _x()
    assert layer(x).shape == (B, T, 3)
    check_gradients(lambda x: layer(x, mask=_mask()), layer, [x])


def test_shapes_and_symbolic_call() -> None:
    from dendrite.layers.input_layer import Input
    from dendrite.models.model import Model

    layer = LSTM(U, return_sequences=True, return_state=True)
    assert layer.compute_output_shape((None, 7, F)) == [(None, 7, U), (None, U), (None, U)]
    inputs = Input(shape=(None, F))
    seq, h, c = layer(inputs)
    assert seq.shape == (None, None, U) and h.shape == (None, U)
    model = Model(inputs, GRU(2)(seq))
    assert model.predict(_x("float32"), verbose=0).shape == (B, 2)


def test_errors_name_the_layer_and_the_shapes() -> None:
    layer = LSTM(U, name="encoder")
    with pytest.raises(ValueError, match=r"'encoder'.*expected ndim=3, found ndim=2.*\(3, 4\)"):
        layer(np.zeros((3, 4), dtype="float32"))
    layer(_x("float32"))
    with pytest.raises(ValueError, match=r"'encoder'.*axis -1.*value 4.*\(3, 5, 7\)"):
        layer(np.zeros((3, 5, 7), dtype="float32"))
    with pytest.raises(ValueError, match=r"'encoder' expected 2 initial state.*\(3, 6\)"):
        layer(_x("float32"), initial_state=[np.zeros((3, 6), dtype="float32")])
    with pytest.raises(ValueError, match=r"'encoder'.*mask.*\(3, 5\).*\(3, 4\)"):
        layer(_x("float32"), mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="units"):
        GRU(0)


def test_ten_thousand_steps() -> None:
    layer = LSTM(4, return_sequences=True)
    x = Tensor(
        np.random.default_rng(0).standard_normal((2, 10_000, 3)).astype("float32"),
        requires_grad=True,
    )
    out = layer(x)
    out.backward(np.ones(out.shape, dtype="float32"))
    assert x.grad.shape == x.shape and np.isfinite(x.grad).all()


def test_trains_in_a_sequential_model() -> None:
    from dendrite.layers.core import Dense
    from dendrite.models.sequential import Sequential

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 2)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int64")
    model = Sequential([GRU(8), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]


def test_encoder_decoder_with_initial_state_in_a_functional_model() -> None:
    from dendrite.layers.core import Dense
    from dendrite.layers.input_layer import Input
    from dendrite.models.model import Model

    encoder_inputs, decoder_inputs = Input(shape=(None, 4)), Input(shape=(None, 3))
    _, h, c = LSTM(8, return_state=True)(encoder_inputs)
    decoded = LSTM(8, return_sequences=True)(decoder_inputs, initial_state=[h, c])
    model = Model([encoder_inputs, decoder_inputs], Dense(3, activation="softmax")(decoded))
    rng = np.random.default_rng(0)
    x = [rng.random((5, 6, 4)).astype("float32"), rng.random((5, 7, 3)).astype("float32")]
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (5, 7))]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(x, y))
    clone = Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_embedding_mask_zero_feeds_the_recurrent_mask() -> None:
    from dendrite.layers.embedding import Embedding

    ids = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])
    embedded = Embedding(10, 4, mask_zero=True)(ids)
    layer = SimpleRNN(U, return_state=True)
    last, state = layer(embedded)
    alone, _ = layer(embedded.data[:1, :3])
    np.testing.assert_allclose(last.data[0], alone.data[0], atol=1e-6)
