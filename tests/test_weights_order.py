"""``weights`` / ``get_weights`` / ``set_weights`` in Keras 3's order: layer by layer, each
layer's own weights created trainable first, then the others; freezing moves nothing.

Keras 3 itself checks the order in a subprocess (as tests/test_keras_files_roundtrip.py
runs it): its ``set_weights`` takes dendrite's ``get_weights`` list and must predict what
dendrite predicts, and its weights' names must come in dendrite's order.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

K = tf.keras


def _conv_bn_dense() -> object:
    tf.keras.utils.set_random_seed(3)
    return K.Sequential(
        [
            K.Input((6, 6, 2)),
            K.layers.Conv2D(3, 3, name="conv"),
            K.layers.BatchNormalization(name="bn"),
            K.layers.Flatten(),
            K.layers.Dense(4, name="head"),
        ]
    )


def _names(model) -> list[str]:
    return [v.path for v in model.weights]


def test_batch_normalization_weights_come_layer_by_layer():
    model = K.Sequential(
        [
            K.Input((4,)),
            K.layers.BatchNormalization(name="bn"),
            K.layers.BatchNormalization(center=False, name="bn_1"),
        ]
    )
    assert _names(model) == [
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
        "bn_1/gamma",
        "bn_1/moving_mean",
        "bn_1/moving_variance",
    ]
    # The groups are still what they were: trainable ones first, layer by layer.
    assert [v.path for v in model.trainable_weights] == ["bn/gamma", "bn/beta", "bn_1/gamma"]
    assert [v.path for v in model.non_trainable_weights] == [
        "bn/moving_mean",
        "bn/moving_variance",
        "bn_1/moving_mean",
        "bn_1/moving_variance",
    ]


def test_freezing_a_layer_moves_no_weight():
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    model = K.Sequential([K.Input((4,)), K.layers.Dense(4, name="a"), K.layers.Dense(4, name="b")])
    names, before, saved = _names(model), model.predict(x, verbose=0), model.get_weights()
    model.get_layer("a").trainable = False
    assert _names(model) == names == ["a/kernel", "a/bias", "b/kernel", "b/bias"]
    assert [v.path for v in model.non_trainable_weights] == ["a/kernel", "a/bias"]
    for variable in model.weights:  # scramble, then restore from the list taken before
        variable.data[...] = 0
    model.set_weights(saved)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)


def test_a_frozen_model_round_trips_its_list():
    model = _conv_bn_dense()
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 2)).astype("float32")
    saved, before = model.get_weights(), model.predict(x, verbose=0)
    model.trainable = False
    assert [w.shape for w in model.get_weights()] == [w.shape for w in saved]
    model.set_weights(saved)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(),
        keras.layers.Dense(4, name="head"),
    ])
    with np.load(root + "/weights.npz", allow_pickle=False) as stored:
        model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
    x = np.load(root + "/x.npy", allow_pickle=False)
    np.save(root + "/keras_y.npy", np.asarray(model.predict(x, verbose=0)), allow_pickle=False)
    with open(root + "/keras_names.json", "w") as f:
        json.dump([v.path for v in model.weights], f)
    """
)


def test_keras_takes_dendrite_get_weights_list(tmp_path: Path):
    pytest.importorskip("keras")
    model = _conv_bn_dense()
    x = np.random.default_rng(2).standard_normal((3, 6, 6, 2)).astype("float32")
    # Moving statistics away from 0 and 1, so that a swap with gamma or beta shows.
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((3, 4), "float32"), epochs=2, verbose=0)
    np.savez(tmp_path / "weights.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    run_keras_side(KERAS_SIDE, tmp_path)
    keras_names = json.loads((tmp_path / "keras_names.json").read_text())
    # Keras 3.15 prefixes the model's name ("sequential/conv/kernel").
    assert ["/".join(name.split("/")[-2:]) for name in keras_names] == _names(model)
    np.testing.assert_allclose(
        np.load(tmp_path / "keras_y.npy"), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
