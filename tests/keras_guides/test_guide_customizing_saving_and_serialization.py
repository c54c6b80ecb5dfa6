"""The customizing saving and serialization guide
(keras.io/guides/customizing_saving_and_serialization/), as our own programs:
save_own_variables/load_own_variables, save_assets/load_assets,
get_build_config/build_from_config, get_compile_config/compile_from_config, and the
order in which loading calls them."""

from __future__ import annotations

import os

import numpy as np
import pytest

import dendrite as keras
from dendrite import layers

CALLS: list[str] = []


@keras.saving.register_keras_serializable(package="guide_custom_saving")
class LayerWithCustomVariable(layers.Dense):
    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.my_var = keras.Variable(np.random.random((units,)), name="my_var", dtype="float32")

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["variables"] = np.asarray(self.my_var.numpy())

    def load_own_variables(self, store):
        CALLS.append("load_own_variables")
        self.my_var.assign(store["variables"])
        for i, v in enumerate(self.weights):
            v.assign(store[f"{i}"])


@keras.saving.register_keras_serializable(package="guide_custom_saving")
class LayerWithCustomAssets(layers.Layer):
    def __init__(self, vocab=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab = vocab or []

    def call(self, inputs):
        return inputs

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, "vocabulary.txt"), "w") as f:
            f.write("\n".join(self.vocab))

    def load_assets(self, dir_path):
        CALLS.append("load_assets")
        with open(os.path.join(dir_path, "vocabulary.txt")) as f:
            self.vocab = f.read().split("\n")


@keras.saving.register_keras_serializable(package="guide_custom_saving")
class LayerWithCustomBuild(layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")
        self.my_input_shape = tuple(input_shape)

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def get_build_config(self):
        return {"input_shape": list(self.my_input_shape)}

    def build_from_config(self, config):
        CALLS.append("build_from_config")
        self.build(tuple(config["input_shape"]))


@keras.saving.register_keras_serializable(package="guide_custom_saving")
class ModelWithCustomCompile(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = LayerWithCustomVariable(3)
        self.assets_layer = LayerWithCustomAssets(vocab=["a", "b", "c"])

    def call(self, x):
        return self.assets_layer(self.dense(x))

    def compile(self, optimizer, loss_fn):
        super().compile(optimizer=optimizer, loss=loss_fn)
        self.model_optimizer = optimizer
        self.loss_fn = loss_fn

    def get_compile_config(self):
        return {
            "model_optimizer": keras.saving.serialize_keras_object(self.model_optimizer),
            "loss_fn": keras.saving.serialize_keras_object(self.loss_fn),
        }

    def compile_from_config(self, config):
        CALLS.append("compile_from_config")
        optimizer = keras.saving.deserialize_keras_object(config["model_optimizer"])
        loss_fn = keras.saving.deserialize_keras_object(config["loss_fn"])
        self.compile(optimizer=optimizer, loss_fn=loss_fn)


def test_save_own_variables_round_trip(tmp_path):
    inputs = keras.Input((4,))
    layer = LayerWithCustomVariable(3)
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "v.keras")
    restored = keras.models.load_model(tmp_path / "v.keras")
    new_layer = restored.layers[-1]
    np.testing.assert_allclose(new_layer.my_var.numpy(), layer.my_var.numpy())
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("suffix", [".keras", ".dendrite"])
def test_save_assets_round_trip(tmp_path, suffix):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, LayerWithCustomAssets(vocab=["x", "y"])(inputs))
    model.save(tmp_path / f"a{suffix}")
    restored = keras.models.load_model(tmp_path / f"a{suffix}")
    assert restored.layers[-1].vocab == ["x", "y"]


@pytest.mark.parametrize("suffix", [".keras", ".dendrite"])
def test_own_variables_round_trip_in_both_formats(tmp_path, suffix):
    inputs = keras.Input((4,))
    layer = LayerWithCustomVariable(3)
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / f"w{suffix}")
    CALLS.clear()
    restored = keras.models.load_model(tmp_path / f"w{suffix}")
    assert CALLS == ["load_own_variables"]
    np.testing.assert_allclose(restored.layers[-1].my_var.numpy(), layer.my_var.numpy())


def test_build_config_round_trip(tmp_path):
    layer = LayerWithCustomBuild(units=5)
    layer(np.ones((2, 3), "float32"))
    assert layer.get_build_config() == {"input_shape": [2, 3]}
    model = keras.Sequential([keras.Input((3,)), LayerWithCustomBuild(units=5)])
    model.save(tmp_path / "b.keras")
    restored = keras.models.load_model(tmp_path / "b.keras")
    assert restored.layers[-1].built
    assert tuple(restored.layers[-1].kernel.shape) == (3, 5)


def test_compile_config_round_trip(tmp_path):
    model = ModelWithCustomCompile()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.25), loss_fn="mse")
    model(np.ones((2, 4), "float32"))
    config = model.get_compile_config()
    assert config["model_optimizer"]["class_name"] == "SGD"
    model.save(tmp_path / "c.keras")
    restored = keras.models.load_model(tmp_path / "c.keras")
    assert isinstance(restored.model_optimizer, keras.optimizers.SGD)
    np.testing.assert_allclose(float(restored.model_optimizer.learning_rate), 0.25)


@pytest.mark.parametrize("suffix", [".keras", ".dendrite"])
def test_restore_order(tmp_path, suffix):
    model = ModelWithCustomCompile()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.25), loss_fn="mse")
    model(np.ones((2, 4), "float32"))
    model.save(tmp_path / f"o{suffix}")
    CALLS.clear()
    keras.models.load_model(tmp_path / f"o{suffix}")
    order = [c for c in CALLS if c != "build_from_config"]
    # Keras 3 (checked on 3.15): compile_from_config while deserializing, then the state
    # walk visits a subclassed model's attributes by name, so `assets_layer` (load_assets)
    # comes before `dense` (load_own_variables).
    assert order == ["compile_from_config", "load_assets", "load_own_variables"]


@keras.saving.register_keras_serializable(package="guide_custom_saving")
class LayerWithBoth(LayerWithCustomAssets):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def load_own_variables(self, store):
        CALLS.append("load_own_variables")
        super().load_own_variables(store)


def test_one_layer_loads_its_variables_before_its_assets(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, LayerWithBoth(vocab=["p"])(inputs))
    model.layers[-1].scale.assign(3.0)
    model.save(tmp_path / "both.keras")
    CALLS.clear()
    restored = keras.models.load_model(tmp_path / "both.keras")
    assert CALLS == ["load_own_variables", "load_assets"]
    assert float(restored.layers[-1].scale.numpy()) == 3.0
    assert restored.layers[-1].vocab == ["p"]


def test_build_from_config_runs_before_compile_from_config(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, LayerWithCustomBuild(units=2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "f.keras")
    CALLS.clear()
    restored = keras.models.load_model(tmp_path / "f.keras")
    assert restored.layers[-1].built
    assert restored.optimizer is not None
