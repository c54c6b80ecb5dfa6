"""The Sequential model guide (keras.io/guides/sequential_model/), as our own programs:
building a stack, layers/add/pop/name, weights created on first call, Input and
input_shape, build(), the summary-driven debugging workflow, feature extraction from
a Sequential model, and transfer learning by freezing layers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers


def build_three_dense(k):
    return k.Sequential(
        [
            k.Input(shape=(3,)),
            k.layers.Dense(2, activation="relu", name="layer1"),
            k.layers.Dense(3, activation="relu", name="layer2"),
            k.layers.Dense(4, name="layer3"),
        ]
    )


def build_conv_stack(k):
    model = k.Sequential()
    model.add(k.Input(shape=(40, 40, 3)))
    model.add(k.layers.Conv2D(8, 5, strides=2, activation="relu"))
    model.add(k.layers.Conv2D(8, 3, activation="relu"))
    model.add(k.layers.MaxPooling2D(3))
    model.add(k.layers.Conv2D(8, 3, activation="relu"))
    model.add(k.layers.Conv2D(8, 3, activation="relu"))
    model.add(k.layers.GlobalMaxPooling2D())
    model.add(k.layers.Dense(10))
    return model


def build_extractor(k):
    initial = k.Sequential(
        [
            k.Input(shape=(20, 20, 3)),
            k.layers.Conv2D(4, 3, strides=2, activation="relu"),
            k.layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
            k.layers.Conv2D(4, 3, activation="relu"),
        ]
    )
    return k.Model(
        inputs=initial.inputs, outputs=initial.get_layer(name="my_intermediate_layer").output
    )


def build_all_features(k):
    initial = k.Sequential(
        [
            k.Input(shape=(20, 20, 3)),
            k.layers.Conv2D(4, 3, strides=2, activation="relu"),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.Conv2D(4, 3, activation="relu"),
        ]
    )
    return k.Model(inputs=initial.inputs, outputs=[layer.output for layer in initial.layers])


def test_sequential_equals_chained_calls():
    model = build_three_dense(keras)
    x = np.random.default_rng(0).normal(size=(3, 3)).astype("float32")
    y = model(x)
    assert tuple(y.shape) == (3, 4)
    layer1, layer2, layer3 = model.layers
    chained = layer3(layer2(layer1(x)))
    np.testing.assert_allclose(np.asarray(y), np.asarray(chained), rtol=1e-6)


def test_layers_add_pop_and_name():
    model = keras.Sequential(name="my_sequential")
    model.add(layers.Dense(2, activation="relu", name="layer1"))
    model.add(layers.Dense(3, activation="relu", name="layer2"))
    model.add(layers.Dense(4, name="layer3"))
    assert model.name == "my_sequential"
    assert [layer.name for layer in model.layers] == ["layer1", "layer2", "layer3"]
    model.pop()
    assert len(model.layers) == 2


def test_weights_created_on_first_call():
    layer = layers.Dense(3)
    assert layer.weights == []
    layer(np.ones((1, 4), "float32"))
    assert len(layer.weights) == 2

    model = keras.Sequential(
        [layers.Dense(2, activation="relu"), layers.Dense(3, activation="relu"), layers.Dense(4)]
    )
    assert not model.built
    assert len(model.weights) == 0
    model(np.ones((1, 4), "float32"))
    assert model.built
    assert len(model.weights) == 6


def test_build_with_input_shape():
    model = keras.Sequential([layers.Dense(2, activation="relu"), layers.Dense(4)])
    model.build((None, 4))
    assert model.count_params() == (4 * 2 + 2) + (2 * 4 + 4)


def test_input_object_is_not_a_layer_of_the_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(4,)))
    model.add(layers.Dense(2, activation="relu"))
    assert len(model.layers) == 1
    assert model.count_params() == 10
    lines = []
    model.summary(print_fn=lambda line, *a, **kw: lines.append(line))
    assert "Total params" in "\n".join(lines)


def test_input_shape_argument_still_builds_with_a_warning():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = keras.Sequential([layers.Dense(2, activation="relu", input_shape=(4,))])
    assert model.count_params() == 10
    assert tuple(model.output_shape) == (None, 2)


def test_summary_debugging_workflow():
    model = build_conv_stack(keras)
    # 40 -> 18 (5x5, stride 2) -> 16 -> 5 (pool 3) -> 3 -> 1
    shapes = [tuple(layer.output.shape) for layer in model.layers]
    assert shapes == [
        (None, 18, 18, 8),
        (None, 16, 16, 8),
        (None, 5, 5, 8),
        (None, 3, 3, 8),
        (None, 1, 1, 8),
        (None, 8),
        (None, 10),
    ]
    lines = []
    model.summary(print_fn=lambda line, *a, **kw: lines.append(line))
    assert f"{model.count_params():,}" in "\n".join(lines)


def test_fit_sequential():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).repeat(4, axis=1)
    model = build_three_dense(keras)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_feature_extraction_from_intermediate_layer():
    extractor = build_extractor(keras)
    features = extractor(np.ones((1, 20, 20, 3), "float32"))
    assert tuple(features.shape) == (1, 7, 7, 4)


def test_feature_extraction_of_all_layers():
    extractor = build_all_features(keras)
    features = extractor(np.ones((1, 20, 20, 3), "float32"))
    assert [tuple(f.shape) for f in features] == [(1, 9, 9, 4), (1, 7, 7, 4), (1, 5, 5, 4)]


def test_transfer_learning_freeze_all_but_last():
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(8, activation="relu"),
            layers.Dense(2),
        ]
    )
    for layer in model.layers[:-1]:
        layer.trainable = False
    assert len(model.trainable_weights) == 2
    assert len(model.non_trainable_weights) == 4
    frozen = [w.numpy().copy() for w in model.layers[0].weights]
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(1)
    model.fit(rng.normal(size=(16, 6)), rng.normal(size=(16, 2)), epochs=1, verbose=0)
    for before, after in zip(frozen, model.layers[0].weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_base_model_inside_sequential():
    base = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(5, activation="relu")])
    base.trainable = False
    model = keras.Sequential([base, layers.Dense(1)])
    model(np.ones((2, 6), "float32"))
    assert len(model.trainable_weights) == 2
    assert len(model.non_trainable_weights) == 2


@pytest.mark.parametrize(
    "build",
    [build_three_dense, build_conv_stack, build_extractor, build_all_features],
    ids=["three_dense", "conv_stack", "extractor", "all_features"],
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
