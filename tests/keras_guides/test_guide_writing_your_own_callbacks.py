"""The writing your own callbacks guide (keras.io/guides/writing_your_own_callbacks/),
as our own programs: every global, batch-level and epoch-level hook in fit, evaluate and
predict, the logs dict, self.model (get/set weights, stop_training), early stopping at
the minimum loss, and learning-rate scheduling through self.model.optimizer."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras

RNG = np.random.default_rng(0)


def build_model(k):
    model = k.Sequential([k.Input(shape=(6,)), k.layers.Dense(1)])
    return model


def _compiled(lr=0.1):
    model = build_model(keras)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=lr),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def _data(n=32):
    x = RNG.normal(size=(n, 6)).astype("float32")
    y = (x @ np.arange(6, dtype="float32").reshape(6, 1)) * 0.1
    return x, y


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(self, name, logs):
        self.calls.append((name, sorted((logs or {}).keys())))

    def on_train_begin(self, logs=None):
        self._record("train_begin", logs)

    def on_train_end(self, logs=None):
        self._record("train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._record(f"epoch_begin_{epoch}", logs)

    def on_epoch_end(self, epoch, logs=None):
        self._record(f"epoch_end_{epoch}", logs)

    def on_test_begin(self, logs=None):
        self._record("test_begin", logs)

    def on_test_end(self, logs=None):
        self._record("test_end", logs)

    def on_predict_begin(self, logs=None):
        self._record("predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._record("predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._record(f"train_batch_begin_{batch}", logs)

    def on_train_batch_end(self, batch, logs=None):
        self._record(f"train_batch_end_{batch}", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._record(f"test_batch_begin_{batch}", logs)

    def on_test_batch_end(self, batch, logs=None):
        self._record(f"test_batch_end_{batch}", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._record(f"predict_batch_begin_{batch}", logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._record(f"predict_batch_end_{batch}", logs)


def test_fit_calls_every_training_hook_in_order():
    x, y = _data(16)
    model = _compiled()
    rec = Recorder()
    model.fit(x, y, batch_size=8, epochs=1, validation_split=0.5, verbose=0, callbacks=[rec])
    names = [name for name, _ in rec.calls]
    assert names == [
        "train_begin",
        "epoch_begin_0",
        "train_batch_begin_0",
        "train_batch_end_0",
        "test_begin",
        "test_batch_begin_0",
        "test_batch_end_0",
        "test_end",
        "epoch_end_0",
        "train_end",
    ]
    logs = dict(rec.calls)
    assert logs["train_batch_end_0"] == ["loss", "mean_absolute_error"]
    assert logs["epoch_end_0"] == [
        "loss",
        "mean_absolute_error",
        "val_loss",
        "val_mean_absolute_error",
    ]


def test_evaluate_and_predict_hooks():
    x, y = _data(16)
    model = _compiled()
    rec = Recorder()
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[rec])
    assert [name for name, _ in rec.calls] == [
        "test_begin",
        "test_batch_begin_0",
        "test_batch_end_0",
        "test_batch_begin_1",
        "test_batch_end_1",
        "test_end",
    ]
    assert dict(rec.calls)["test_end"] == ["loss", "mean_absolute_error"]
    rec = Recorder()
    model.predict(x, batch_size=8, verbose=0, callbacks=[rec])
    assert [name for name, _ in rec.calls] == [
        "predict_begin",
        "predict_batch_begin_0",
        "predict_batch_end_0",
        "predict_batch_begin_1",
        "predict_batch_end_1",
        "predict_end",
    ]
    assert dict(rec.calls)["predict_batch_end_0"] == ["outputs"]


def test_logs_dict_carries_loss_and_metrics():
    class LossAndErrorRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batch_losses, self.epoch_mae = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.batch_losses.append(logs["loss"])

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_mae.append(logs["mean_absolute_error"])

    x, y = _data(32)
    model = _compiled(lr=0.05)
    cb = LossAndErrorRecorder()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb])
    assert len(cb.batch_losses) == 12
    np.testing.assert_allclose(cb.epoch_mae, history.history["mean_absolute_error"])
    assert cb.batch_losses[-1] == pytest.approx(history.history["loss"][-1], rel=1e-5)


def test_callback_sees_model_and_params():
    seen = {}

    class Inspect(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["model"] = self.model
            seen["params"] = dict(self.params)

    x, y = _data(32)
    model = _compiled()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[Inspect()])
    assert seen["model"] is model
    assert seen["params"]["epochs"] == 2
    assert seen["params"]["steps"] == 4


class EarlyStoppingAtMinLoss(keras.callbacks.Callback):
    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        current = logs.get("loss")
        if np.less(current, self.best):
            self.best = current
            self.wait = 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                self.model.set_weights(self.best_weights)


def test_early_stopping_at_min_loss_restores_best_weights():
    x, y = _data(32)
    model = _compiled(lr=5.0)  # diverges: the loss rises after the first epochs
    cb = EarlyStoppingAtMinLoss(patience=1)
    history = model.fit(x, y, batch_size=8, epochs=30, verbose=0, callbacks=[cb])
    epochs_run = len(history.history["loss"])
    assert epochs_run < 30
    assert cb.stopped_epoch == epochs_run - 1
    for best, now in zip(cb.best_weights, model.get_weights()):
        np.testing.assert_array_equal(best, now)


LR_SCHEDULE = [(1, 0.05), (2, 0.01)]


def lr_schedule(epoch, lr):
    for start, value in LR_SCHEDULE:
        if epoch == start:
            return value
    return lr


class CustomLearningRateScheduler(keras.callbacks.Callback):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        scheduled_lr = self.schedule(epoch, lr)
        self.model.optimizer.learning_rate = scheduled_lr
        self.seen.append(float(np.asarray(self.model.optimizer.learning_rate)))


def test_learning_rate_scheduling_callback():
    x, y = _data(16)
    model = _compiled(lr=0.1)
    cb = CustomLearningRateScheduler(lr_schedule)
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[cb])
    np.testing.assert_allclose(cb.seen, [0.1, 0.05, 0.01, 0.01], rtol=1e-6)


def test_builtin_learning_rate_scheduler_and_csv_logger(tmp_path):
    x, y = _data(16)
    model = _compiled(lr=0.1)
    path = tmp_path / "log.csv"
    model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[
            keras.callbacks.LearningRateScheduler(lr_schedule),
            keras.callbacks.CSVLogger(str(path)),
        ],
    )
    np.testing.assert_allclose(float(np.asarray(model.optimizer.learning_rate)), 0.01)
    lines = path.read_text().strip().splitlines()
    assert lines[0].startswith("epoch") and len(lines) == 4


def test_same_structure_as_keras():
    assert_same_structure(build_model)
