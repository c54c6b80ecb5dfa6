"""Stateful recurrent layers (stateful=True): a batch continues the sequences of the
previous batch, sample by sample, until reset_states(), as in Keras."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from dendrite.layers.rnn_cells import SimpleRNNCell

RNG = np.random.default_rng(9)


def _pair(make):
    """A stateful layer and a plain one with the same weights."""
    tf.utils.set_random_seed(4)
    stateful = make(stateful=True)
    plain = make(stateful=False)
    x = RNG.standard_normal((3, 8, 5)).astype("float32")
    stateful(x[:, :1])
    plain(x[:, :1])
    plain.set_weights(stateful.get_weights())
    stateful.reset_states()
    return stateful, plain, x


MAKERS = {
    "lstm": lambda **kw: LSTM(4, return_sequences=True, **kw),
    "gru": lambda **kw: GRU(4, return_sequences=True, **kw),
    "simple_rnn": lambda **kw: SimpleRNN(4, return_sequences=True, **kw),
    "rnn_cell": lambda **kw: RNN(SimpleRNNCell(4), return_sequences=True, **kw),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_two_halves_continue_like_one_whole_sequence(name):
    stateful, plain, x = _pair(MAKERS[name])
    whole = plain(x).data
    first = stateful(x[:, :5]).data
    second = stateful(x[:, 5:]).data
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    assert len(stateful.states) == (2 if "lstm" in name else 1)


def test_reset_states_starts_again_from_zeros_and_can_set_values():
    stateful, plain, x = _pair(MAKERS["lstm"])
    stateful(x)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x).data, plain(x).data, atol=1e-6)
    h = RNG.standard_normal((3, 4)).astype("float32")
    c = RNG.standard_normal((3, 4)).astype("float32")
    stateful.reset_states([h, c])
    expected = plain(x, initial_state=[h, c]).data
    np.testing.assert_allclose(stateful(x).data, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected 2 initial state\(s\)"):
        stateful.reset_states([h])


def test_batch_size_must_stay_fixed_until_reset():
    layer = LSTM(3, stateful=True)
    layer(np.zeros((4, 2, 2), "float32"))
    with pytest.raises(ValueError, match=r"states hold a batch of 4 sequences, but it received"):
        layer(np.zeros((3, 2, 2), "float32"))
    layer.reset_states()
    assert layer(np.zeros((3, 2, 2), "float32")).shape == (3, 3)


def test_a_non_stateful_layer_has_no_states_to_reset():
    with pytest.raises(AttributeError, match="is not stateful"):
        LSTM(2).reset_states()


def test_fit_carries_states_across_batches_and_model_reset_states_clears_them():
    tf.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4, 3), batch_size=8),
            LSTM(5, stateful=True),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    x = RNG.standard_normal((32, 4, 3)).astype("float32")
    y = RNG.standard_normal((32, 1)).astype("float32")
    model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
    layer = model.layers[0]
    assert layer.states is not None and np.abs(layer.states[0]).sum() > 0
    model.reset_states()
    assert layer.states is None
    config = layer.get_config()
    assert config["stateful"] is True and LSTM.from_config(config).stateful
