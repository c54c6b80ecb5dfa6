"""RMSNormalization and ops.rms_normalization (Keras 3's): ``y = x / sqrt(mean_axis(x^2) +
eps) * scale``; their gradients by finite differences, and the layer in ``.keras`` files
both ways with Keras 3 (in a subprocess, as tests/test_keras_files_roundtrip.py runs it).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

K = tf.keras


def _reference(x: np.ndarray, axes: tuple, epsilon: float, scale: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + epsilon) * scale


def test_op_matches_the_formula_and_keras_default_epsilon():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) + 1.5
    out = np.asarray(tf.ops.rms_normalization(x))
    np.testing.assert_allclose(out, _reference(x, (-1,), 1e-7, 1.0), rtol=1e-12)
    scale = np.linspace(0.5, 2, 20).reshape(4, 5)
    out = np.asarray(tf.ops.rms_normalization(x, scale, axis=[2, 1], epsilon=1e-3))
    np.testing.assert_allclose(out, _reference(x, (1, 2), 1e-3, scale), rtol=1e-12)


def test_op_gradient_by_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4))
    scale = rng.standard_normal(4)
    gradcheck(lambda a, s: tf.ops.rms_normalization(a, s, epsilon=1e-3), x, scale)


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_layer_matches_the_formula(axis):
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype("float32") + 2
    layer = K.layers.RMSNormalization(axis=axis)
    out = np.asarray(layer(x))
    axes = tuple(a % 3 for a in (axis if isinstance(axis, list) else [axis]))
    assert [w.path for w in layer.weights] == [f"{layer.name}/scale"]
    assert layer.scale.shape == tuple(x.shape[a] for a in axes)
    np.testing.assert_allclose(out, _reference(x, axes, 1e-6, 1.0), rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)


def test_layer_gradients_config_and_errors():
    x = np.random.default_rng(3).standard_normal((2, 5))
    layer = K.layers.RMSNormalization(epsilon=1e-4, dtype="float64")
    layer(x)
    layer.scale.data[...] = np.linspace(0.5, 1.5, 5)
    gradcheck(lambda t: layer(t), x)
    config = layer.get_config()
    assert config["axis"] == -1 and config["epsilon"] == 1e-4
    assert K.layers.RMSNormalization.from_config(config).get_config() == config
    with pytest.raises(TypeError, match="axis"):
        K.layers.RMSNormalization(axis="last")
    with pytest.raises(ValueError, match="out of range"):
        K.layers.RMSNormalization(axis=3)(np.ones((2, 3), "float32"))


def test_layer_trains_in_a_model():
    tf.keras.utils.set_random_seed(0)
    model = K.Sequential([K.Input((6,)), K.layers.Dense(8), K.layers.RMSNormalization()])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(4).standard_normal((32, 6)).astype("float32")
    history = model.fit(x, x[:, :1] * np.ones((1, 8), "float32"), epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import keras
    root = sys.argv[1]
    warnings.simplefilter("ignore")
    x = np.load(root + "/x.npy", allow_pickle=False)
    mine = keras.models.load_model(root + "/dendrite.keras")
    np.save(root + "/keras_on_dendrite.npy", np.asarray(mine.predict(x, verbose=0)))
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, name="dense")(inputs)
    hidden = keras.layers.RMSNormalization(name="rms")(hidden)
    outputs = keras.layers.LayerNormalization(rms_scaling=True, name="ln")(hidden)
    theirs = keras.Model(inputs, outputs)
    theirs.set_weights([np.linspace(-1, 1, w.size).reshape(w.shape).astype("float32") + 0.5
                        for w in theirs.get_weights()])
    theirs.save(root + "/keras.keras")
    np.save(root + "/keras_y.npy", np.asarray(theirs.predict(x, verbose=0)))
    """
)


def test_keras_files_both_ways(tmp_path: Path):
    pytest.importorskip("keras")
    pytest.importorskip("h5py")
    x = np.random.default_rng(5).standard_normal((4, 6)).astype("float32") + 1
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    inputs = K.Input((6,))
    hidden = K.layers.RMSNormalization(name="rms")(K.layers.Dense(8, name="dense")(inputs))
    with pytest.warns(UserWarning):
        outputs = K.layers.LayerNormalization(rms_scaling=True, name="ln")(hidden)
    model = K.Model(inputs, outputs)
    model.set_weights(
        [np.linspace(1, 2, w.size).reshape(w.shape).astype("float32") for w in model.get_weights()]
    )
    model.save(tmp_path / "dendrite.keras")
    run_keras_side(KERAS_SIDE, tmp_path)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        np.load(tmp_path / "keras_on_dendrite.npy"), expected, rtol=1e-5, atol=1e-5
    )
    with pytest.warns(UserWarning):
        loaded = K.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), np.load(tmp_path / "keras_y.npy"), rtol=1e-5, atol=1e-5
    )
    assert json.dumps(loaded.get_layer("rms").get_config()["epsilon"]) == "1e-06"
