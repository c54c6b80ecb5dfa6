"""One execution plan for both model kinds: ``Sequential`` with a known input is a
functional graph from construction (Keras 3), both kinds run through
``models.plan.ExecutionPlan``, and fusion is one pass of the plan through ``Layer.fuse``."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import keras
from dendrite.layers import Conv2D, Dense, Flatten, MaxPooling2D
from dendrite.models.plan import ExecutionPlan

layers = keras.layers
RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 8, 8, 1)).astype("float32")


def _cnn(first):
    tf.utils.set_random_seed(0)
    return keras.Sequential(
        [
            first,
            Conv2D(4, 3, activation="relu", name="conv"),
            MaxPooling2D(2, name="pool"),
            Flatten(name="flat"),
            Dense(3, name="out"),
        ]
    )


@pytest.mark.parametrize("declared", ["input", "input_shape"])
def test_every_output_exists_right_after_construction(declared):
    if declared == "input":
        model = _cnn(keras.Input((8, 8, 1)))
    else:
        tf.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                Conv2D(4, 3, activation="relu", name="conv", input_shape=(8, 8, 1)),
                MaxPooling2D(2, name="pool"),
                Flatten(name="flat"),
                Dense(3, name="out"),
            ]
        )
    assert model.built
    assert model.output_shape == (None, 3)
    assert model.input_shape == (None, 8, 8, 1)
    assert [layer.output.shape for layer in model.layers] == [
        (None, 6, 6, 4),
        (None, 3, 3, 4),
        (None, 36),
        (None, 3),
    ]
    assert [layer.output_shape for layer in model.layers][-1] == (None, 3)
    assert model.layers[0].input.shape == (None, 8, 8, 1)
    assert model.inputs[0] is model.input and model.outputs[0] is model.output


def test_feature_extraction_from_each_layer_of_a_sequential():
    model = _cnn(keras.Input((8, 8, 1)))
    expected = X
    for index, layer in enumerate(model.layers):
        expected = layer(expected)
        extractor = keras.Model(model.inputs, model.layers[index].output)
        np.testing.assert_allclose(
            extractor.predict(X, verbose=0), expected.numpy(), rtol=1e-5, atol=1e-6
        )


def test_a_sequential_without_input_builds_its_graph_on_the_first_call():
    tf.utils.set_random_seed(0)
    model = keras.Sequential([Dense(4, name="a"), Dense(2, name="b")])
    assert not model.built
    with pytest.raises(AttributeError, match="no defined input"):
        _ = model.output
    out = model(np.ones((3, 5), "float32"))
    assert out.shape == (3, 2) and model.built
    assert model.output_shape == (None, 2)
    assert model.layers[0].output.shape == (None, 4)


def test_add_and_pop_rebuild_the_graph():
    model = keras.Sequential([keras.Input((5,)), Dense(4, name="a")])
    assert model.output_shape == (None, 4)
    model.add(Dense(2, name="b"))
    assert model.output_shape == (None, 2)
    model.pop()
    assert model.output_shape == (None, 4)
    # An earlier layer's output still connects to the model's input.
    extractor = keras.Model(model.inputs, model.layers[0].output)
    assert extractor.output_shape == (None, 4)


def test_integer_inputs_keep_their_dtype_when_built_from_data():
    model = keras.Sequential([layers.Embedding(10, 3), layers.GlobalAveragePooling1D()])
    out = model(np.array([[1, 2, 3], [4, 5, 6]]))
    assert out.shape == (2, 3)
    assert np.dtype(model.input.dtype).kind == "i"


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_both_model_kinds_run_one_plan_that_fuses_conv_and_pool(kind, monkeypatch):
    sequential = _cnn(keras.Input((8, 8, 1)))
    if kind == "sequential":
        model = sequential
    else:
        inputs = keras.Input((8, 8, 1))
        x = inputs
        for layer in sequential.layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    plan = model._graph[2] if kind == "sequential" else model._plan
    assert isinstance(plan, ExecutionPlan)
    assert list(plan.fused) == [0]  # the conv step runs with the pooling after it
    calls = []
    conv = model.get_layer("conv")
    original = type(conv)._pooled_call

    def spy(self, pool, inputs):
        calls.append((self.name, pool.name))
        return original(self, pool, inputs)

    monkeypatch.setattr(type(conv), "_pooled_call", spy)
    fused = model.predict(X, verbose=0)
    assert calls == [("conv", "pool")]
    unfused = X
    for layer in sequential.layers:
        unfused = layer(unfused)
    np.testing.assert_allclose(fused, unfused.numpy(), rtol=1e-5, atol=1e-6)


def test_fusion_declines_and_the_layers_run_one_after_the_other():
    model = _cnn(keras.Input((8, 8, 1)))
    model.get_layer("conv").activity_regularizer = tf.regularizers.L2(0.1)
    # The plan's function checks again at call time, and the layers' own calls run.
    assert model.get_layer("conv").fuse(model.get_layer("pool")) is None
    out = model.predict(X, verbose=0)
    assert out.shape == (4, 3)


def test_a_plain_layer_does_not_fuse():
    assert Dense(2).fuse(Dense(3)) is None


def test_a_shared_layer_output_is_not_fused():
    inputs = keras.Input((8, 8, 1))
    conv = Conv2D(2, 3, activation="relu")
    y = conv(inputs)
    model = keras.Model(inputs, [MaxPooling2D(2)(y), Flatten()(y)])
    assert model._plan.fused == {}
    a, b = model.predict(X, verbose=0)
    assert a.shape == (4, 3, 3, 2) and b.shape == (4, 72)
