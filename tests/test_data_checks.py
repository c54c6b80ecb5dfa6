"""Data that used to pass silently: NaN or inf in y or sample_weight, bad class weights,
empty evaluation, bad step counts, inputs without a batch axis; each gets a clear error
before any weight changes."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf

RNG = np.random.default_rng(12)
X = RNG.standard_normal((20, 3)).astype("float32")
LABELS = RNG.integers(0, 4, 20)
Y = RNG.standard_normal((20, 2)).astype("float32")


def _model(units=2, loss="mse"):
    tf.utils.set_random_seed(0)
    model = tf.Sequential([tf.Input((3,)), tf.layers.Dense(units)])
    model.compile(optimizer="sgd", loss=loss)
    return model


def _unchanged(model, call):
    before = [w.copy() for w in model.get_weights()]
    call()
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["y", "sample_weight"])
@pytest.mark.parametrize("method", ["fit", "train_on_batch", "evaluate", "test_on_batch"])
def test_nan_or_inf_in_targets_or_weights_is_refused(bad, where, method):
    model = _model()
    y, weights = Y.copy(), np.ones(20, "float32")
    (y if where == "y" else weights)[7] = bad
    kwargs = {"verbose": 0} if method in ("fit", "evaluate") else {}

    def run():
        with pytest.raises(ValueError, match=rf"{where} contains NaN or inf .*index \(7"):
            getattr(model, method)(X, y, sample_weight=weights, **kwargs)

    _unchanged(model, run)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_finite_values_whose_sum_overflows_are_accepted(dtype):
    """The check sums first and looks value by value only when the sum is not finite: huge
    finite values (their sum infinite) must still pass, NaN and inf anywhere must not."""
    from dendrite.training.data import check_finite

    huge = np.full((4, 3), np.finfo(dtype).max, dtype=dtype)
    huge[1, 1] = -np.finfo(dtype).max  # and one of the other sign
    check_finite(huge)
    check_finite([huge[::-1], {"a": huge.T}])  # strided views, nested structures
    for bad in (np.nan, np.inf, -np.inf):
        broken = huge.copy()
        broken[2, 0] = bad
        with pytest.raises(ValueError, match=r"x contains NaN or inf .*index \(2, 0\)"):
            check_finite(broken)


def test_nan_in_x_is_refused_before_any_weight_changes():
    model = _model()
    x = X.copy()
    x[3, 2] = np.nan

    def run():
        with pytest.raises(ValueError, match=r"x contains NaN or inf .*index \(3, 2\)"):
            model.fit(x, Y, verbose=0)

    _unchanged(model, run)


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({-1: 2.0}, "class indices"),
        ({"a": 2.0}, "class indices"),
        ({1.5: 2.0}, "class indices"),
        ({0: -1.0}, "finite weight"),
        ({0: np.nan}, "finite weight"),
        ([1.0, 2.0], "must be a dict"),
    ],
)
def test_bad_class_weights_are_refused(class_weight, message):
    model = _model(4, "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=message):
        model.fit(X, LABELS, class_weight=class_weight, verbose=0)


def test_classes_a_class_weight_does_not_name_weigh_one():
    from dendrite.training.data import class_weights_to_sample_weights

    weights = class_weights_to_sample_weights(np.array([0, 1, 2, 3]), {1: 5.0})
    np.testing.assert_array_equal(weights, [1.0, 5.0, 1.0, 1.0])


def test_evaluate_on_no_samples_is_an_error_not_zeros():
    model = _model()
    with pytest.raises(ValueError, match="no samples"):
        model.evaluate(X[:0], Y[:0], verbose=0)


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_step_counts_must_be_positive_integers(steps):
    model = _model()
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.fit(X, Y, steps_per_epoch=steps, verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.evaluate(X, Y, steps=steps, verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.predict(X, steps=steps, verbose=0)


def test_x_none_or_a_scalar_gets_a_clear_message():
    model = _model()
    with pytest.raises(ValueError, match="received x=None"):
        model.fit(None, Y, verbose=0)
    with pytest.raises(ValueError, match="batch of samples"):
        model.fit(3.0, Y[:1], verbose=0)


def test_a_dict_for_a_sequential_model_names_the_problem():
    model = _model()
    with pytest.raises(ValueError, match="takes one input tensor; received a dict"):
        model.predict({"x": X}, verbose=0)
