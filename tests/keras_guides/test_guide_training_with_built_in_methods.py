"""The training & evaluation with built-in methods guide
(keras.io/guides/training_with_built_in_methods/), as our own programs: compile/fit/
evaluate/predict, string shortcuts, custom losses (functions and Loss subclasses),
custom metrics (Metric subclasses), add_loss in layers, the endpoint-layer pattern,
validation_split / validation_data, PyDataset, class and sample weights, several
inputs and outputs (loss lists, dicts, weights, None), callbacks (EarlyStopping,
ModelCheckpoint, own callbacks, restoring from checkpoints, TensorBoard) and learning
rate schedules."""

from __future__ import annotations

import os

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)
N_FEATURES, N_CLASSES = 12, 4


def build_classifier(k):
    inputs = k.Input(shape=(N_FEATURES,), name="digits")
    x = k.layers.Dense(16, activation="relu", name="dense_1")(inputs)
    x = k.layers.Dense(16, activation="relu", name="dense_2")(x)
    outputs = k.layers.Dense(N_CLASSES, activation="softmax", name="predictions")(x)
    return k.Model(inputs=inputs, outputs=outputs)


def build_image_timeseries_model(k):
    image_input = k.Input(shape=(8, 8, 3), name="img_input")
    timeseries_input = k.Input(shape=(None, 5), name="ts_input")
    x1 = k.layers.Conv2D(3, 3)(image_input)
    x1 = k.layers.GlobalMaxPooling2D()(x1)
    x2 = k.layers.Conv1D(3, 3)(timeseries_input)
    x2 = k.layers.GlobalMaxPooling1D()(x2)
    x = k.layers.concatenate([x1, x2])
    score_output = k.layers.Dense(1, name="score_output")(x)
    class_output = k.layers.Dense(3, name="class_output")(x)
    return k.Model(inputs=[image_input, timeseries_input], outputs=[score_output, class_output])


def _data(n=128):
    x = RNG.normal(size=(n, N_FEATURES)).astype("float32")
    y = x[:, :N_CLASSES].argmax(axis=1).astype("int64")
    return x, y


def _compiled(**overrides):
    model = build_classifier(keras)
    kwargs = dict(
        optimizer=keras.optimizers.RMSprop(learning_rate=3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    kwargs.update(overrides)
    model.compile(**kwargs)
    return model


def test_end_to_end_fit_evaluate_predict():
    keras.utils.set_random_seed(0)
    x, y = _data()
    x_val, y_val = _data(32)
    model = _compiled()
    history = model.fit(x, y, batch_size=16, epochs=4, validation_data=(x_val, y_val), verbose=0)
    assert sorted(history.history) == sorted(
        ["loss", "sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy"]
    )
    assert len(history.history["loss"]) == 4
    assert history.history["loss"][-1] < history.history["loss"][0]
    results = model.evaluate(x_val, y_val, batch_size=16, verbose=0)
    assert len(results) == 2
    predictions = model.predict(x_val[:3], verbose=0)
    assert predictions.shape == (3, N_CLASSES)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


def test_string_shortcuts():
    keras.utils.set_random_seed(0)
    x, y = _data(32)
    model = _compiled(
        optimizer="rmsprop",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(x, y, epochs=1, verbose=0)
    assert "sparse_categorical_accuracy" in history.history


def test_custom_loss_function():
    def custom_mean_squared_error(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    keras.utils.set_random_seed(0)
    x, y = _data(64)
    y_one_hot = ops.one_hot(y, num_classes=N_CLASSES)
    model = _compiled(optimizer="adam", loss=custom_mean_squared_error, metrics=None)
    history = model.fit(x, y_one_hot, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


class CustomMSE(keras.losses.Loss):
    def __init__(self, regularization_factor=0.1, name="custom_mse"):
        super().__init__(name=name)
        self.regularization_factor = regularization_factor

    def call(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
        reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
        return mse + reg * self.regularization_factor


def test_custom_loss_class():
    keras.utils.set_random_seed(0)
    x, y = _data(64)
    y_one_hot = keras.utils.to_categorical(y, N_CLASSES)
    model = _compiled(optimizer="adam", loss=CustomMSE(), metrics=None)
    history = model.fit(x, y_one_hot, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    value = CustomMSE(regularization_factor=0.0)(np.zeros((2, 3)), np.ones((2, 3)))
    np.testing.assert_allclose(float(value), 1.0, rtol=1e-6)


def test_loss_value_converts_with_numpy_asarray():
    value = CustomMSE(regularization_factor=0.0)(np.zeros((2, 3)), np.ones((2, 3)))
    np.testing.assert_allclose(np.asarray(value), 1.0, rtol=1e-6)


def test_loss_value_is_floatx():
    value = CustomMSE(regularization_factor=0.0)(np.zeros((2, 3)), np.ones((2, 3)))
    assert str(value.dtype).endswith("float32")


class CategoricalTruePositives(keras.metrics.Metric):
    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
        values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
        values = ops.cast(values, "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            values = ops.multiply(values, sample_weight)
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives

    def reset_state(self):
        self.true_positives.assign(0.0)


def test_custom_metric_class_standalone():
    metric = CategoricalTruePositives()
    metric.update_state(np.array([[0], [1], [2]]), np.eye(3, dtype="float32")[[0, 1, 0]])
    assert float(metric.result()) == 2.0
    metric.reset_state()
    assert float(metric.result()) == 0.0


class PlainTruePositives(keras.metrics.Metric):
    """The same metric with its state in a Python attribute, so that fit's handling of a
    Metric subclass is tested apart from add_variable."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.argmax(np.asarray(y_pred), axis=1).reshape(-1, 1)
        self.count += float(np.sum(np.asarray(y_true).astype(int) == y_pred))

    def result(self):
        return self.count

    def reset_state(self):
        self.count = 0.0


def test_custom_metric_class_in_fit():
    keras.utils.set_random_seed(0)
    x, y = _data(48)
    model = _compiled(metrics=[PlainTruePositives()])
    history = model.fit(x, y.reshape(-1, 1), batch_size=16, epochs=2, verbose=0)
    assert "categorical_true_positives" in history.history
    assert 0 <= history.history["categorical_true_positives"][-1] <= 48


class ActivityRegularizationLayer(layers.Layer):
    def call(self, inputs):
        self.add_loss(ops.sum(inputs) * 0.1)
        return inputs


def test_add_loss_in_a_layer_is_part_of_the_training_loss():
    inputs = keras.Input(shape=(N_FEATURES,))
    x = layers.Dense(8, activation="relu")(inputs)
    x = ActivityRegularizationLayer()(x)
    outputs = layers.Dense(N_CLASSES)(x)
    model = keras.Model(inputs, outputs)
    model(np.ones((2, N_FEATURES), "float32"))
    assert len(model.losses) == 1
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x_train, y_train = _data(32)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = model.predict(x_train, verbose=0)
    loss = model.evaluate(x_train, y_train, batch_size=32, verbose=0)
    assert loss > float(plain(y_train, logits))


class LogisticEndpoint(layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def call(self, targets, logits, sample_weights=None):
        self.add_loss(self.loss_fn(targets, logits, sample_weights))
        return ops.sigmoid(logits)


def test_endpoint_layer_model_trains_without_compiled_loss():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,), name="inputs")
    targets = keras.Input(shape=(4,), name="targets")
    logits = layers.Dense(4)(inputs)
    predictions = LogisticEndpoint(name="predictions")(targets, logits)
    model = keras.Model(inputs=[inputs, targets], outputs=predictions)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = {
        "inputs": RNG.random(size=(32, 3)).astype("float32"),
        "targets": RNG.random(size=(32, 4)).astype("float32"),
    }
    history = model.fit(data, epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_validation_split_holds_out_the_last_fraction():
    keras.utils.set_random_seed(0)
    x, y = _data(40)
    model = _compiled()
    seen = []

    class CountBatches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    history = model.fit(
        x, y, batch_size=8, validation_split=0.2, epochs=1, verbose=0, callbacks=[CountBatches()]
    )
    assert len(seen) == 4  # 32 training samples
    assert "val_loss" in history.history


def test_pydataset():
    class ExampleSequence(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return int(np.ceil(len(self.x) / self.batch_size))

        def __getitem__(self, idx):
            sl = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
            return self.x[sl], self.y[sl]

    x, y = _data(40)
    model = _compiled()
    history = model.fit(ExampleSequence(x, y, 8), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_generator_with_steps_per_epoch_and_validation_steps():
    keras.utils.set_random_seed(0)
    x, y = _data(64)

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i : i + 16], y[i : i + 16]

    model = _compiled()
    seen = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    history = model.fit(
        batches(),
        steps_per_epoch=3,
        epochs=2,
        validation_data=batches(),
        validation_steps=2,
        callbacks=[cb],
        verbose=0,
    )
    assert seen == [0, 1, 2, 0, 1, 2]
    assert len(history.history["val_loss"]) == 2


def test_class_weight_changes_the_loss():
    x, y = _data(32)
    model = _compiled()
    model.fit(x, y, epochs=1, verbose=0)
    weights = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    h1 = model.get_weights()
    model.set_weights(weights)
    class_weight = {0: 1.0, 1: 1.0, 2: 1.0, 3: 5.0}
    model.fit(x, y, class_weight=class_weight, epochs=1, batch_size=32, shuffle=False, verbose=0)
    h2 = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(h1, h2))


def test_sample_weight_scales_per_sample_losses():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, layers.Dense(1, kernel_initializer="zeros")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 2), "float32")
    y = np.array([[1.0], [1.0], [3.0], [3.0]], "float32")
    # Keras' sum_over_batch_size: sum(w * l) / batch size = (1 + 1) / 4
    loss = model.evaluate(x, y, sample_weight=np.array([1.0, 1.0, 0.0, 0.0]), verbose=0)
    np.testing.assert_allclose(loss, 0.5, rtol=1e-6)


def _multi_io_data(n=16):
    img = RNG.random(size=(n, 8, 8, 3)).astype("float32")
    ts = RNG.random(size=(n, 6, 5)).astype("float32")
    score = RNG.random(size=(n, 1)).astype("float32")
    cls = RNG.random(size=(n, 3)).astype("float32")
    return img, ts, score, cls


def test_multi_output_loss_and_metric_lists():
    model = build_image_timeseries_model(keras)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=[keras.losses.MeanSquaredError(), keras.losses.CategoricalCrossentropy()],
        metrics=[
            [
                keras.metrics.MeanAbsolutePercentageError(),
                keras.metrics.MeanAbsoluteError(),
            ],
            [keras.metrics.CategoricalAccuracy()],
        ],
    )
    img, ts, score, cls = _multi_io_data()
    history = model.fit([img, ts], [score, cls], batch_size=8, epochs=1, verbose=0)
    keys = set(history.history)
    assert {"loss", "score_output_loss", "class_output_loss"} <= keys
    assert {"score_output_mean_absolute_error", "class_output_categorical_accuracy"} <= keys


def test_multi_output_dicts_and_loss_weights():
    model = build_image_timeseries_model(keras)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "score_output": keras.losses.MeanSquaredError(),
            "class_output": keras.losses.CategoricalCrossentropy(),
        },
        metrics={
            "score_output": [keras.metrics.MeanAbsoluteError()],
            "class_output": [keras.metrics.CategoricalAccuracy()],
        },
        loss_weights={"score_output": 2.0, "class_output": 1.0},
    )
    img, ts, score, cls = _multi_io_data()
    logs = model.evaluate(
        {"img_input": img, "ts_input": ts},
        {"score_output": score, "class_output": cls},
        batch_size=16,
        return_dict=True,
        verbose=0,
    )
    expected = 2.0 * logs["score_output_loss"] + logs["class_output_loss"]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)


def test_output_without_loss():
    model = build_image_timeseries_model(keras)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=[None, keras.losses.CategoricalCrossentropy()],
    )
    img, ts, _, cls = _multi_io_data()
    history = model.fit([img, ts], [None, cls], batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_output_without_loss_dict():
    model = build_image_timeseries_model(keras)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={"class_output": keras.losses.CategoricalCrossentropy()},
    )
    img, ts, _, cls = _multi_io_data()
    history = model.fit([img, ts], {"class_output": cls}, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_early_stopping():
    x, y = _data(32)
    model = _compiled(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=1e-2, patience=2, verbose=0)
    ]
    history = model.fit(
        x, y, epochs=20, batch_size=16, validation_split=0.25, callbacks=callbacks, verbose=0
    )
    assert len(history.history["loss"]) == 3


def test_model_checkpoint_with_epoch_in_filename(tmp_path):
    x, y = _data(32)
    model = _compiled()
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            filepath=str(tmp_path / "mymodel_{epoch}.keras"),
            save_best_only=False,
            monitor="val_loss",
            verbose=0,
        )
    ]
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, callbacks=callbacks, verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["mymodel_1.keras", "mymodel_2.keras"]


def test_restart_from_latest_checkpoint(tmp_path):
    checkpoint_dir = tmp_path / "ckpt"
    checkpoint_dir.mkdir()

    def make_or_restore_model():
        checkpoints = [checkpoint_dir / name for name in os.listdir(checkpoint_dir)]
        if checkpoints:
            latest = max(checkpoints, key=os.path.getctime)
            return keras.models.load_model(latest), True
        return _compiled(), False

    x, y = _data(32)
    model, restored = make_or_restore_model()
    assert not restored
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            filepath=str(checkpoint_dir / "model-loss={loss:.2f}.keras"), save_freq=2
        )
    ]
    model.fit(x, y, epochs=1, batch_size=8, callbacks=callbacks, verbose=0)
    model2, restored = make_or_restore_model()
    assert restored
    assert model2.count_params() == model.count_params()


def test_own_callback_records_batch_losses():
    class LossHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs):
            self.per_batch_losses = []

        def on_batch_end(self, batch, logs):
            self.per_batch_losses.append(logs.get("loss"))

    x, y = _data(32)
    model = _compiled()
    history = LossHistory()
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[history], verbose=0)
    assert len(history.per_batch_losses) == 4
    assert all(np.isfinite(v) for v in history.per_batch_losses)


def test_learning_rate_schedule():
    initial_learning_rate = 0.1
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=2, decay_rate=0.5, staircase=True
    )
    np.testing.assert_allclose(float(lr_schedule(0)), 0.1)
    np.testing.assert_allclose(float(lr_schedule(3)), 0.05)
    np.testing.assert_allclose(float(lr_schedule(4)), 0.025)
    optimizer = keras.optimizers.RMSprop(learning_rate=lr_schedule)
    x, y = _data(32)
    model = _compiled(optimizer=optimizer)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert int(optimizer.iterations.numpy()) == 4
    np.testing.assert_allclose(float(optimizer.learning_rate), 0.025, rtol=1e-6)


def test_tensorboard_callback_exists(tmp_path):
    cb = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"), histogram_freq=0)
    assert isinstance(cb, keras.callbacks.Callback)


@pytest.mark.parametrize(
    "build", [build_classifier, build_image_timeseries_model], ids=["classifier", "multi_io"]
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
