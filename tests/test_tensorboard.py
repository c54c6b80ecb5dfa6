"""callbacks.TensorBoard: event files in Keras' layout, read back by this module's reader
(which checks every CRC) and by TensorBoard's own EventAccumulator when installed."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import dendrite as tf
from dendrite.training.callbacks import TensorBoard
from dendrite.training.callbacks.tensorboard import crc32c, read_events


def _fit(log_dir, **kwargs):
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(8, activation="relu", name="hidden"),
            tf.keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=32,
        validation_split=0.25,
        verbose=0,
        callbacks=[TensorBoard(log_dir, **kwargs)],
    )
    return model, history.history


def _one_file(directory):
    files = glob.glob(os.path.join(directory, "events.out.tfevents.*"))
    assert len(files) == 1, files
    return files[0]


def _scalars(path):
    found = {}
    for event in read_events(path):
        for tag, value in event["scalars"].items():
            found.setdefault(tag, []).append((event["step"], value))
    return found


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value


def test_epoch_scalars_in_keras_layout(tmp_path):
    _, history = _fit(
        tmp_path,
        histogram_freq=1,
        write_images=True,
        update_freq="batch",
        write_steps_per_second=True,
    )
    train = _scalars(_one_file(tmp_path / "train"))
    validation = _scalars(_one_file(tmp_path / "validation"))
    for name in ("loss", "accuracy"):
        steps, values = zip(*train[f"epoch_{name}"])
        assert steps == (0, 1, 2)
        np.testing.assert_allclose(values, history[name], rtol=1e-6)
        steps, values = zip(*validation[f"epoch_{name}"])
        np.testing.assert_allclose(values, history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.01] * 3, rtol=1e-6)
    assert len(train["epoch_steps_per_second"]) == 3
    # Per batch: 72 training rows in batches of 32 -> 3 batches an epoch, steps 1..9.
    assert [s for s, _ in train["batch_loss"]] == list(range(1, 10))
    assert [s for s, _ in validation["evaluation_loss_vs_iterations"]] == [3, 6, 9]
    events = read_events(_one_file(tmp_path / "train"))
    assert events[0]["file_version"] == "brain.Event:2"
    histograms = {tag: h for e in events for tag, h in e["histograms"].items()}
    assert set(histograms) >= {"hidden/kernel/histogram", "out/bias/histogram"}
    kernel = histograms["hidden/kernel/histogram"]
    assert kernel["num"] == 32 and kernel["bucket"].sum() == 32
    images = {tag: i for e in events for tag, i in e["images"].items()}
    assert images["hidden/kernel/image"]["png"][:4] == b"\x89PNG"
    graph = [e["graph"] for e in events if "graph" in e][0]
    assert [node[1] for node in graph][-2:] == ["hidden", "out"]


def test_tensorboards_own_reader_sees_the_scalars(tmp_path):
    accumulator_module = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    _, history = _fit(tmp_path, histogram_freq=1)
    train = accumulator_module.EventAccumulator(str(tmp_path / "train"))
    train.Reload()
    tags = train.Tags()
    assert "epoch_loss" in tags["scalars"] and "epoch_accuracy" in tags["scalars"]
    values = [event.value for event in train.Scalars("epoch_loss")]
    np.testing.assert_allclose(values, history["loss"], rtol=1e-6)
    assert "hidden/kernel/histogram" in tags["histograms"]
    assert tags["graph"]
    validation = accumulator_module.EventAccumulator(str(tmp_path / "validation"))
    validation.Reload()
    values = [event.value for event in validation.Scalars("epoch_loss")]
    np.testing.assert_allclose(values, history["val_loss"], rtol=1e-6)


def test_arguments():
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard("x", update_freq="sometimes")
    assert TensorBoard("x", update_freq="batch").update_freq == 1
    assert (
        tf.keras.callbacks.TensorBoard is TensorBoard
        if hasattr(tf.keras.callbacks, "TensorBoard")
        else True
    )
