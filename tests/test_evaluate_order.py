"""``evaluate``/``test_on_batch`` lists in Keras 3's order: the loss, each output's loss, then
the compiled metrics (a single-output model's in the order given; a multi-output model's
``<output>_<metric>`` ones sorted, as Keras appends them); and ``validation_freq`` as a list
of epochs. Each list entry is checked against ``return_dict`` by name."""

from __future__ import annotations

import numpy as np

import dendrite as keras


def _two_outputs():
    inputs = keras.Input((3,))
    first = keras.layers.Dense(1, name="z1")(inputs)
    second = keras.layers.Dense(1, name="a2", activation="sigmoid")(inputs)
    model = keras.Model(inputs, [first, second])
    model.compile("sgd", ["mse", "binary_crossentropy"], metrics=[None, ["accuracy", "mse"]])
    return model


def test_multi_output_losses_come_before_the_metrics():
    model = _two_outputs()
    rng = np.random.default_rng(0)
    x = rng.random((16, 3)).astype("float32")
    y = (rng.random((16, 1)) > 0.5).astype("float32")
    values = model.evaluate(x, [y, y], verbose=0)
    named = model.evaluate(x, [y, y], verbose=0, return_dict=True)
    order = ["loss", "z1_loss", "a2_loss", "a2_accuracy", "a2_mse"]
    assert values == [named[k] for k in order]
    batch = model.test_on_batch(x, [y, y])
    np.testing.assert_allclose(batch, [named[k] for k in order], rtol=1e-6)
    assert len(model.train_on_batch(x, [y, y])) == len(order)


def test_single_output_metrics_keep_their_order():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["mse", "accuracy", "mae"])
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    values = model.evaluate(x, y, verbose=0)
    named = model.evaluate(x, y, verbose=0, return_dict=True)
    assert values == [named[k] for k in ("loss", "mse", "accuracy", "mae")]


def test_validation_freq_as_a_list_of_epochs():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    history = model.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 3], verbose=0)
    assert len(history.history["val_loss"]) == 2 and len(history.history["loss"]) == 4
    import pytest

    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(x, y, epochs=1, validation_data=(x, y), validation_freq="often", verbose=0)
