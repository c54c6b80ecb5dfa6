"""The learning-rate range test on the design document's model (Dense 128 relu on 784
inputs, Dense 10 softmax, Adam, sparse categorical cross-entropy) with Fashion-MNIST."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import explain


def _data(count: int):
    try:
        (x, y), (xt, yt) = tf.keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # no local copy and no network
        pytest.skip(f"Fashion-MNIST is not available: {error}")
    x = x[:count].reshape(-1, 784).astype("float32") / 255.0
    xt = xt.reshape(-1, 784).astype("float32") / 255.0
    return x, y[:count], xt, yt


def _document_model():
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(128, activation="relu", input_shape=(784,)),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_range_test_suggests_adams_rate_and_leaves_the_model_unchanged(tmp_path):
    tf.keras.utils.set_random_seed(0)
    x, y, xt, yt = _data(12000)
    model = _document_model()
    model.fit(x[:64], y[:64], epochs=1, verbose=0)  # the optimizer now has state to keep
    weights = model.get_weights()
    optimizer = model.optimizer
    slots = [np.array(v.numpy(), copy=True) for v in optimizer.variables]

    result = explain.find_learning_rate(model, x, y, start=1e-7, end=100, steps=100)
    print(
        f"suggestion {result.suggestion:.2e}, min-loss rate / 10 {result.min_loss_rate:.2e}, "
        f"{len(result.rates)} steps, diverged {result.diverged}"
    )
    assert 1e-4 <= result.suggestion <= 1e-2  # within a factor of 10 of Adam's 1e-3
    assert result.diverged and len(result.rates) < 100  # stopped at divergence
    assert len(result.rates) == len(result.losses) == len(result.raw_losses)
    assert np.all(np.diff(np.log(result.rates)) > 0)

    # The model's weights, its optimizer and that optimizer's state are as before.
    assert model.optimizer is optimizer
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(slots, optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())

    pytest.importorskip("matplotlib")
    result.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


def test_training_at_the_suggestion_learns(tmp_path):
    tf.keras.utils.set_random_seed(0)
    x, y, xt, yt = _data(12000)
    model = _document_model()
    result = explain.find_learning_rate(model, x, y, steps=100)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(result.suggestion),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    print(f"test accuracy after 2 epochs on 12k images at {result.suggestion:.2e}: {accuracy:.4f}")
    assert accuracy > 0.80


@pytest.mark.slow
def test_the_document_program_at_the_suggestion_reaches_86_percent():
    tf.keras.utils.set_random_seed(0)
    x, y, xt, yt = _data(60000)
    model = _document_model()
    result = explain.find_learning_rate(model, x, y)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(result.suggestion),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=5, verbose=0)
    assert model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"] >= 0.86


def test_errors():
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled"):
        explain.find_learning_rate(model, np.zeros((8, 3)), np.zeros(8))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="start < end"):
        explain.find_learning_rate(model, np.zeros((8, 3)), np.zeros(8), start=1, end=0.1)
