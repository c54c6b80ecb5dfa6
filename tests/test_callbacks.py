"""Keras callbacks: EarlyStopping, ModelCheckpoint, CSVLogger, the learning-rate callbacks,
TerminateOnNaN, LambdaCallback, PlotHistory and BackupAndRestore (in process)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks BackupAndRestore uses)
from dendrite.saving import load_model
from dendrite.training.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    PlotHistory,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def _data(n: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _model(optimizer="adam", seed: int = 0):
    tf.utils.set_random_seed(seed)
    model = tf.Sequential(
        [
            tf.layers.Dense(8, activation="relu", input_shape=(4,)),
            tf.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Script(Callback):
    """Feeds made-up values of ``monitor`` to the callbacks after it."""

    def __init__(self, key: str, values: list[float]) -> None:
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.weights: list = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


# --- EarlyStopping ----------------------------------------------------------------------------
def test_early_stopping_restores_the_best_epochs_weights():
    x, y = _data()
    model = _model()
    recorder = Recorder()
    losses = [1.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
    stop = EarlyStopping(
        monitor="val_score", mode="min", patience=2, restore_best_weights=True, verbose=1
    )
    history = model.fit(
        x, y, epochs=7, verbose=0, callbacks=[Script("val_score", losses), recorder, stop]
    )
    assert history.epoch == [0, 1, 2, 3]  # best at epoch 1, two epochs without improvement
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), recorder.weights[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), recorder.weights[3]))


def test_early_stopping_modes_min_delta_baseline_and_warmup():
    x, y = _data()
    accuracy = [0.5, 0.6, 0.605, 0.606, 0.61, 0.9]
    stop = EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=1)
    history = _model().fit(
        x, y, epochs=6, verbose=0, callbacks=[Script("val_accuracy", accuracy), stop]
    )
    assert stop.monitor_op is np.greater  # 'auto' on an accuracy maximises
    assert history.epoch == [0, 1, 2]
    values = [0.5, 0.6, 0.4, 0.3, 0.2, 0.15]
    stop = EarlyStopping(monitor="loss_x", mode="min", baseline=0.1, patience=2)
    history = _model().fit(x, y, epochs=6, verbose=0, callbacks=[Script("loss_x", values), stop])
    assert history.epoch == [0, 1]  # the improvements never beat the baseline: wait grows
    stop = EarlyStopping(monitor="loss_x", mode="min", patience=2)
    history = _model().fit(x, y, epochs=6, verbose=0, callbacks=[Script("loss_x", values), stop])
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    stop = EarlyStopping(monitor="loss_x", mode="min", patience=0, start_from_epoch=3)
    history = _model().fit(
        x, y, epochs=6, verbose=0, callbacks=[Script("loss_x", [9, 9, 9, 1, 2, 3]), stop]
    )
    assert history.epoch == [0, 1, 2, 3, 4]


def test_early_stopping_on_val_loss_and_unknown_monitor():
    x, y = _data()
    stop = EarlyStopping(patience=1)
    _model().fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[stop])
    assert np.isfinite(stop.best)
    with pytest.warns(UserWarning, match="not available"):
        _model().fit(
            x, y, epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="nope", mode="min")]
        )
    with pytest.raises(ValueError, match="mode='max'"):
        _model().fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[Script("weird", [1.0]), EarlyStopping(monitor="weird")],
        )


# --- ModelCheckpoint --------------------------------------------------------------------------
def test_model_checkpoint_formats_paths_and_saves_full_models(tmp_path):
    x, y = _data()
    model = _model()
    pattern = str(tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.2f}.dendrite")
    history = model.fit(
        x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[ModelCheckpoint(pattern)]
    )
    names = sorted(os.listdir(tmp_path / "ckpt"))
    expected = [f"{e + 1:02d}-{v:.2f}.dendrite" for e, v in enumerate(history.history["val_loss"])]
    assert names == sorted(expected)
    last = load_model(tmp_path / "ckpt" / expected[-1])
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))
    assert int(last.optimizer.iterations.data) == int(model.optimizer.iterations.data)


def test_model_checkpoint_save_best_only_weights(tmp_path):
    x, y = _data()
    model = _model()
    recorder = Recorder()
    path = tmp_path / "best.weights.safetensors"
    scores = [0.3, 0.2, 0.25, 0.1, 0.4]
    checkpoint = ModelCheckpoint(
        path,
        monitor="val_metric",
        mode="min",
        save_best_only=True,
        save_weights_only=True,
        verbose=1,
    )
    saves = []
    spy = LambdaCallback(
        on_epoch_end=lambda epoch, logs: saves.append(
            os.path.getmtime(path) if path.exists() else None
        )
    )
    model.fit(
        x,
        y,
        epochs=5,
        verbose=0,
        callbacks=[Script("val_metric", scores), recorder, checkpoint, spy],
    )
    fresh = _model(seed=3)
    fresh.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), recorder.weights[3]))
    assert checkpoint.best == 0.1


def test_model_checkpoint_every_n_batches_and_bad_paths(tmp_path):
    x, y = _data(n=40)
    model = _model()
    pattern = str(tmp_path / "b{epoch}-{batch}.weights.safetensors")
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[ModelCheckpoint(pattern, save_freq=2, save_weights_only=True)],
    )
    found = sorted(os.listdir(tmp_path))
    assert found == sorted(
        [
            "b1-2.weights.safetensors",
            "b1-4.weights.safetensors",
            "b2-1.weights.safetensors",
            "b2-3.weights.safetensors",
            "b2-5.weights.safetensors",
        ]
    )
    with pytest.raises(ValueError, match="weights.safetensors"):
        ModelCheckpoint(tmp_path / "w.h5", save_weights_only=True)
    with pytest.raises(ValueError, match=".dendrite"):
        ModelCheckpoint(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "m.keras", save_freq="often")
    with pytest.raises(KeyError, match="Failed to format"):
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "{nope}.keras"))]
        )


# --- CSVLogger --------------------------------------------------------------------------------
def test_csv_logger_writes_keras_format_and_appends(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    history = _model().fit(
        x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path)]
    )
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history.history["loss"], rel=1e-12)
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(path, append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines.count(lines[0]) == 1  # one header only
    CSVLogger(path, separator=";").set_model(_model())
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    # Without validation Keras still writes val_ columns, as NA (every row fits one header).
    header, row = path.read_text().splitlines()
    assert header == "epoch;accuracy;loss;val_accuracy;val_loss"
    assert row.split(";")[-2:] == ["NA", "NA"]


# --- learning rate ------------------------------------------------------------------------------
def test_learning_rate_scheduler_both_signatures():
    x, y = _data()
    model = _model(tf.optimizers.SGD(0.1))
    seen = []
    history = model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[
            LearningRateScheduler(lambda epoch, lr: lr * 0.5),
            LambdaCallback(
                on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate)
            ),
        ],
    )
    assert seen == pytest.approx([0.05, 0.025, 0.0125])
    assert history.history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))],
    )
    assert model.optimizer.learning_rate == pytest.approx(0.02)
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: "fast")]
        )


def test_reduce_lr_on_plateau_patience_cooldown_min_lr():
    x, y = _data()
    model = _model(tf.optimizers.SGD(1.0))
    losses = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    reduce = ReduceLROnPlateau(monitor="val_x", factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    history = model.fit(x, y, epochs=7, verbose=0, callbacks=[Script("val_x", losses), reduce])
    # Keras's rules: epoch 0 sets best; 1 reduces (1.0 -> 0.5) and starts a cooldown of 1,
    # which epoch 2 uses up before counting (so it reduces again); 3 reduces to
    # max(0.125, min_lr); the rate is logged before each decision
    assert history.history["learning_rate"] == pytest.approx([1.0, 1.0, 0.5, 0.25, 0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=2.0)


# --- small ones -----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_stops_at_the_bad_batch(capsys):
    x, y = _data()
    x[20:] = 1e30  # overflows the loss to inf/NaN within the first epoch
    model = _model(tf.optimizers.SGD(1e10))
    batches = []
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[
            TerminateOnNaN(),
            LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
        ],
    )
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    assert len(batches) < 18


def test_lambda_callback_hooks_and_unknown_hook():
    x, y = _data()
    events = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_end=lambda epoch, logs: events.append(f"epoch{epoch}"),
        on_train_end=lambda logs: events.append("end"),
        on_test_begin=lambda logs: events.append("test"),
    )
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    model.evaluate(x, y, verbose=0, callbacks=[callback])
    assert events == ["begin", "epoch0", "epoch1", "end", "test"]
    assert isinstance(callback, LambdaCallback)
    with pytest.raises(ValueError, match="unknown hook"):
        LambdaCallback(on_something=print)


def test_plot_history_writes_the_curve_every_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _data()
    path = tmp_path / "curve.png"
    stamps = []
    _model().fit(
        x,
        y,
        epochs=2,
        verbose=0,
        validation_split=0.25,
        callbacks=[
            PlotHistory(path),
            LambdaCallback(on_epoch_end=lambda e, logs: stamps.append(path.stat().st_size)),
        ],
    )
    assert path.read_bytes().startswith(b"\x89PNG") and len(stamps) == 2


# --- BackupAndRestore ---------------------------------------------------------------------------
class Interrupt(Callback):
    def __init__(self, epoch: int, batch: int | None = None) -> None:
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if self.batch is None and epoch == self.epoch:
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def _dropout_model():
    tf.utils.set_random_seed(4)
    model = tf.Sequential(
        [
            tf.layers.Dense(8, activation="relu", input_shape=(4,)),
            tf.layers.Dropout(0.3),
            tf.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    "interrupt", [Interrupt(3), Interrupt(2, batch=3)], ids=["between", "mid-epoch"]
)
def test_backup_and_restore_resumes_bit_for_bit(tmp_path, interrupt):
    x, y = _data()
    reference = _dropout_model()
    reference.fit(x, y, epochs=5, batch_size=8, verbose=0)
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        _dropout_model().fit(
            x, y, epochs=5, batch_size=8, verbose=0, callbacks=[BackupAndRestore(backup), interrupt]
        )
    assert (backup / "latest.checkpoint").exists()
    resumed = _dropout_model()
    history = resumed.fit(
        x, y, epochs=5, batch_size=8, verbose=0, callbacks=[BackupAndRestore(backup)]
    )
    assert history.epoch[0] == interrupt.epoch
    assert all(np.array_equal(a, b) for a, b in zip(reference.get_weights(), resumed.get_weights()))
    assert int(resumed.optimizer.iterations.data) == int(reference.optimizer.iterations.data)
    assert not backup.exists()  # delete_checkpoint=True


def test_backup_and_restore_keeps_checkpoint_and_validates(tmp_path):
    x, y = _data()
    backup = tmp_path / "b"
    model = _dropout_model()
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[BackupAndRestore(backup, delete_checkpoint=False, save_freq=3)],
    )
    assert os.listdir(backup) == ["latest.checkpoint"]
    other = tf.Sequential([tf.layers.Dense(5, input_shape=(4,)), tf.layers.Dense(2)])
    other.compile("adam", "mse")
    with pytest.raises(dendrite.saving.ModelLoadError, match="expects shape"):
        other.fit(
            x, np.zeros((len(x), 2), "float32"), verbose=0, callbacks=[BackupAndRestore(backup)]
        )
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(backup, save_freq="sometimes")
    with pytest.raises(ValueError, match="Empty"):
        BackupAndRestore("")


def test_fit_validation_runs_the_callbacks_test_hooks_as_keras():
    """Keras' fit evaluates the validation data with its own callback list: on_test_begin,
    on_test_batch_* and on_test_end fire once per validation run, and the callbacks keep
    the training parameters (steps per epoch) they were given."""
    import dendrite as tf

    events = []

    class Recorder(tf.keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            events.append(("test_begin", self.params.get("steps")))

        def on_test_batch_end(self, batch, logs=None):
            events.append(("test_batch", batch))

        def on_test_end(self, logs=None):
            events.append(("test_end", sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x[:30],
        y[:30],
        batch_size=10,
        epochs=2,
        verbose=0,
        validation_data=(x[30:], y[30:]),
        validation_batch_size=5,
        callbacks=[Recorder()],
    )
    per_epoch = [
        ("test_begin", 3),  # the training steps per epoch: validation has 2 batches
        ("test_batch", 0),
        ("test_batch", 1),
        ("test_end", ["accuracy", "loss"]),
    ]
    assert events == per_epoch + [("epoch_end", 0)] + per_epoch + [("epoch_end", 1)]
