"""Lion and Lamb with Keras 3: a model trained a few steps in dendrite, saved as ``.keras``,
continues in Keras exactly as it continues in dendrite (weights and optimizer state in
Keras' layout, the next step's update rule). Keras runs in a subprocess, as in
tests/test_keras_files_roundtrip.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

pytest.importorskip("h5py")

KERAS_SIDE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    root = sys.argv[1]
    model = keras.models.load_model(root + "/model.keras")
    x = np.load(root + "/x.npy", allow_pickle=False)
    y = np.load(root + "/y.npy", allow_pickle=False)
    model.train_on_batch(x, y)
    np.savez(root + "/keras_after.npz", *[np.asarray(w) for w in model.get_weights()])
    """
)


@pytest.mark.parametrize(
    "make", [lambda: tf.keras.optimizers.Lion(0.01), lambda: tf.keras.optimizers.Lamb(0.01)]
)
def test_training_continues_in_keras(make, tmp_path: Path):
    pytest.importorskip("keras")
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((5,)), tf.keras.layers.Dense(4, "tanh"), tf.keras.layers.Dense(2)]
    )
    model.compile(optimizer=make(), loss="mse")
    rng = np.random.default_rng(1)
    x, y = (
        rng.standard_normal((16, 5)).astype("float32"),
        rng.standard_normal((16, 2)).astype("float32"),
    )
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    np.save(tmp_path / "y.npy", y, allow_pickle=False)
    run_keras_side(KERAS_SIDE, tmp_path)
    model.train_on_batch(x, y)
    with np.load(tmp_path / "keras_after.npz", allow_pickle=False) as keras_after:
        theirs = [keras_after[f"arr_{i}"] for i in range(len(keras_after.files))]
    for mine, other in zip(model.get_weights(), theirs):
        np.testing.assert_allclose(mine, other, rtol=1e-5, atol=1e-6)
