"""The save, serialize and export guide (keras.io/guides/serialization_and_saving/), as
our own programs: model.save / keras.models.load_model / keras.saving.save_model with
the .keras format, custom objects (register_keras_serializable, custom_objects,
custom_object_scope), get_config/from_config, to_json/model_from_json, clone_model,
serialize/deserialize_keras_object, and weights-only saving (get/set_weights,
save_weights/load_weights, transfer between compatible models)."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)


@keras.saving.register_keras_serializable(package="guide_saving", name="scaled_square")
def scaled_square(x):
    return ops.square(x) * 0.5


@keras.saving.register_keras_serializable(package="guide_saving")
class ScaledDense(layers.Layer):
    def __init__(self, units=4, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.factor = units, factor
        self.dense = layers.Dense(units)

    def call(self, inputs):
        return self.dense(inputs) * self.factor

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "factor": self.factor})
        return config


class Unregistered(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def build_model(k):
    inputs = k.Input(shape=(5,))
    x = k.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = k.layers.Dense(2, name="out")(x)
    return k.Model(inputs, outputs)


def _x(n=4):
    return RNG.normal(size=(n, 5)).astype("float32")


def test_save_and_load_round_trip_with_optimizer(tmp_path):
    model = build_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(_x(16), RNG.normal(size=(16, 2)), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    x = _x()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(restored.optimizer, keras.optimizers.Adam)
    assert int(restored.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    restored.fit(_x(16), RNG.normal(size=(16, 2)), epochs=1, verbose=0)


def test_saving_save_model_is_equivalent(tmp_path):
    model = build_model(keras)
    keras.saving.save_model(model, tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    x = _x()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_registered_custom_objects_load_without_arguments(tmp_path):
    inputs = keras.Input(shape=(5,))
    x = ScaledDense(3, factor=0.5)(inputs)
    outputs = layers.Activation(scaled_square)(x)
    model = keras.Model(inputs, outputs)
    assert keras.saving.get_registered_name(ScaledDense) == "guide_saving>ScaledDense"
    assert keras.saving.get_registered_object("guide_saving>scaled_square") is scaled_square
    model.save(tmp_path / "custom.keras")
    restored = keras.models.load_model(tmp_path / "custom.keras")
    assert isinstance(restored.layers[1], ScaledDense)
    x = _x()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_custom_objects_argument_and_scope(tmp_path):
    inputs = keras.Input(shape=(5,))
    model = keras.Model(inputs, Unregistered(3.0)(layers.Dense(2)(inputs)))
    model.save(tmp_path / "u.keras")
    restored = keras.models.load_model(
        tmp_path / "u.keras", custom_objects={"Unregistered": Unregistered}
    )
    assert restored.layers[-1].factor == 3.0
    with keras.saving.custom_object_scope({"Unregistered": Unregistered}):
        restored = keras.models.load_model(tmp_path / "u.keras")
    x = _x()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layer_config_round_trip():
    layer = layers.Dense(3, activation="relu")
    config = layer.get_config()
    assert config["units"] == 3
    new_layer = layers.Dense.from_config(config)
    assert new_layer.units == 3 and new_layer.get_config()["activation"] == "relu"


def test_sequential_and_functional_config_round_trip():
    seq = keras.Sequential([keras.Input((5,)), layers.Dense(2)])
    seq2 = keras.Sequential.from_config(seq.get_config())
    assert seq2.count_params() == seq.count_params()
    model = build_model(keras)
    model2 = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in model2.layers] == [layer.name for layer in model.layers]
    assert model2.count_params() == model.count_params()


def test_to_json_and_model_from_json():
    model = build_model(keras)
    json_config = model.to_json()
    assert isinstance(json_config, str)
    new_model = keras.models.model_from_json(json_config)
    assert new_model.count_params() == model.count_params()


def test_clone_model_has_new_weights():
    model = build_model(keras)
    clone = keras.models.clone_model(model)
    assert clone.count_params() == model.count_params()
    assert {id(w) for w in clone.weights}.isdisjoint({id(w) for w in model.weights})


def test_serialize_and_deserialize_keras_object():
    config = keras.saving.serialize_keras_object(keras.optimizers.Adam(learning_rate=0.01))
    assert config["class_name"] == "Adam"
    optimizer = keras.saving.deserialize_keras_object(config)
    np.testing.assert_allclose(float(optimizer.learning_rate), 0.01, rtol=1e-6)
    dense = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layers.Dense(7))
    )
    assert dense.units == 7


def test_get_and_set_weights_between_layers():
    def create_layer():
        layer = layers.Dense(4, activation="relu", name="dense_1")
        layer.build((None, 5))
        return layer

    layer_1, layer_2 = create_layer(), create_layer()
    layer_2.set_weights(layer_1.get_weights())
    for a, b in zip(layer_1.get_weights(), layer_2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_transfer_between_functional_and_subclassed():
    functional = build_model(keras)

    class SubclassedModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense_1 = layers.Dense(6, activation="relu")
            self.dense_2 = layers.Dense(2)

        def call(self, inputs):
            return self.dense_2(self.dense_1(inputs))

    subclassed = SubclassedModel()
    subclassed(np.zeros((1, 5), "float32"))
    subclassed.set_weights(functional.get_weights())
    x = _x()
    np.testing.assert_allclose(np.asarray(subclassed(x)), np.asarray(functional(x)), rtol=1e-6)


def test_stateless_layers_do_not_change_weight_order():
    inputs = keras.Input(shape=(5,))
    x = layers.Dense(6, activation="relu", name="hidden")(inputs)
    x = layers.Dropout(0.5)(x)
    with_dropout = keras.Model(inputs, layers.Dense(2, name="out")(x))
    plain = build_model(keras)
    with_dropout.set_weights(plain.get_weights())
    x = _x()
    np.testing.assert_allclose(with_dropout.predict(x, verbose=0), plain.predict(x, verbose=0))


def test_save_weights_and_load_weights_h5(tmp_path):
    pytest.importorskip("h5py")
    model = build_model(keras)
    path = tmp_path / "ckpt.weights.h5"
    model.save_weights(path)
    other = build_model(keras)
    other.load_weights(path)
    x = _x()
    np.testing.assert_allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_transfer_weights_into_a_model_without_the_head(tmp_path):
    pytest.importorskip("h5py")
    pretrained = keras.Sequential(
        [keras.Input((5,)), layers.Dense(6, name="hidden"), layers.Dense(3, name="head")]
    )
    pretrained.save_weights(tmp_path / "pre.weights.h5")
    restored = keras.Sequential(
        [keras.Input((5,)), layers.Dense(6, name="hidden"), layers.Dense(3, name="head")]
    )
    restored.load_weights(tmp_path / "pre.weights.h5")
    extracted = keras.Sequential([keras.Input((5,)), restored.get_layer("hidden")])
    np.testing.assert_array_equal(
        extracted.get_weights()[0], pretrained.get_layer("hidden").get_weights()[0]
    )
    restored.pop()
    assert len(restored.layers) == 1


def test_an_anonymous_lambda_is_refused_when_saving(tmp_path):
    """Keras saves a lambda's bytecode and refuses it on load unless safe_mode=False;
    dendrite never stores code, so the refusal comes at save time, saying what to do, and
    nothing is written (a documented difference: README, Keras carry-over)."""
    inputs = keras.Input((5,))
    model = keras.Model(inputs, layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "lam.keras"
    with pytest.raises(ValueError, match="register"):
        model.save(path)
    assert not path.exists()


def test_a_lambda_of_a_registered_function_saves_and_loads(tmp_path):
    """The guide's way around unsafe deserialization: a named, registered function."""

    @keras.saving.register_keras_serializable(package="guide")
    def double(x):
        return x * 2.0

    inputs = keras.Input((5,))
    model = keras.Model(inputs, layers.Lambda(double)(inputs))
    model.save(tmp_path / "lam.keras")
    restored = keras.models.load_model(tmp_path / "lam.keras", safe_mode=False)
    x = _x()
    np.testing.assert_allclose(restored.predict(x, verbose=0), 2.0 * x)


def test_same_structure_as_keras():
    assert_same_structure(build_model)
