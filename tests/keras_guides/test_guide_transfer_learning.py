"""The transfer learning & fine-tuning guide (keras.io/guides/transfer_learning/), as our
own programs: trainable vs non-trainable weights, layer.trainable = False, frozen
weights unchanged by fit, recursive freezing, the base model from keras.applications
(weights=None) called with training=False, BatchNormalization in inference mode when
frozen, and fine-tuning with a low learning rate after recompiling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
import dendrite.applications  # noqa: F401  (see test_applications_is_an_attribute)
from dendrite import layers

RNG = np.random.default_rng(0)


def build_transfer_model(k):
    base_model = k.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), include_top=False, alpha=0.35
    )
    base_model.trainable = False
    inputs = k.Input(shape=(32, 32, 3))
    x = k.layers.RandomFlip("horizontal")(inputs)
    x = k.layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
    x = base_model(x, training=False)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    outputs = k.layers.Dense(1)(x)
    return k.Model(inputs, outputs)


def test_applications_is_an_attribute():
    code = "import dendrite as keras; keras.applications.MobileNetV2"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.xfail("keras.applications needs an explicit `import dendrite.applications`")


def test_dense_and_batchnorm_weight_split():
    layer = layers.Dense(3)
    layer.build((None, 4))
    assert len(layer.weights) == 2 and len(layer.trainable_weights) == 2
    assert len(layer.non_trainable_weights) == 0
    bn = layers.BatchNormalization()
    bn.build((None, 4))
    assert len(bn.weights) == 4
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2


def test_trainable_false_moves_weights():
    layer = layers.Dense(3)
    layer.build((None, 4))
    layer.trainable = False
    assert len(layer.weights) == 2
    assert len(layer.trainable_weights) == 0 and len(layer.non_trainable_weights) == 2


def test_frozen_layer_unchanged_by_fit():
    layer1 = layers.Dense(3, activation="relu")
    layer2 = layers.Dense(3, activation="sigmoid")
    model = keras.Sequential([keras.Input(shape=(3,)), layer1, layer2])
    layer1.trainable = False
    initial = layer1.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(RNG.random((4, 3)), RNG.random((4, 3)), verbose=0)
    for a, b in zip(initial, layer1.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_trainable_is_recursive():
    inner_model = keras.Sequential(
        [keras.Input(shape=(3,)), layers.Dense(3, activation="relu"), layers.Dense(3)]
    )
    model = keras.Sequential([keras.Input(shape=(3,)), inner_model, layers.Dense(3)])
    model.trainable = False
    assert inner_model.trainable is False
    assert inner_model.layers[0].trainable is False
    assert model.trainable_weights == []


def test_bn_frozen_runs_in_inference_mode():
    bn = layers.BatchNormalization()
    x = RNG.normal(loc=5.0, size=(16, 4)).astype("float32")
    bn(x, training=True)
    moving_mean = bn.moving_mean.numpy().copy()
    bn.trainable = False
    y = np.asarray(bn(x, training=True))
    np.testing.assert_array_equal(bn.moving_mean.numpy(), moving_mean)
    expected = np.asarray(bn(x, training=False))
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_transfer_then_fine_tune():
    keras.utils.set_random_seed(0)
    model = build_transfer_model(keras)
    base_model = model.layers[3]
    assert isinstance(base_model, keras.Model)
    assert len(model.trainable_weights) == 2
    x = RNG.uniform(0, 255, size=(8, 32, 32, 3)).astype("float32")
    y = RNG.integers(0, 2, size=(8, 1)).astype("float32")
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    frozen = [w.numpy().copy() for w in base_model.weights]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(frozen, base_model.weights):
        np.testing.assert_array_equal(a, b.numpy())

    base_model.trainable = True
    assert len(model.trainable_weights) > 2
    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    bn_layers = [lyr for lyr in base_model.layers if isinstance(lyr, layers.BatchNormalization)]
    moving = [lyr.moving_mean.numpy().copy() for lyr in bn_layers]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    # called with training=False: its BatchNormalization layers stay in inference mode
    for before, lyr in zip(moving, bn_layers):
        np.testing.assert_array_equal(before, lyr.moving_mean.numpy())
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(frozen, base_model.weights))


def test_same_structure_as_keras():
    assert_same_structure(build_transfer_model)
