"""ONNX export of the recurrent layers against ``predict`` (float32, within 1e-5 relative to
the output's scale): SimpleRNN, LSTM and GRU with return_sequences, return_state,
go_backwards, reset_after, non-default activations, initial states as inputs, Bidirectional
in every merge mode, masks from Masking and Embedding(mask_zero) (padding at the end and in
the middle, zero_output_for_mask), and a dynamic sequence length run at two lengths."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export import NotExportableError  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402

TOLERANCE = 1e-5
L = K.layers


def _check(model, data, path) -> None:
    expected = model.predict(data, verbose=0)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = run_onnx(path, data)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert max_relative_difference(g, e) <= TOLERANCE


def _sequences(batch=7, steps=5, features=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


CASES = [
    (L.SimpleRNN, {"return_sequences": True}),
    (L.SimpleRNN, {"go_backwards": True, "activation": "relu"}),
    (L.SimpleRNN, {"return_sequences": True, "go_backwards": True, "return_state": True}),
    (L.LSTM, {}),
    (L.LSTM, {"return_sequences": True, "return_state": True}),
    (L.LSTM, {"return_sequences": True, "go_backwards": True}),
    (L.LSTM, {"recurrent_activation": "hard_sigmoid", "use_bias": False}),
    (L.LSTM, {"activation": "gelu"}),  # no ONNX LSTM activation: a Scan
    (L.GRU, {}),
    (L.GRU, {"reset_after": False, "return_sequences": True}),
    (L.GRU, {"go_backwards": True, "return_state": True}),
    (L.GRU, {"activation": "silu", "return_sequences": True}),  # a Scan
]


@pytest.mark.parametrize("cls, kwargs", CASES, ids=[f"{c.__name__}-{k}" for c, k in CASES])
def test_recurrent_options(cls, kwargs, tmp_path) -> None:
    x = K.Input(shape=(5, 3))
    out = cls(4, **kwargs)(x)
    model = K.Model(x, out)
    path = tmp_path / "rnn.onnx"
    model.export(path)
    data = _sequences()
    _check(model, data[:1], path)
    _check(model, data, path)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional(merge_mode, tmp_path) -> None:
    x = K.Input(shape=(5, 3))
    out = L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode=merge_mode)(x)
    model = K.Model(x, out)
    model.export(tmp_path / "bi.onnx")
    _check(model, _sequences(), tmp_path / "bi.onnx")


def test_bidirectional_lstm_with_states(tmp_path) -> None:
    x = K.Input(shape=(5, 3))
    outs = L.Bidirectional(L.LSTM(4, return_state=True))(x)
    model = K.Model(x, list(outs))
    model.export(tmp_path / "bi.onnx")
    _check(model, _sequences(), tmp_path / "bi.onnx")


def test_initial_states_are_inputs(tmp_path) -> None:
    x = K.Input(shape=(5, 3), name="x")
    h, c = K.Input(shape=(4,), name="h"), K.Input(shape=(4,), name="c")
    out = L.LSTM(4, return_sequences=True)(x, initial_state=[h, c])
    model = K.Model([x, h, c], out)
    model.export(tmp_path / "init.onnx")
    rng = np.random.default_rng(1)
    states = [rng.standard_normal((7, 4)).astype("float32") for _ in range(2)]
    _check(model, [_sequences(), *states], tmp_path / "init.onnx")


def _masked(data):
    data = data.copy()
    data[0, 3:] = 0.0  # padding at the end
    data[1, 1:3] = 0.0  # a gap in the middle
    data[2, :2] = 0.0  # padding at the start
    data[3] = 0.0  # nothing at all
    return data


@pytest.mark.parametrize(
    "layer",
    [
        lambda: L.LSTM(4),
        lambda: L.GRU(4, return_sequences=True),
        lambda: L.SimpleRNN(4, return_sequences=True, zero_output_for_mask=True),
        lambda: L.GRU(4, go_backwards=True, return_state=True),
        lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)),
    ],
    ids=["lstm", "gru-seq", "rnn-zero-output", "gru-backwards-state", "bidirectional"],
)
def test_masking_layer(layer, tmp_path) -> None:
    x = K.Input(shape=(5, 3))
    out = layer()(L.Masking(0.0)(x))
    model = K.Model(x, list(out) if isinstance(out, (list, tuple)) else out)
    model.export(tmp_path / "mask.onnx")
    _check(model, _masked(_sequences()), tmp_path / "mask.onnx")


def test_embedding_mask_zero_through_lstm_and_pooling(tmp_path) -> None:
    ids = K.Input(shape=(None,), dtype="int64", name="ids")
    h = L.Embedding(20, 6, mask_zero=True)(ids)
    seq = L.LSTM(5, return_sequences=True)(h)
    pooled = L.GlobalAveragePooling1D()(seq)
    model = K.Model(ids, L.Dense(2, activation="softmax")(pooled))
    model.export(tmp_path / "emb.onnx")
    proto = onnx.load(str(tmp_path / "emb.onnx"))
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param  # length varies
    rng = np.random.default_rng(2)
    for steps in (4, 9):
        tokens = rng.integers(1, 20, size=(7, steps)).astype("int64")
        tokens[0, 2:] = 0
        tokens[1, :1] = 0
        _check(model, tokens, tmp_path / "emb.onnx")


def test_dynamic_sequence_length(tmp_path) -> None:
    x = K.Input(shape=(None, 3))
    model = K.Model(x, L.GRU(4, return_sequences=True)(x))
    model.export(tmp_path / "dyn.onnx")
    for steps in (2, 11):
        _check(model, _sequences(steps=steps), tmp_path / "dyn.onnx")


def test_time_distributed(tmp_path) -> None:
    x = K.Input(shape=(5, 3))
    model = K.Model(x, L.TimeDistributed(L.Dense(2, activation="tanh"))(x))
    model.export(tmp_path / "td.onnx")
    _check(model, _sequences(), tmp_path / "td.onnx")


def test_stateful_layer_is_refused_before_writing(tmp_path) -> None:
    model = K.Sequential([K.Input(batch_shape=(2, 5, 3)), L.LSTM(4, stateful=True)])
    with pytest.raises(NotExportableError, match="stateful"):
        model.export(tmp_path / "s.onnx")
    assert not (tmp_path / "s.onnx").exists()
