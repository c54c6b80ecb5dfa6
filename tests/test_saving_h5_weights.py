"""``.weights.h5`` files (HDF5 through the optional h5py): round trip, ModelCheckpoint with
Keras 3's weights suffix, checks before any weight changes, and hostile files. Skipped
only when h5py is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite.saving.errors import WeightsLoadError

h5py = pytest.importorskip("h5py")
RNG = np.random.default_rng(8)


def _model(units=3):
    return tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(units), tf.keras.layers.BatchNormalization()]
    )


def test_round_trip_is_exact(tmp_path):
    model = _model()
    model.layers[1].moving_mean.assign(RNG.standard_normal(3).astype("float32"))
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    other = _model()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    with h5py.File(path) as store:  # Keras 3's layout (issue 15)
        assert store["layers/dense/vars/0"].shape == model.weights[0].shape
        assert store["layers/batch_normalization/vars"].attrs["name"] == model.layers[1].name


def test_dendrite_own_h5_layout_stays_readable(tmp_path):
    from dendrite.saving.h5_weights import save_weights_h5

    model = _model()
    model.layers[1].moving_mean.assign(RNG.standard_normal(3).astype("float32"))
    path = tmp_path / "old.weights.h5"
    save_weights_h5(model, str(path))
    other = _model()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_with_keras_3_weights_suffix(tmp_path):
    x = RNG.standard_normal((32, 4)).astype("float32")
    model = _model(1)
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "ckpt.weights.h5"
    callback = tf.keras.callbacks.ModelCheckpoint(path, save_weights_only=True)
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[callback])
    restored = _model(1)
    restored.load_weights(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mismatch_is_reported_before_any_weight_changes(tmp_path):
    path = tmp_path / "m.weights.h5"
    _model(3).save_weights(path)
    other = _model(5)
    before = [w.copy() for w in other.get_weights()]
    with pytest.raises(
        WeightsLoadError, match=r"layer 'dense.*' weight 'kernel' expects shape \(4, 5\)"
    ):
        other.load_weights(path)
    for a, b in zip(before, other.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["not_hdf5", "no_format", "object_dataset", "gap"])
def test_hostile_or_foreign_files_are_rejected(tmp_path, kind):
    path = tmp_path / "bad.weights.h5"
    if kind == "not_hdf5":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    else:
        with h5py.File(path, "w") as store:
            if kind != "no_format":
                store.attrs["format"] = "dendrite.weights"
            group = store.create_group("weights")
            if kind == "object_dataset":
                group.create_dataset(
                    "0000", data=np.array([b"rm -rf /"], dtype=object), dtype=h5py.string_dtype()
                )
            else:
                group.create_dataset("0000", data=np.zeros((4, 3), "float32"))
                group.create_dataset(
                    "0002" if kind == "gap" else "0001", data=np.zeros(3, "float32")
                )
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightsLoadError):
        model.load_weights(path)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_other_suffixes_still_say_what_is_accepted(tmp_path):
    with pytest.raises(ValueError, match=r"`.weights.safetensors` \(or `.weights.h5`\)"):
        _model().save_weights(tmp_path / "w.h5")
