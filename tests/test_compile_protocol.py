"""Keras 3's compile protocol in model files (issue #11): a model whose ``compile`` takes
its own arguments stores ``get_compile_config()`` and loading replays it through
``compile_from_config``, in dendrite's files and in Keras' own."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras


@keras.saving.register_keras_serializable(package="compile_protocol")
class TwoLossModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)

    def compile(self, optimizer, loss_fn, scale=1.0):
        super().compile(optimizer=optimizer, loss=loss_fn)
        self.loss_fn, self.scale = loss_fn, scale

    def get_compile_config(self):
        return {
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "loss_fn": keras.saving.serialize_keras_object(self.loss_fn),
            "scale": self.scale,
        }

    def compile_from_config(self, config):
        self.compile(
            keras.saving.deserialize_keras_object(config["optimizer"]),
            keras.saving.deserialize_keras_object(config["loss_fn"]),
            scale=config["scale"],
        )


@pytest.mark.parametrize("suffix", [".dendrite", ".keras"])
def test_a_custom_compile_round_trips(tmp_path, suffix):
    if suffix == ".keras":
        pytest.importorskip("h5py")
    model = TwoLossModel()
    model.compile(keras.optimizers.SGD(learning_rate=0.25), keras.losses.Huber(delta=2.0), 3.0)
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
    model.save(tmp_path / f"m{suffix}")
    restored = keras.models.load_model(tmp_path / f"m{suffix}")
    assert isinstance(restored.optimizer, keras.optimizers.SGD)
    assert float(restored.optimizer.learning_rate) == pytest.approx(0.25)
    assert isinstance(restored.loss_fn, keras.losses.Huber) and restored.loss_fn.delta == 2.0
    assert restored.scale == 3.0
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not hasattr(keras.models.load_model(tmp_path / f"m{suffix}", compile=False), "scale")


def test_the_default_protocol_matches_compile():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert model.get_compile_config() is None
    model.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"])
    config = model.get_compile_config()
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    other.compile_from_config(config)
    assert isinstance(other.optimizer, keras.optimizers.Adam)
    assert float(other.optimizer.learning_rate) == pytest.approx(0.01)
    assert other.get_compile_config() == config
