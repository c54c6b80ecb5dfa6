"""compile / fit / evaluate / predict: Keras' behaviour, return values and errors."""

import numpy as np
import pytest

import dendrite as tf
from dendrite import layers


def blobs(n=256, features=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = (centers[y] + rng.normal(size=(n, features))).astype("float32")
    return x, y


def mlp(features=8, classes=3, hidden=16):
    return tf.keras.Sequential(
        [
            layers.Dense(hidden, activation="relu", input_shape=(features,)),
            layers.Dense(classes, activation="softmax"),
        ]
    )


def compiled(learning_rate=0.01, **kwargs):
    model = mlp(**kwargs)
    model.compile(
        optimizer=tf.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_fit_learns_and_returns_history():
    tf.utils.set_random_seed(0)
    x, y = blobs()
    model = compiled()
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert set(history.history) == {"loss", "accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.9 and loss < history.history["loss"][0]


def test_evaluate_return_forms():
    x, y = blobs(64)
    model = compiled()
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(result) == ["accuracy", "loss"]
    plain = mlp()
    plain.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_predict_shapes_and_batches():
    x, _ = blobs(70)
    model = compiled()
    out = model.predict(x, batch_size=32, verbose=0)
    assert out.shape == (70, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), out[:5], rtol=1e-6)
    assert model.predict(x[:1], verbose=0).shape == (1, 3)


def test_last_partial_batch_is_used():
    sizes = []

    class Sizes(tf.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            sizes.append(batch)

    x, y = blobs(10)
    model = compiled()
    seen = []
    original = model.train_step

    def counting_step(data):
        seen.append(len(data[0]))
        return original(data)

    model.train_step = counting_step
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[Sizes()])
    assert seen == [4, 4, 2] and sizes == [0, 1, 2]


def test_validation_split_takes_the_end_before_shuffling():
    tf.utils.set_random_seed(1)
    x, y = blobs(100)
    model = compiled()
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    val_loss, val_acc = model.evaluate(x[80:], y[80:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(val_acc)


def test_validation_data_and_keys():
    x, y = blobs(64)
    model = compiled()
    history = model.fit(x, y, epochs=2, validation_data=(x[:16], y[:16]), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_same_seed_gives_identical_weights():
    x, y = blobs()

    def run():
        tf.utils.set_random_seed(42)
        model = tf.Sequential(
            [
                layers.Dense(16, activation="relu", input_shape=(8,)),
                layers.Dropout(0.3),
                layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_train_and_test_on_batch():
    x, y = blobs(32)
    model = compiled()
    loss, acc = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}


def test_zero_sample_weights_leave_weights_unchanged():
    x, y = blobs(32)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, sample_weight=np.zeros(32), epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_class_weight_changes_training():
    x, y = blobs(64)
    results = []
    for weights in (None, {0: 10.0, 1: 1.0, 2: 1.0}):
        tf.utils.set_random_seed(0)
        model = mlp()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, class_weight=weights, verbose=0, shuffle=False)
        results.append(model.get_weights()[0])
    assert not np.allclose(results[0], results[1])


def test_class_weight_and_sample_weight_together_are_refused_as_keras_does():
    x, y = blobs(16)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ValueError, match="You cannot `class_weight` and `sample_weight`"):
        model.fit(x, y, class_weight={0: 2.0}, sample_weight=np.ones(16), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_steps_per_epoch_and_initial_epoch():
    x, y = blobs(64)
    model = compiled()
    history = model.fit(x, y, epochs=3, initial_epoch=1, steps_per_epoch=1, verbose=0)
    assert history.epoch == [1, 2]


def test_full_batch_gradient_descent_follows_the_documents_rule():
    """One SGD step on the whole data set is w <- w - lr * dL/dw (document 4.3)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = rng.normal(size=(20, 1)).astype("float32")
    model = tf.Sequential([layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer=tf.optimizers.SGD(learning_rate=0.1), loss="mse")
    kernel, bias = model.get_weights()
    residual = x @ kernel + bias - y
    grad_kernel = 2 * x.T @ residual / len(x)
    grad_bias = 2 * residual.sum(axis=0) / len(x)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.1 * grad_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.1 * grad_bias, rtol=1e-5, atol=1e-6)


def test_custom_training_loop_with_gradient_tape():
    tf.utils.set_random_seed(0)
    x, y = blobs(128)
    model = mlp()
    loss_fn = tf.losses.SparseCategoricalCrossentropy()
    optimizer = tf.optimizers.Adam(0.01)
    losses = []
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_custom_loss_function_trains():
    def my_mse(y_true, y_pred):
        return tf.ops.mean(tf.ops.square(y_pred - y_true), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0]])).astype("float32")
    model = tf.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=tf.optimizers.SGD(0.1), loss=my_mse)
    history = model.fit(x, y, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.01


def test_regularizer_penalty_is_part_of_the_training_loss():
    x, y = blobs(32)
    model = tf.Sequential(
        [layers.Dense(3, input_shape=(8,), kernel_regularizer=tf.regularizers.L2(1.0))]
    )
    model.compile(optimizer="sgd", loss="mse")
    targets = np.zeros((32, 3), dtype="float32")
    kernel = model.get_weights()[0]
    logs = model.test_on_batch(x, targets, return_dict=True)
    data_loss = np.mean((model.predict(x, verbose=0) - targets) ** 2)
    assert logs["loss"] == pytest.approx(data_loss + np.square(kernel).sum(), rel=1e-5)


def test_summary_lists_layers_and_totals(capsys):
    model = mlp(features=784, classes=10, hidden=128)
    model.summary()
    text = capsys.readouterr().out
    assert "(None, 128)" in text and "(None, 10)" in text
    assert "Total params: 101,770" in text and "Non-trainable params: 0" in text
    assert model.count_params() == 101770


def test_summary_after_lazy_build(capsys):
    model = tf.Sequential([layers.Dense(4), layers.Dense(2)])
    model(np.ones((3, 5), dtype="float32"))
    model.summary()
    assert "(None, 4)" in capsys.readouterr().out


def test_sequential_add_pop_and_input():
    model = tf.Sequential()
    model.add(tf.Input(shape=(5,)))
    model.add(layers.Dense(3))
    assert model.built and model.layers[0].kernel.shape == (5, 3)
    model.add(layers.Dense(2))
    model.pop()
    assert len(model.layers) == 1
    with pytest.raises(ValueError, match="Layer"):
        model.add("dense")


def test_verbose_outputs(capsys):
    x, y = blobs(64)
    model = compiled()
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 2 and "\r" not in out
    assert out.count("loss:") == 2 and "accuracy:" in out
    model.fit(x, y, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "\r" not in out and "2/2" in out
    model.evaluate(x, y, verbose=2)
    assert "loss:" in capsys.readouterr().out


# --- bad input: clear errors before any weight changes ------------------------------------


def assert_untouched(model, before):
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mismatched_lengths():
    x, y = blobs(32)
    model = compiled()
    before = model.get_weights()
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        model.fit(x, y[:-1], verbose=0)
    assert_untouched(model, before)


def test_wrong_feature_dimension_names_layer_and_shapes():
    x, y = blobs(32, features=9)
    model = compiled()
    before = model.get_weights()
    with pytest.raises(ValueError) as info:
        model.fit(x, y, verbose=0)
    message = str(info.value)
    assert model.layers[0].name in message and "8" in message and "9)" in message
    assert_untouched(model, before)


def test_sparse_label_out_of_range():
    x, y = blobs(32)
    y = y.copy()
    y[-1] = 3
    model = compiled()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"label value of 3.*\[0, 3\)"):
        model.fit(x, y, verbose=0, batch_size=4)
    assert_untouched(model, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_x(bad):
    x, y = blobs(32)
    x[5, 2] = bad
    model = compiled()
    before = model.get_weights()
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(x, y, verbose=0)
    assert_untouched(model, before)


def test_unknown_names_list_valid_ones():
    model = mlp()
    with pytest.raises(ValueError, match="adam"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropyy")
    with pytest.raises(ValueError, match="accuracy"):
        model.compile(optimizer="adam", loss="mse", metrics=["accuracyy"])


def test_fit_before_compile():
    x, y = blobs(8)
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(x, y, verbose=0)


def test_y_without_a_compiled_loss():
    """As Keras: targets are accepted without a compiled loss (add_loss or an own
    compute_loss may use them); with no loss at all, the first step fails with Keras'
    message, before any weight changes."""
    x, y = blobs(8)
    model = mlp()
    model.compile(optimizer="adam")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"No loss to compute. Provide a `loss` argument"):
        model.fit(x, y, verbose=0)
    assert_untouched(model, before)


def test_fit_ends_on_the_moving_averages_with_use_ema():
    """As in Keras, fit finishes by overwriting the weights with the optimizer's moving
    averages (finalize_variable_values) when use_ema is set; callbacks during training see
    the raw weights, and on_train_end already sees the averaged ones."""
    seen = {}

    class Capture(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["epoch_end"] = [w.copy() for w in self.model.get_weights()]

        def on_train_end(self, logs=None):
            seen["train_end"] = [w.copy() for w in self.model.get_weights()]

    tf.utils.set_random_seed(0)
    x, y = blobs(n=64)
    model = mlp()
    optimizer = tf.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Capture()])
    averages = [a.data for a in optimizer._averages]
    for final, average, raw in zip(model.get_weights(), averages, seen["epoch_end"]):
        np.testing.assert_array_equal(final, average)
        assert not np.array_equal(final, raw)
    for final, at_end in zip(model.get_weights(), seen["train_end"]):
        np.testing.assert_array_equal(final, at_end)


def test_fit_without_use_ema_keeps_the_last_weights():
    tf.utils.set_random_seed(0)
    x, y = blobs(n=64)
    model = compiled()
    weights = []

    class Capture(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights[:] = [w.copy() for w in self.model.get_weights()]

    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Capture()])
    for final, last in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(final, last)
