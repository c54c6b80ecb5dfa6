"""EinsumDense against Keras 3 itself (in a subprocess, as tests/test_keras_files_roundtrip.py
runs it): for each equation form, the kernel's and bias' shapes, and the outputs with the
same weights; bad equations raise errors naming the problem."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

CASES = {
    "dense": ("ab,bc->ac", [4], "c", (3, 5)),
    "sequence": ("abc,cd->abd", [None, 6], "d", (2, 3, 5)),
    "heads": ("abc,cde->abde", [None, 2, 3], "de", (2, 4, 5)),
    "left": ("...b,bc->...c", [4], "c", (2, 3, 5)),
    "right": ("ab...,bc->ac...", [6], None, (2, 3, 5)),
    "no_bias": ("abc,cd->abd", [None, 2], None, (2, 3, 5)),
}

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    out = {}
    for name, (equation, shape, bias_axes, input_shape) in json.loads(
            open(root + "/cases.json").read()).items():
        layer = keras.layers.EinsumDense(equation, shape, bias_axes=bias_axes)
        x = np.load(root + f"/{name}.x.npy")
        layer(x)
        weights = [np.linspace(-1, 1, w.size).reshape(w.shape).astype("float32")
                   for w in layer.get_weights()]
        layer.set_weights(weights)
        y = keras.ops.convert_to_numpy(layer(x))
        out[name] = [[list(w.shape) for w in weights], y.tolist()]
    json.dump(out, open(root + "/keras.json", "w"))
    """
)


def test_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    for name, (*_, input_shape) in CASES.items():
        np.save(tmp_path / f"{name}.x.npy", rng.standard_normal(input_shape).astype("float32"))
    (tmp_path / "cases.json").write_text(json.dumps(CASES))
    run_keras_side(KERAS_SIDE, tmp_path)
    expected = json.loads((tmp_path / "keras.json").read_text())
    for name, (equation, shape, bias_axes, _) in CASES.items():
        layer = tf.keras.layers.EinsumDense(equation, shape, bias_axes=bias_axes)
        x = np.load(tmp_path / f"{name}.x.npy")
        layer(x)
        shapes, outputs = expected[name]
        assert [list(w.shape) for w in layer.get_weights()] == shapes, name
        layer.set_weights(
            [
                np.linspace(-1, 1, w.size).reshape(w.shape).astype("float32")
                for w in layer.get_weights()
            ]
        )
        got = np.asarray(layer(x))
        np.testing.assert_allclose(got, outputs, rtol=1e-5, atol=1e-5, err_msg=name)
        assert tuple(layer.compute_output_shape(x.shape)) == got.shape


def test_errors_config_and_training():
    layers = tf.keras.layers
    with pytest.raises(ValueError, match="invalid equation"):
        layers.EinsumDense("ab->b", 3)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="neither the input nor"):
        layers.EinsumDense("ab,bz->ac", 3)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="bias axes"):
        layers.EinsumDense("ab,bc->ac", 3, bias_axes="q")(np.ones((2, 3)))
    layer = layers.EinsumDense("abc,cd->abd", (None, 4), activation="relu", bias_axes="d")
    config = layer.get_config()
    clone = layers.EinsumDense.from_config(config)
    assert clone.get_config() == config
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((3, 5)), layer, layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(1).standard_normal((32, 3, 5)).astype("float32")
    history = model.fit(x, x.sum(axis=(1, 2))[:, None], epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
