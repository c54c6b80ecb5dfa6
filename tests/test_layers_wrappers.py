"""Bidirectional and TimeDistributed: values against their definitions, masks, states,
gradients, configs and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_layers_recurrent import _flat, _mask, _x, check_gradients

from dendrite.core import Tensor
from dendrite.layers.core import Dense
from dendrite.layers.recurrent import GRU, LSTM, SimpleRNN
from dendrite.layers.wrappers import Bidirectional, TimeDistributed

B, T, F, U = 3, 5, 4, 6


def _halves(layer: Bidirectional, x: np.ndarray, **kwargs: object) -> tuple:
    forward = layer.forward_layer(x, **kwargs)
    backward = layer.backward_layer(x, **kwargs)
    return forward, backward


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_merge_modes(merge_mode: str | None) -> None:
    layer = Bidirectional(LSTM(U, return_sequences=True), merge_mode=merge_mode)
    x = _x("float32")
    out = layer(x)
    y, y_rev = _halves(layer, x)
    y, y_rev = y.data, y_rev.data[:, ::-1]
    expected = {
        "concat": lambda: np.concatenate([y, y_rev], -1),
        "sum": lambda: y + y_rev,
        "ave": lambda: (y + y_rev) / 2,
        "mul": lambda: y * y_rev,
    }
    if merge_mode is None:
        np.testing.assert_allclose(out[0].data, y)
        np.testing.assert_allclose(out[1].data, y_rev)
    else:
        np.testing.assert_allclose(out.data, expected[merge_mode](), rtol=1e-6)
    assert layer.compute_output_shape((None, T, F)) == (
        [(None, T, U)] * 2
        if merge_mode is None
        else (None, T, 2 * U if merge_mode == "concat" else U)
    )


def test_backward_half_reads_the_reversed_sequence() -> None:
    layer = Bidirectional(SimpleRNN(U), merge_mode=None)
    x = _x("float32")
    forward, backward = layer(x)
    reference = SimpleRNN(U)
    reference(x)
    reference.set_weights(layer.backward_layer.get_weights())
    np.testing.assert_allclose(backward.data, reference(x[:, ::-1].copy()).data, atol=1e-6)
    assert layer.forward_layer.name.startswith("forward_")
    assert layer.backward_layer.name.startswith("backward_")
    assert len(layer.weights) == 6


def test_return_state_and_initial_state() -> None:
    layer = Bidirectional(LSTM(U, return_state=True))
    x = _x("float32")
    out, h_f, c_f, h_b, c_b = layer(x)
    assert out.shape == (B, 2 * U) and h_b.shape == (B, U)
    np.testing.assert_allclose(out.data[:, :U], h_f.data)
    np.testing.assert_allclose(out.data[:, U:], h_b.data)
    states = [np.full((B, U), v, dtype="float32") for v in (0.1, 0.2, 0.3, 0.4)]
    out2 = layer(x, initial_state=states)[0]
    y = layer.forward_layer(x, initial_state=states[:2])[0]
    np.testing.assert_allclose(out2.data[:, :U], y.data)
    assert layer.compute_output_shape((None, T, F)) == [(None, 2 * U)] + [(None, U)] * 4


def test_masked_sequences_are_zero() -> None:
    layer = Bidirectional(GRU(U, return_sequences=True))
    x, mask = _x("float32"), _mask()
    out = layer(x, mask=mask)
    np.testing.assert_array_equal(out.data[~mask], 0)
    np.testing.assert_array_equal(out._keras_mask, mask)
    assert layer.forward_layer.zero_output_for_mask


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_gradcheck_float64(merge_mode: str) -> None:
    layer = Bidirectional(GRU(U, return_sequences=True, dtype="float64"), merge_mode=merge_mode)
    x = _x()
    layer(x)
    check_gradients(lambda x: layer(x, mask=_mask()), layer, [x])


def test_bidirectional_config_round_trip_and_custom_backward_layer() -> None:
    backward = LSTM(U, go_backwards=True, activation="relu", return_sequences=True)
    layer = Bidirectional(LSTM(U, return_sequences=True), merge_mode="sum", backward_layer=backward)
    x = _x("float32")
    expected = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = Bidirectional.from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).data, expected.data)
    assert clone.backward_layer.get_config()["activation"] == "relu"


def test_bidirectional_errors() -> None:
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(U), backward_layer=LSTM(U))
    with pytest.raises(ValueError, match="return_sequences"):
        Bidirectional(LSTM(U), backward_layer=LSTM(U, go_backwards=True, return_sequences=True))
    with pytest.raises(ValueError, match="merge mode"):
        Bidirectional(LSTM(U), merge_mode="max")
    layer = Bidirectional(LSTM(U), name="bi")
    with pytest.raises(ValueError, match=r"'bi'.*\(3, 4\)"):
        layer(np.zeros((3, 4), dtype="float32"))


def test_time_distributed_dense_equals_per_step() -> None:
    layer = TimeDistributed(Dense(7, activation="relu"))
    x = _x("float32")
    out = layer(x)
    assert out.shape == (B, T, 7)
    for t in range(T):
        np.testing.assert_allclose(out.data[:, t], layer.layer(x[:, t]).data, rtol=1e-6)
    assert layer.compute_output_shape((None, T, F)) == (None, T, 7)
    assert [w.shape for w in layer.weights] == [(F, 7), (7,)]


def test_time_distributed_of_a_recurrent_layer_and_mask_passthrough() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 5, F)).astype("float32")
    layer = TimeDistributed(LSTM(U))
    out = layer(x)
    assert out.shape == (2, 3, U)
    np.testing.assert_allclose(out.data[:, 1], layer.layer(x[:, 1]).data, atol=1e-6)
    mask = np.ones((2, 3), dtype=bool)
    assert layer(Tensor(x), mask=mask)._keras_mask is mask


def test_time_distributed_gradcheck_and_config() -> None:
    layer = TimeDistributed(Dense(3, dtype="float64"), dtype="float64")
    x = _x()
    layer(x)
    check_gradients(lambda x: layer(x), layer, [x])
    config = json.loads(json.dumps(layer.get_config()))
    clone = TimeDistributed.from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(_flat(clone(x)).data, _flat(layer(x)).data)


def test_time_distributed_errors() -> None:
    layer = TimeDistributed(Dense(3), name="td")
    with pytest.raises(ValueError, match=r"'td'.*at least 3 dimensions.*\(2, 4\)"):
        layer(np.zeros((2, 4), dtype="float32"))
    layer(_x("float32"))
    with pytest.raises(ValueError, match=r"'td'.*\(3, 5, 9\)"):
        layer(np.zeros((3, 5, 9), dtype="float32"))
    with pytest.raises(ValueError, match="`Layer` instance"):
        TimeDistributed("dense")


def test_sequential_ending_in_two_outputs_is_a_two_output_model(tmp_path) -> None:
    """Bidirectional(merge_mode=None) last in a Sequential: the model has both halves as
    outputs (as in Keras), predicts, trains against two targets and saves both ways."""
    import dendrite as tf

    keras = tf.keras
    keras.utils.set_random_seed(0)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode=None)
    model = keras.Sequential([keras.Input((5, 3)), layer])
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype("float32")
    assert len(model.outputs) == 2
    assert model.output_shape == [(None, 5, 4), (None, 5, 4)]
    forward, backward = model.predict(x, verbose=0)
    expected = layer(x)
    np.testing.assert_allclose(forward, np.asarray(expected[0]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(backward, np.asarray(expected[1]), rtol=1e-6, atol=1e-6)
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    history = model.fit(x, [np.zeros_like(forward), np.ones_like(backward)], epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    again = model.predict(x, verbose=0)
    for extension in ("keras", "dendrite"):
        path = tmp_path / f"m.{extension}"
        model.save(path)
        loaded = keras.models.load_model(path)
        for a, b in zip(loaded.predict(x, verbose=0), again):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
