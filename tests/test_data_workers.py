"""The input pipeline's worker machinery: PyDataset and generators in fit/evaluate/predict,
batches in order, errors in workers re-raised naming the batch, workers always shut down."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

import dendrite as keras
from dendrite.training.data_adapters.py_dataset_adapter import ordered_map

X = np.random.default_rng(0).random((60, 4)).astype("float32")
Y = (X.sum(axis=1) > 2).astype("int64")


class Batches(keras.utils.PyDataset):
    def __init__(self, n=6, fail_at=None, delay=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.fail_at, self.delay = n, fail_at, delay
        self.epochs_ended = 0

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if self.delay:  # later batches finish first: the order must still hold
            time.sleep(self.delay * (self.n - index))
        if index == self.fail_at:
            raise KeyError(f"no such file for batch {index}")
        rows = slice(index * 10, (index + 1) * 10)
        return X[rows], Y[rows]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _model():
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _workers_alive():
    return [t for t in threading.enumerate() if t.name.startswith("dendrite-pydataset")]


@pytest.mark.parametrize(
    "kwargs", [{}, {"workers": 3}, {"workers": 2, "use_multiprocessing": True}]
)
def test_ordered_map_keeps_the_order_whatever_finishes_first(kwargs):
    dataset = Batches(delay=0.002, **kwargs)
    got = list(
        ordered_map(
            dataset,
            iter(range(6)),
            kwargs.get("workers", 1),
            kwargs.get("use_multiprocessing", False),
            2,
            "test",
        )
    )
    assert [i for i, _ in got] == list(range(6))
    for i, (x, _) in got:
        np.testing.assert_array_equal(x, X[i * 10 : (i + 1) * 10])
    assert not _workers_alive()


@pytest.mark.parametrize(
    "kwargs", [{}, {"workers": 2}, {"workers": 2, "use_multiprocessing": True}]
)
def test_fit_on_a_pydataset_matches_fit_on_the_arrays(kwargs):
    keras.utils.set_random_seed(1)
    by_arrays = _model()
    by_arrays.fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    keras.utils.set_random_seed(1)
    by_dataset = _model()
    dataset = Batches(**kwargs)
    history = by_dataset.fit(dataset, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(by_arrays.get_weights(), by_dataset.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert len(history.history["loss"]) == 2 and dataset.epochs_ended == 2
    loss, acc = by_dataset.evaluate(Batches(**kwargs), verbose=0)
    np.testing.assert_allclose(loss, by_arrays.evaluate(X, Y, batch_size=10, verbose=0)[0])
    predictions = by_dataset.predict(Batches(**kwargs), verbose=0)
    np.testing.assert_allclose(predictions, by_arrays.predict(X, verbose=0), rtol=1e-6)
    assert not _workers_alive()


@pytest.mark.parametrize(
    "kwargs", [{}, {"workers": 2}, {"workers": 2, "use_multiprocessing": True}]
)
def test_an_error_in_a_worker_is_raised_again_naming_the_batch(kwargs):
    model = _model()
    with pytest.raises(KeyError, match="batch 3") as info:
        model.fit(Batches(fail_at=3, **kwargs), epochs=1, verbose=0)
    assert "no such file for batch 3" in str(info.value)
    assert not _workers_alive()


def _pool_children():
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p.is_alive()]


@pytest.mark.parametrize("kwargs", [{"workers": 2}, {"workers": 2, "use_multiprocessing": True}])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_workers_shut_down_when_the_step_raises_or_on_ctrl_c(kwargs, error):
    model = _model()
    calls = []

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            calls.append(batch)
            if batch == 1:
                raise error("stop here")

    with pytest.raises(error):
        model.fit(Batches(n=6, **kwargs), epochs=3, verbose=0, callbacks=[Stop()])
    assert calls == [0, 1]
    assert not _workers_alive()
    assert not _pool_children()


def test_steps_per_epoch_stops_early_and_shuffle_draws_batches_in_another_order():
    seen = []

    class Recording(Batches):
        def __getitem__(self, index):
            seen.append(index)
            return super().__getitem__(index)

    model = _model()
    model.fit(Recording(), epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)
    assert seen[1:] == [0, 1]  # batch 0 read once first, to build and check the model
    seen.clear()
    keras.utils.set_random_seed(3)
    model.fit(Recording(), epochs=1, shuffle=True, verbose=0)
    assert sorted(seen[1:]) == list(range(6)) and seen[1:] != list(range(6))


def test_generators_and_iterables_with_steps_and_running_out():
    model = _model()

    def batches():
        for i in range(6):
            yield X[i * 10 : (i + 1) * 10], Y[i * 10 : (i + 1) * 10]

    history = model.fit(batches(), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches(), epochs=3, steps_per_epoch=4, verbose=0)
    assert len(history.history["loss"]) == 2  # the second epoch got 2 of 4 batches, then stop

    class Again:  # an iterable (not an iterator) starts again each epoch
        def __iter__(self):
            return batches()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(Again(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(batches(), verbose=0).shape == (60, 2)
    assert len(model.evaluate(batches(), verbose=0)) == 2


def test_dict_inputs_and_keras_errors_for_arguments_that_cannot_apply():
    inputs = keras.layers.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy")

    def named():
        for i in range(3):
            yield {"features": X[i * 10 : (i + 1) * 10]}, Y[i * 10 : (i + 1) * 10]

    model.fit(named(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`y` should not be passed"):
        model.fit(Batches(), Y, verbose=0)
    with pytest.raises(ValueError, match="class_weight` is not supported for Python generator"):
        model.fit(named(), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="`validation_split` is only supported"):
        model.fit(Batches(), validation_split=0.2, verbose=0)


def test_bad_batches_are_named():
    class Bad(Batches):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            if index == 2:
                x = x.copy()
                x[0, 0] = np.nan
            return x, y

    with pytest.raises(ValueError, match="batch 2.*NaN"):
        _model().fit(Bad(), epochs=1, verbose=0)


def test_super_init_not_called_warns_as_keras_and_uses_defaults():
    class NoSuper(keras.utils.PyDataset):
        def __init__(self):
            self.n = 2

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return X[:10], Y[:10]

    with pytest.warns(UserWarning, match="should call `super"):
        _model().fit(NoSuper(), epochs=1, verbose=0)
    assert keras.utils.Sequence is keras.utils.PyDataset


class Numbered(keras.utils.PyDataset):
    """Batch i holds the value i; records the order batches are asked for."""

    def __init__(self, n=5, length_known=True, **kwargs):
        super().__init__(**kwargs)
        self.n, self.length_known = n, length_known

    def __len__(self):
        return self.n

    @property
    def num_batches(self):
        return self.n if self.length_known else None

    def __getitem__(self, index):
        if index >= self.n:
            raise IndexError(index)
        return np.full((2, 4), index, "float32"), np.full((2,), index % 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_py_dataset_with_steps_per_epoch_continues_its_pass_across_epochs(workers):
    """As Keras' iterator: 5 batches at 3 steps an epoch give epochs of batches 0-2, 3-4
    (with the "ran out of data" warning), then a new pass 0-2."""
    seen = []

    class Recording(keras.Model):
        def train_step(self, data):
            seen.append(int(np.asarray(data[0])[0, 0]))
            return super().train_step(data)

    inputs = keras.Input((4,))
    model = Recording(inputs, keras.layers.Dense(2, "softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy")
    dataset = Numbered(workers=workers)
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(dataset, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0)
    assert seen == [0, 1, 2, 3, 4, 0, 1, 2]
    seen.clear()
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(Numbered(workers=workers), epochs=3, steps_per_epoch=3, verbose=0)
    assert sorted(seen[:5]) == [0, 1, 2, 3, 4]  # one shuffled pass before a repeat
    seen.clear()
    model.fit(Numbered(workers=workers), epochs=2, shuffle=False, verbose=0)  # whole passes
    assert seen == [0, 1, 2, 3, 4] * 2
    seen.clear()
    model.fit(Numbered(length_known=False), epochs=2, steps_per_epoch=2, verbose=0)
    assert seen == [0, 1, 2, 3]  # unknown length: the numbering continues too
