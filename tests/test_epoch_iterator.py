"""The one epoch iterator behind fit, evaluate and predict, and the one step protocol."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dendrite as tf
from dendrite.training.epoch_iterator import EpochIterator

X = np.arange(10, dtype="float32").reshape(10, 1)
Y = np.arange(10)


def test_batches_are_packed_as_keras_packs_them_with_the_last_partial_one():
    iterator = EpochIterator(X, Y, batch_size=4)
    batches = list(iterator.enumerate_epoch())
    assert [step for step, _ in batches] == [0, 1, 2]
    assert [len(data) for _, data in batches] == [2, 2, 2]  # (x, y)
    assert [len(data[0]) for _, data in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([d[1] for _, d in batches]), Y)
    only_x = [data for _, data in EpochIterator(X, batch_size=4).enumerate_epoch()]
    assert all(len(data) == 1 for data in only_x)  # (x,)
    weighted = next(EpochIterator(X, Y, np.ones(10), batch_size=4).enumerate_epoch())[1]
    assert len(weighted) == 3  # (x, y, sample_weight)


def _epochs_of_labels(iterator: EpochIterator, epochs: int) -> list:
    """Each epoch's batches of labels, and whether it warned that the data ran out."""
    seen = []
    for _ in range(epochs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels = [data[1].tolist() for _, data in iterator.enumerate_epoch()]
        seen.append((labels, any("ran out of data" in str(w.message) for w in caught)))
    return seen


def test_steps_per_epoch_continues_the_pass_as_keras_does():
    """Keras 3's iterator (checked with keras.src.trainers.epoch_iterator, 10 samples in
    batches of 3): an epoch of `steps_per_epoch` batches continues where the last one
    stopped; a pass that ends first ends the epoch with the "ran out of data" warning, and
    the next epoch starts a new pass."""
    first, second, last = [[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9]], [[9]]
    whole = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert _epochs_of_labels(EpochIterator(X, Y, batch_size=3, steps_per_epoch=2), 4) == [
        (first, False),
        (second, False),
        (first, False),
        (second, False),
    ]
    three = EpochIterator(X, Y, batch_size=3, steps_per_epoch=3)
    assert _epochs_of_labels(three, 4) == [(whole[:3], False), (last, True)] * 2
    too_many = EpochIterator(X, Y, batch_size=3, steps_per_epoch=5)
    assert too_many.num_batches == 4
    assert _epochs_of_labels(too_many, 2) == [(whole, True)] * 2
    # without steps_per_epoch every epoch is a whole pass
    assert _epochs_of_labels(EpochIterator(X, Y, batch_size=3), 2) == [(whole, False)] * 2


def test_an_epoch_stopped_early_resumes_after_its_last_batch():
    iterator = EpochIterator(X, Y, batch_size=3, steps_per_epoch=3)
    with iterator.enumerate_epoch() as epoch:
        next(epoch)  # training stopped after one batch
    assert _epochs_of_labels(iterator, 1) == [([[3, 4, 5], [6, 7, 8], [9]], False)]


def test_fit_with_steps_per_epoch_sees_every_sample_before_repeating_one():
    seen = []

    class Recording(tf.Model):
        def train_step(self, data):
            seen.append(np.asarray(data[1]).tolist())
            return super().train_step(data)

    inputs = tf.Input((1,))
    model = Recording(inputs, tf.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    y = Y.astype("float32")
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(X, y, batch_size=2, epochs=4, steps_per_epoch=2, shuffle=True, verbose=0)
    # epochs of 2, 2 and 1 batches (the pass ran out), then a new pass
    assert len(seen) == 7
    assert sorted(sum(seen[:5], [])) == list(range(10))
    assert len(set(sum(seen[5:], []))) == 4


def test_shuffling_draws_a_new_order_each_epoch_and_keeps_pairs_together():
    tf.utils.set_random_seed(0)
    iterator = EpochIterator(X, Y, batch_size=10, shuffle=True)
    (_, (x1, y1)), (_, (x2, y2)) = (
        next(iterator.enumerate_epoch()),
        next(iterator.enumerate_epoch()),
    )
    np.testing.assert_array_equal(x1[:, 0], y1)
    np.testing.assert_array_equal(x2[:, 0], y2)
    assert sorted(y1) == list(range(10)) and not np.array_equal(y1, y2)


def test_a_step_override_receives_packed_batches_and_its_logs_are_reported():
    seen = []

    class Counting(tf.Model):
        def test_step(self, data):
            x, y = data
            seen.append(len(x))
            return {"count": float(len(seen)), "nested": {"size": float(len(x))}}

    inputs = tf.Input((1,))
    model = Counting(inputs, tf.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    logs = model.evaluate(X, Y.astype("float32"), batch_size=4, verbose=0, return_dict=True)
    assert seen == [4, 4, 2]
    assert logs == {"count": 3.0, "size": 2.0}  # the last step's logs, flattened


def test_a_step_that_returns_no_dict_gets_a_clear_error():
    class Bad(tf.Model):
        def train_step(self, data):
            return 1.0

    inputs = tf.Input((1,))
    model = Bad(inputs, tf.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match=r"train_step\(data\) must return a dict"):
        model.fit(X, Y.astype("float32"), verbose=0)


def test_multi_output_logs_name_each_output_loss_in_keras_order():
    tf.utils.set_random_seed(0)
    inputs = tf.Input((1,))
    a = tf.layers.Dense(1, name="a")(inputs)
    b = tf.layers.Dense(1, name="b")(inputs)
    model = tf.Model(inputs, [a, b])
    model.compile(optimizer="sgd", loss=["mse", "mae"], metrics=[["mae"], ["mse"]])
    y = [Y.astype("float32"), Y.astype("float32")]
    logs = model.evaluate(X, y, verbose=0, return_dict=True)
    assert list(logs) == sorted(logs)
    assert {"loss", "a_loss", "b_loss", "a_mae", "b_mse"} == set(logs)
    values = model.evaluate(X, y, verbose=0)
    assert values[0] == pytest.approx(logs["loss"])
    assert logs["loss"] == pytest.approx(logs["a_loss"] + logs["b_loss"], rel=1e-5)
