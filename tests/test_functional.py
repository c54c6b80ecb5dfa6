"""The functional API: ``Model(inputs, outputs)``.

Graphs with several inputs and outputs, residual branches, shared layers and nested models
are built, trained, replayed, summarised and rebuilt from their config. Merges use a small
local layer so these tests do not depend on ``layers/merging.py``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import dendrite
from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.core import Activation, Dense, Dropout
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.symbolic import KerasTensor
from dendrite.models.functional import Functional
from dendrite.models.model import Model
from dendrite.models.sequential import Sequential
from dendrite.testing.gradcheck import gradcheck


class AddPair(Layer):
    """y = x_0 + x_1 (a stand-in for layers.Add)."""

    def call(self, inputs: list) -> Tensor:
        return ops.add(inputs[0], inputs[1])


class Scale(Layer):
    """y = x * factor, where ``factor`` may be a tensor passed by keyword."""

    def call(self, inputs: Tensor, factor: Tensor | None = None) -> Tensor:
        return inputs if factor is None else ops.multiply(inputs, factor)


CUSTOM = {"AddPair": AddPair, "Scale": Scale}


def two_in_two_out(seed: int = 0) -> Model:
    """Inputs a (4,) and b (3,); a residual block with a shared Dense; outputs reg and cls."""
    np.random.seed(seed)
    a = Input(shape=(4,), name="a")
    b = Input(shape=(3,), name="b")
    h = AddPair(name="merge")([Dense(8, activation="tanh", name="ha")(a), Dense(8, name="hb")(b)])
    block = Dense(8, activation="tanh", name="block")
    r = AddPair(name="residual")([block(h), h])
    reg = Dense(1, name="reg")(block(r))
    cls = Dense(3, activation="softmax", name="cls")(r)
    return Model([a, b], [reg, cls], name="two_heads")


def data(n: int = 96, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal((n, 4)).astype("float32")
    xb = rng.standard_normal((n, 3)).astype("float32")
    y_reg = (0.5 * xa[:, :1] - xb[:, 1:2]).astype("float32")
    y_cls = (xa[:, 0] + xb[:, 0] > 0).astype("int64") + (xb[:, 2] > 1).astype("int64")
    return xa, xb, y_reg, y_cls


# --- building -------------------------------------------------------------------------------
def test_model_call_dispatches_to_functional() -> None:
    model = two_in_two_out()
    assert isinstance(model, Functional) and isinstance(model, Model)
    assert model.built
    assert model.output_names == ["reg", "cls"]
    assert model.input_names == ["a", "b"]
    assert model.input_shape == [(None, 4), (None, 3)]
    assert model.output_shape == [(None, 1), (None, 3)]
    assert [x.name for x in model.inputs] == ["a", "b"]
    assert all(isinstance(x, KerasTensor) for x in model.outputs)


def test_layers_in_keras_order_with_input_layers() -> None:
    model = two_in_two_out()
    names = [layer.name for layer in model.layers]
    assert names == ["a", "b", "ha", "hb", "merge", "block", "residual", "reg", "cls"]
    assert isinstance(model.layers[0], InputLayer)
    assert model.get_layer("block") is model.layers[5]
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")


def test_shared_layer_weights_are_shared() -> None:
    model = two_in_two_out()
    block = model.get_layer("block")
    assert len(block._inbound_nodes) == 2
    # Each weight appears once: ha, hb, block, reg, cls have a kernel and a bias each.
    assert len(model.trainable_weights) == 10
    assert len({id(v) for v in model.weights}) == 10
    xa, xb, y_reg, y_cls = data(8)
    out_reg, _ = model.predict([xa, xb], verbose=0)
    # Recompute by hand with the block's one kernel used at both places.
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    h = np.tanh(xa @ w["ha"][0] + w["ha"][1]) + (xb @ w["hb"][0] + w["hb"][1])
    r = np.tanh(h @ w["block"][0] + w["block"][1]) + h
    expected = np.tanh(r @ w["block"][0] + w["block"][1]) @ w["reg"][0] + w["reg"][1]
    np.testing.assert_allclose(out_reg, expected, rtol=1e-5, atol=1e-5)
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"])
    before = block.kernel.data.copy()
    model.train_on_batch([xa, xb], [y_reg, y_cls])
    assert not np.array_equal(before, block.kernel.data)


def test_gradients_through_the_graph_float64() -> None:
    a = Input(shape=(4,), dtype="float64")
    b = Input(shape=(3,), dtype="float64")
    shared = Dense(4, activation="tanh", dtype="float64")
    h = AddPair(dtype="float64")([shared(a), Dense(4, dtype="float64")(b)])
    out = Dense(2, dtype="float64")(shared(h))
    model = Model([a, b], out)
    rng = np.random.default_rng(1)
    gradcheck(lambda x, y: model([x, y]), rng.standard_normal((5, 4)), rng.standard_normal((5, 3)))


def test_deep_chain_needs_no_recursion() -> None:
    depth = sys.getrecursionlimit() + 200
    x = Input(shape=(2,))
    y = x
    for _ in range(depth):
        y = Activation("linear")(y)
    model = Model(x, y)
    assert len(model.layers) == depth + 1
    np.testing.assert_array_equal(model(np.ones((1, 2), "float32")).data, np.ones((1, 2)))


# --- training -------------------------------------------------------------------------------
def test_two_inputs_residual_two_outputs_trains() -> None:
    dendrite.utils.set_random_seed(0)
    model = two_in_two_out()
    model.compile(
        optimizer=dendrite.optimizers.Adam(0.01),
        loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
        loss_weights={"reg": 1.0, "cls": 0.5},
        metrics={"cls": ["accuracy"]},
    )
    xa, xb, y_reg, y_cls = data()
    history = model.fit(
        {"a": xa, "b": xb}, {"reg": y_reg, "cls": y_cls}, epochs=8, batch_size=16, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert "cls_accuracy" in history.history
    reg, cls = model.predict([xa, xb], verbose=0)
    assert reg.shape == (96, 1) and cls.shape == (96, 3)
    result = model.evaluate([xa, xb], [y_reg, y_cls], verbose=0, return_dict=True)
    assert set(result) >= {"loss", "cls_accuracy"}


def test_history_has_per_output_losses() -> None:
    model = two_in_two_out()
    model.compile("adam", {"reg": "mse", "cls": "sparse_categorical_crossentropy"})
    xa, xb, y_reg, y_cls = data(32)
    history = model.fit([xa, xb], [y_reg, y_cls], epochs=2, verbose=0)
    assert {"loss", "reg_loss", "cls_loss"} <= set(history.history)
    logs = history.history
    total = logs["reg_loss"][-1] + logs["cls_loss"][-1]
    assert abs(total - logs["loss"][-1]) < 1e-3 * max(1.0, abs(total))


def test_dict_outputs_name_the_heads() -> None:
    x = Input(shape=(3,), name="x")
    h = Dense(6, activation="relu")(x)
    model = Model(x, {"mean": Dense(1)(h), "label": Dense(2, activation="softmax")(h)})
    assert model.output_names == ["label", "mean"]  # sorted, as Keras 3
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((40, 3)).astype("float32")
    ys = {"mean": xs[:, :1], "label": (xs[:, 1] > 0).astype("int64")}
    model.compile("adam", {"mean": "mse", "label": "sparse_categorical_crossentropy"})
    history = model.fit(xs, ys, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    out = model.predict(xs, verbose=0)
    assert set(out) == {"mean", "label"} and out["label"].shape == (40, 2)


def test_fit_with_list_and_single_inputs() -> None:
    x = Input(shape=(2,))
    model = Model(x, Dense(1)(x))
    model.compile("sgd", "mse")
    xs = np.random.default_rng(3).standard_normal((16, 2)).astype("float32")
    model.fit(xs, xs[:, :1], epochs=1, verbose=0)
    model.fit([xs], xs[:, :1], epochs=1, verbose=0)
    assert model.predict(xs, verbose=0).shape == (16, 1)


# --- inputs at call time --------------------------------------------------------------------
def test_inputs_as_list_dict_and_tensor_agree() -> None:
    model = two_in_two_out()
    xa, xb, _, _ = data(5)
    by_list = model([xa, xb])
    by_dict = model({"b": xb, "a": xa})
    by_tensor = model((Tensor(xa), Tensor(xb)))
    for i in range(2):
        np.testing.assert_array_equal(by_list[i].data, by_dict[i].data)
        np.testing.assert_array_equal(by_list[i].data, by_tensor[i].data)


def test_wrong_number_of_inputs_is_a_clear_error() -> None:
    model = two_in_two_out()
    xa, xb, _, _ = data(5)
    with pytest.raises(ValueError, match=r"expects 2 input\(s\) \['a', 'b'\].*received 1"):
        model([xa])
    with pytest.raises(ValueError, match=r"missing inputs \['b'\]"):
        model({"a": xa})
    with pytest.raises(ValueError, match="expects 2 input"):
        model([xa, xb, xb])


def test_input_shape_mismatch_raises_the_layers_input_spec_error() -> None:
    model = two_in_two_out()
    xa, xb, _, _ = data(5)
    with pytest.raises(ValueError, match="Input 0 of layer 'ha' is incompatible.*value 4"):
        model([xa[:, :3], xb])


def test_symbolic_call_checks_input_spec_with_none_batch() -> None:
    dense = Dense(3)
    dense(Input(shape=(5,)))
    with pytest.raises(ValueError, match=r"layer 'dense.*received input with shape \(None, 6\)"):
        dense(Input(shape=(6,)))


def test_input_dtype_is_applied() -> None:
    x = Input(shape=(2,), dtype="float64")
    model = Model(x, Dense(1, dtype="float64")(x))
    assert model(np.ones((3, 2), "float32")).dtype == np.float64


def test_training_flag_reaches_layers_and_fixed_flags_are_kept() -> None:
    x = Input(shape=(200,))
    free = Dropout(0.5, seed=1)(x)
    always = Dropout(0.5, seed=2)(x, training=True)  # Monte-Carlo dropout
    model = Model(x, [free, always])
    ones = np.ones((2, 200), "float32")
    free_eval, always_eval = model(ones, training=False)
    np.testing.assert_array_equal(free_eval.data, ones)
    assert (always_eval.data == 0).any()
    free_train, _ = model(ones, training=True)
    assert (free_train.data == 0).any()


def test_masks_propagate_through_the_replay() -> None:
    class MakeMask(Layer):
        _computes_mask = True

        def call(self, inputs: Tensor) -> Tensor:
            return inputs

        def compute_mask(self, inputs: Tensor, mask: object = None) -> np.ndarray:
            return inputs.data[..., 0] != 0

    class SeeMask(Layer):
        seen: list = []

        def call(self, inputs: Tensor, mask: object = None) -> Tensor:
            SeeMask.seen.append(mask)
            return inputs

    x = Input(shape=(3, 2))
    model = Model(x, SeeMask()(MakeMask()(x)))
    SeeMask.seen.clear()
    values = np.array([[[1, 1], [0, 1], [2, 2]]], "float32")
    model(values)
    np.testing.assert_array_equal(SeeMask.seen[-1], [[True, False, True]])


def test_keras_tensor_in_call_kwargs_is_a_dependency() -> None:
    x = Input(shape=(3,), name="x")
    f = Input(shape=(3,), name="f")
    y = Scale(name="scale")(Dense(3, name="d")(x), factor=f)
    model = Model([x, f], y)
    xs = np.ones((2, 3), "float32")
    zero = model([xs, np.zeros((2, 3), "float32")])
    np.testing.assert_array_equal(zero.data, np.zeros((2, 3)))
    clone = Model.from_config(json.loads(json.dumps(model.get_config())), CUSTOM)
    clone.set_weights(model.get_weights())
    factor = np.full((2, 3), 2.0, "float32")
    np.testing.assert_array_equal(clone([xs, factor]).data, model([xs, factor]).data)


def test_unused_input_is_accepted() -> None:
    a = Input(shape=(2,), name="used")
    b = Input(shape=(2,), name="unused")
    model = Model([a, b], Dense(1, name="out")(a))
    # Keras: depth 0 like the output layer, placed before it.
    assert [layer.name for layer in model.layers] == ["used", "unused", "out"]
    assert model([np.ones((1, 2)), np.ones((1, 2))]).shape == (1, 1)


# --- errors at construction -----------------------------------------------------------------
def test_graph_disconnected_names_the_missing_input() -> None:
    a = Input(shape=(2,), name="first")
    b = Input(shape=(2,), name="second")
    y = AddPair(name="join")([Dense(2, name="da")(a), b])
    with pytest.raises(ValueError, match="Graph disconnected") as error:
        Model(a, y)
    message = str(error.value)
    assert "'second'" in message and "'join'" in message
    assert "accessed without issue: ['da']" in message


def test_output_that_is_a_foreign_input_is_disconnected() -> None:
    a = Input(shape=(2,), name="mine")
    b = Input(shape=(2,), name="theirs")
    with pytest.raises(ValueError, match="Graph disconnected.*'theirs'"):
        Model(a, [Dense(1)(a), b])


def test_bad_constructor_arguments() -> None:
    a = Input(shape=(2,))
    with pytest.raises(ValueError, match="must be KerasTensors"):
        Model(a, np.ones(2))
    hidden = Dense(2)(a)
    with pytest.raises(ValueError, match="must come from keras.Input"):
        Model(hidden, Dense(1)(hidden))
    x = Input(shape=(2,))
    y = Dense(2, name="twin")(x)
    with pytest.raises(ValueError, match='The name "twin" is used 2 times'):
        Model(x, Dense(2, name="twin")(y))


# --- nesting --------------------------------------------------------------------------------
def nested_model() -> Model:
    inner_x = Input(shape=(4,), name="inner_x")
    inner = Model(inner_x, Dense(3, activation="tanh", name="inner_dense")(inner_x), name="inner")
    seq = Sequential([Dense(5, activation="relu", name="s1"), Dense(2, name="s2")], name="seq")
    x = Input(shape=(4,), name="x")
    features = inner(x)
    return Model(x, {"seq": seq(features), "skip": AddPair(name="skip")([features, inner(x)])})


def test_nested_models_run_train_and_share_weights() -> None:
    model = nested_model()
    assert [layer.name for layer in model.layers] == ["x", "inner", "seq", "skip"]
    inner = model.get_layer("inner")
    assert len(model.weights) == 2 + 4  # inner's Dense, then the Sequential's two Dense
    xs = np.random.default_rng(4).standard_normal((10, 4)).astype("float32")
    out = model.predict(xs, verbose=0)
    np.testing.assert_allclose(out["skip"], 2 * inner.predict(xs, verbose=0), rtol=1e-6)
    model.compile("adam", {"seq": "mse", "skip": "mse"})
    before = inner.get_weights()
    model.fit(xs, {"seq": xs[:, :2], "skip": xs[:, :3]}, epochs=2, verbose=0)
    assert all(not np.array_equal(b, a) for b, a in zip(before, inner.get_weights()))


def test_nested_config_round_trip() -> None:
    model = nested_model()
    xs = np.random.default_rng(5).standard_normal((6, 4)).astype("float32")
    config = json.loads(json.dumps(model.get_config()))
    clone = Model.from_config(config, custom_objects=CUSTOM)
    clone.set_weights(model.get_weights())
    expected, got = model.predict(xs, verbose=0), clone.predict(xs, verbose=0)
    for key in expected:
        np.testing.assert_array_equal(expected[key], got[key])


# --- config ---------------------------------------------------------------------------------
def test_config_round_trip_gives_identical_predictions() -> None:
    model = two_in_two_out()
    config = model.get_config()
    text = json.dumps(config)  # JSON, no pickling
    assert set(config) == {"name", "trainable", "layers", "input_layers", "output_layers"}
    assert config["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    assert config["output_layers"] == [["reg", 0, 0], ["cls", 0, 0]]
    block = next(entry for entry in config["layers"] if entry["name"] == "block")
    assert block["class_name"] == "Dense" and len(block["inbound_nodes"]) == 2
    second_call = block["inbound_nodes"][1]["args"][0]
    assert second_call["class_name"] == "__keras_tensor__"
    assert second_call["config"]["keras_history"] == ["residual", 0, 0]
    reg = next(entry for entry in config["layers"] if entry["name"] == "reg")
    assert reg["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["block", 1, 0]

    clone = Functional.from_config(json.loads(text), custom_objects=CUSTOM)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    clone.set_weights(model.get_weights())
    xa, xb, _, _ = data(7)
    for got, expected in zip(
        clone.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0)
    ):
        np.testing.assert_array_equal(got, expected)
    assert json.loads(json.dumps(clone.get_config())) == json.loads(text)


def test_config_indexes_only_this_models_calls() -> None:
    shared = Dense(2, name="shared_elsewhere")
    other = Input(shape=(2,))
    shared(other)  # a call that belongs to another graph
    x = Input(shape=(2,), name="x")
    model = Model(x, shared(x))
    config = model.get_config()
    assert config["output_layers"] == ["shared_elsewhere", 0, 0]
    clone = Model.from_config(config)
    clone.set_weights(model.get_weights())
    ones = np.ones((1, 2), "float32")
    np.testing.assert_array_equal(clone(ones).data, model(ones).data)


def test_keras_2_node_format_is_read() -> None:
    config = {
        "name": "legacy",
        "layers": [
            {
                "class_name": "InputLayer",
                "name": "inp",
                "config": {"batch_shape": [None, 3], "name": "inp"},
                "inbound_nodes": [],
            },
            {
                "class_name": "Dense",
                "name": "d",
                "config": {"units": 2, "name": "d"},
                "inbound_nodes": [[["inp", 0, 0, {}]]],
            },
        ],
        "input_layers": [["inp", 0, 0]],
        "output_layers": [["d", 0, 0]],
    }
    model = Model.from_config(config)
    assert model.output_shape == (None, 2)


def test_from_config_reports_unknown_layers() -> None:
    x = Input(shape=(2,))
    model = Model(x, AddPair()([x, x]))
    with pytest.raises(ValueError, match="Unknown layer class 'AddPair'"):
        Model.from_config(model.get_config())


# --- summary --------------------------------------------------------------------------------
def test_summary_prints_connections() -> None:
    model = two_in_two_out()
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text
    assert 'Model: "two_heads"' in text
    row = next(line for line in lines if line.startswith("merge (AddPair)"))
    assert "ha[0][0]," in row
    following = lines[lines.index(row) + 1]
    assert following.strip() == "hb[0][0]"
    block = next(line for line in lines if line.startswith("block (Dense)"))
    assert "(None, 8)" in block and "72" in block
    reg = next(line for line in lines if line.startswith("reg (Dense)"))
    assert reg.rstrip().endswith("block[1][0]")
    assert any(line.startswith("a (InputLayer)") and line.rstrip().endswith("-") for line in lines)
    assert "Total params: 180" in text


def test_shared_layer_activity_penalties_add_up() -> None:
    x = Input(shape=(2,))
    shared = Dense(2, activity_regularizer="l2", kernel_initializer="ones", use_bias=False)
    model = Model(x, [shared(x), shared(x)])
    model(np.ones((1, 2), "float32"))
    assert len(model.losses) == 2


def test_with_the_merging_layers_when_present() -> None:
    merging = pytest.importorskip("dendrite.layers.merging")
    x = Input(shape=(4,), name="x")
    h = Dense(4, activation="relu", name="h")(x)
    y = merging.Add(name="add")([h, Dense(4, name="g")(h)])
    model = Model(x, Dense(1, name="out")(y))
    clone = Model.from_config(json.loads(json.dumps(model.get_config())))
    clone.set_weights(model.get_weights())
    xs = np.random.default_rng(6).standard_normal((5, 4)).astype("float32")
    np.testing.assert_array_equal(clone.predict(xs, verbose=0), model.predict(xs, verbose=0))


def test_keras_tensors_as_positional_arguments() -> None:
    class Gate(Layer):
        """y = query * sigmoid(value), called as gate(query, value)."""

        def call(self, query: Tensor, value: Tensor) -> Tensor:
            return ops.multiply(query, ops.sigmoid(value))

    q = Input(shape=(3,), name="q")
    v = Input(shape=(3,), name="v")
    model = Model([q, v], Dense(2, name="head")(Gate(name="gate")(Dense(3, name="pq")(q), v)))
    assert [layer.name for layer in model.layers] == ["q", "pq", "v", "gate", "head"]
    gate = next(e for e in model.get_config()["layers"] if e["name"] == "gate")
    refs = [a["config"]["keras_history"] for a in gate["inbound_nodes"][0]["args"]]
    assert refs == [["pq", 0, 0], ["v", 0, 0]]
    clone = Model.from_config(model.get_config(), custom_objects={"Gate": Gate})
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((4, 3)).astype("float32") for _ in range(2)]
    np.testing.assert_array_equal(clone(xs).data, model(xs).data)


def test_embedding_mask_reaches_the_rnn_inside_a_model() -> None:
    embedding = pytest.importorskip("dendrite.layers.embedding")
    recurrent = pytest.importorskip("dendrite.layers.recurrent")
    x = Input(shape=(None,), dtype="int64")
    model = Model(x, recurrent.LSTM(3)(embedding.Embedding(10, 4, mask_zero=True)(x)))
    assert model.output_shape == (None, 3)
    padded = model.predict(np.array([[1, 2, 0, 0, 0]]), verbose=0)
    short = model.predict(np.array([[1, 2]]), verbose=0)
    np.testing.assert_allclose(padded, short, rtol=1e-6, atol=1e-7)


def test_dict_inputs_round_trip() -> None:
    a = Input(shape=(2,), name="a")
    b = Input(shape=(3,), name="b")
    joined = AddPair(name="join")([Dense(4, name="da")(a), Dense(4, name="db")(b)])
    model = Model({"a": a, "b": b}, Dense(1, name="out")(joined))
    assert model.get_config()["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    rng = np.random.default_rng(8)
    xs = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal((3, 3))}
    np.testing.assert_array_equal(model(xs).data, model([xs["a"], xs["b"]]).data)
    clone = Model.from_config(json.loads(json.dumps(model.get_config())), CUSTOM)
    assert isinstance(clone.input, dict)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(xs).data, model(xs).data)
