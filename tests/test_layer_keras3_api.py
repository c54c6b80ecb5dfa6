"""Keras 3's Layer members that custom layers use: ``add_variable``, ``path``,
``dtype_policy``, ``get_build_config`` / ``build_from_config`` (kept by model files, and a
user's own overrides called when loading, in both file formats)."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite.saving.architecture_checks import check_architecture
from dendrite.saving.errors import ModelLoadError


def test_add_variable_is_add_weight():
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_variable(
                (input_shape[-1],), "ones", trainable=True, regularizer="l2", name="w"
            )

        def call(self, x):
            return x * self.w

    layer = Scale()
    out = layer(np.full((2, 3), 2.0, "float32"))
    np.testing.assert_array_equal(out.data, np.full((2, 3), 2.0))
    assert [w.path for w in layer.trainable_weights] == [f"{layer.name}/w"]
    assert len(layer.losses) == 1  # the regularizer came along


def test_path_and_dtype_policy():
    dense = keras.layers.Dense(2, name="head", dtype="float64")
    assert dense.path == "head"
    policy = dense.dtype_policy
    assert policy.name == "float64" and policy.compute_dtype == "float64"
    assert policy.variable_dtype == "float64"
    assert keras.layers.StringLookup(vocabulary=["a"]).dtype_policy.name == "int64"
    assert keras.config.DTypePolicy("int32").name == "int32"
    with pytest.raises(ValueError, match="global dtype policy 'int32'"):
        keras.config.set_dtype_policy("int32")
    with pytest.raises(ValueError, match="no mixed precision"):
        keras.config.DTypePolicy("mixed_float16")


def test_get_build_config_and_build_from_config():
    dense = keras.layers.Dense(3)
    assert dense.get_build_config() is None
    dense.build_from_config({"input_shape": (None, 5)})
    assert dense.built and dense.kernel.shape == (5, 3)
    assert dense.get_build_config() == {"input_shape": (None, 5)}
    fresh = keras.layers.Dense.from_config(dense.get_config())
    fresh.build_from_config(dense.get_build_config())
    fresh.set_weights(dense.get_weights())
    x = np.ones((2, 5), "float32")
    np.testing.assert_array_equal(fresh(x).data, dense(x).data)
    fresh.build_from_config(None)  # nothing to do, as in Keras


@keras.saving.register_keras_serializable(package="layer_api_test")
class Tower(keras.Model):
    """A model whose build state is its own: a feature count, not an input shape."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_variable((input_shape[-1], self.units), "glorot_uniform", name="w")

    def call(self, x):
        return x @ self.w

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def get_build_config(self):
        return {"features": int(self.w.shape[0])}

    def build_from_config(self, config):
        self.build((None, config["features"]))


@pytest.mark.parametrize("suffix", [".dendrite", ".keras"])
def test_a_models_own_build_config_is_saved_and_used_to_load(tmp_path, suffix):
    model = Tower()
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / f"tower{suffix}")
    loaded = keras.models.load_model(tmp_path / f"tower{suffix}")
    assert loaded.w.shape == (6, 3)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


def test_build_configs_a_file_may_hold():
    entry = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    custom = {}
    for build in ({"input_shape": [None, 3]}, {"shapes_dict": {"x_shape": [None, 3]}}):
        check_architecture({**entry, "build_config": build}, custom, None, "f")
    for bad in ({"features": 3}, [None, 3], {"input_shape": "big"}):
        with pytest.raises(ModelLoadError, match="build_config must be"):
            check_architecture({**entry, "build_config": bad}, custom, None, "f")
    # a class with its own build_from_config reads whatever it wrote
    tower = {"class_name": "layer_api_test>Tower", "config": {"name": "t", "units": 2}}
    check_architecture({**tower, "build_config": {"features": 3}}, custom, None, "f")
