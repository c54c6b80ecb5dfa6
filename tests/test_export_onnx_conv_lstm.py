"""ONNX export of ConvLSTM1D/2D/3D against ``predict`` (float32, within 1e-5 relative to the
output's scale), the steps unrolled: return_sequences on and off, return_state,
go_backwards, strides, dilation, 'valid' and 'same' padding, channels_first, non-default
activations (softmax, along the channels), no bias, a single step, initial states as graph
inputs, a (batch, steps) mask given to the call, stacked layers in a model; and the
refusals (an unknown sequence length, a stateful layer, a custom activation, constant
initial states)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite import ops  # noqa: E402
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
        assert g.shape == e.shape
        assert max_relative_difference(g, e) <= TOLERANCE


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


CF = {"data_format": "channels_first"}
# (layer class, kwargs, one sample's shape (time, ...)).
CASES = [
    (L.ConvLSTM1D, {}, (4, 7, 2)),
    (L.ConvLSTM1D, {"padding": "same", "return_sequences": True}, (4, 7, 2)),
    (L.ConvLSTM1D, {"strides": 2, "go_backwards": True, "return_state": True}, (4, 9, 3)),
    (L.ConvLSTM1D, {"return_sequences": True, "return_state": True}, (1, 6, 2)),  # one step
    (L.ConvLSTM1D, {"dilation_rate": 2, "return_sequences": True, **CF}, (3, 2, 9)),
    (
        L.ConvLSTM2D,
        {"padding": "same", "return_sequences": True, "return_state": True},
        (4, 6, 5, 2),
    ),
    (L.ConvLSTM2D, {"strides": (2, 1), "return_sequences": True}, (3, 7, 6, 2)),
    (
        L.ConvLSTM2D,
        {"dilation_rate": 2, "go_backwards": True, "return_sequences": True},
        (4, 7, 7, 2),
    ),
    (L.ConvLSTM2D, {"padding": "same", "go_backwards": True, "return_state": True}, (3, 5, 4, 3)),
    (L.ConvLSTM2D, {"return_sequences": True, **CF}, (3, 2, 5, 6)),
    (L.ConvLSTM2D, {"strides": 2, "padding": "same", "return_state": True, **CF}, (3, 3, 7, 6)),
    (
        L.ConvLSTM2D,
        {"activation": "relu", "recurrent_activation": "hard_sigmoid", "use_bias": False},
        (3, 5, 5, 2),
    ),
    (L.ConvLSTM2D, {"activation": "gelu", "return_sequences": True}, (3, 5, 5, 2)),
    (L.ConvLSTM2D, {"activation": "softmax", "return_sequences": True}, (3, 5, 5, 2)),
    (L.ConvLSTM2D, {"recurrent_activation": "softmax", "return_state": True, **CF}, (3, 2, 5, 5)),
    (L.ConvLSTM3D, {"return_sequences": True}, (2, 3, 4, 3, 1)),
    (
        L.ConvLSTM3D,
        {"padding": "same", "go_backwards": True, "return_state": True},
        (3, 3, 3, 4, 2),
    ),
    (L.ConvLSTM3D, {"strides": (1, 2, 1), "return_sequences": True, **CF}, (2, 2, 3, 5, 4)),
]


def _case_id(case) -> str:
    cls, kwargs, shape = case
    return f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}-{shape}"


@pytest.mark.parametrize("cls, kwargs, shape", CASES, ids=[_case_id(c) for c in CASES])
def test_conv_lstm_options(cls, kwargs, shape, tmp_path) -> None:
    x = K.Input(shape=shape)
    out = cls(3, 3 if cls is not L.ConvLSTM3D else 2, **kwargs)(x)
    model = K.Model(x, list(out) if isinstance(out, (list, tuple)) else out)
    path = tmp_path / "clstm.onnx"
    model.export(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    data = _data((5, *shape))
    _check(model, data[:1], path)
    _check(model, data, path)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_initial_states_are_inputs(data_format, tmp_path) -> None:
    shape = (4, 6, 5, 2) if data_format == "channels_last" else (4, 2, 6, 5)
    state_shape = (6, 5, 3) if data_format == "channels_last" else (3, 6, 5)
    x = K.Input(shape=shape, name="x")
    h, c = K.Input(shape=state_shape, name="h"), K.Input(shape=state_shape, name="c")
    layer = L.ConvLSTM2D(3, 3, padding="same", data_format=data_format, return_sequences=True)
    model = K.Model([x, h, c], layer(x, initial_state=[h, c]))
    model.export(tmp_path / "init.onnx")
    states = [_data((5, *state_shape), seed=k) for k in (1, 2)]
    _check(model, [_data((5, *shape)), *states], tmp_path / "init.onnx")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"return_sequences": True, "return_state": True},
        {"return_sequences": True, "zero_output_for_mask": True},
        {"go_backwards": True, "return_sequences": True, "return_state": True},
        {},
    ],
    ids=["sequences-states", "zero-output", "backwards", "last"],
)
def test_mask_given_to_the_call(kwargs, tmp_path) -> None:
    x = K.Input(shape=(5, 6, 2), name="x")
    m = K.Input(shape=(5,), dtype="bool", name="m")
    out = L.ConvLSTM1D(3, 3, padding="same", **kwargs)(x, mask=m)
    model = K.Model([x, m], list(out) if isinstance(out, (list, tuple)) else out)
    model.export(tmp_path / "mask.onnx")
    mask = np.ones((5, 5), bool)
    mask[0, 3:] = False  # padding at the end
    mask[1, 1:3] = False  # a gap in the middle
    mask[2, :2] = False  # padding at the start
    mask[3] = False  # nothing at all
    _check(model, [_data((5, 5, 6, 2)), mask], tmp_path / "mask.onnx")


def test_stacked_conv_lstms_in_a_model(tmp_path) -> None:
    model = K.Sequential(
        [
            K.Input(shape=(4, 8, 8, 1)),
            L.ConvLSTM2D(4, 3, padding="same", return_sequences=True),
            L.BatchNormalization(),
            L.ConvLSTM2D(2, 3, strides=2),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.export(tmp_path / "stack.onnx")
    _check(model, _data((3, 4, 8, 8, 1)), tmp_path / "stack.onnx")


def test_unknown_sequence_length_is_refused(tmp_path) -> None:
    x = K.Input(shape=(None, 6, 2))
    model = K.Model(x, L.ConvLSTM1D(2, 3)(x))
    with pytest.raises(NotExportableError, match=r"\(ConvLSTM1D\).*sequence length"):
        model.export(tmp_path / "dyn.onnx")
    assert not (tmp_path / "dyn.onnx").exists()


def test_stateful_layer_is_refused(tmp_path) -> None:
    model = K.Sequential([K.Input(batch_shape=(2, 3, 5, 5, 2)), L.ConvLSTM2D(2, 3, stateful=True)])
    with pytest.raises(NotExportableError, match=r"\(ConvLSTM2D\).*stateful"):
        model.export(tmp_path / "s.onnx")
    assert not (tmp_path / "s.onnx").exists()


def test_custom_activation_is_refused(tmp_path) -> None:
    x = K.Input(shape=(3, 6, 2))
    model = K.Model(x, L.ConvLSTM1D(2, 3, activation=lambda v: ops.tanh(v) * 2.0)(x))
    with pytest.raises(NotExportableError, match=r"\(ConvLSTM1D\).*built-in activations"):
        model.export(tmp_path / "c.onnx")
