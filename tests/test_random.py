"""keras.random (dendrite/random.py): distributions checked by their moments with fixed
seeds, seeding and determinism, shapes and dtypes, argument errors, the dropout gradient,
and a layer that owns a SeedGenerator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dendrite import _settings
from dendrite import random as drandom
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.testing import gradcheck
from dendrite.utils import set_random_seed

N = 20_000


def _np(t: Tensor) -> np.ndarray:
    assert isinstance(t, Tensor)
    return t.numpy()


# --- distributions -------------------------------------------------------------------------


def test_normal_moments():
    x = _np(drandom.normal((N,), mean=2.0, stddev=3.0, seed=11))
    assert abs(x.mean() - 2.0) < 0.1
    assert abs(x.std() - 3.0) < 0.1


def test_uniform_moments_and_bounds():
    x = _np(drandom.uniform((N,), minval=-1.0, maxval=3.0, seed=12))
    assert x.min() >= -1.0 and x.max() < 3.0
    assert abs(x.mean() - 1.0) < 0.05
    assert abs(x.var() - 16 / 12) < 0.05


def test_uniform_float16_excludes_maxval():
    x = _np(drandom.uniform((N,), minval=0.0, maxval=1.0, dtype="float16", seed=1))
    assert x.dtype == np.float16 and x.max() < 1.0


def test_truncated_normal_bounds_and_moments():
    mean, stddev = 1.0, 2.0
    x = _np(drandom.truncated_normal((N,), mean=mean, stddev=stddev, seed=13))
    assert x.min() >= mean - 2 * stddev and x.max() <= mean + 2 * stddev
    # variance of N(0,1) truncated to [-2, 2]: 1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2))
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    std = stddev * math.sqrt(1 - 4 * phi2 / mass)
    assert abs(x.mean() - mean) < 0.05
    assert abs(x.std() - std) < 0.05


def test_gamma_moments():
    x = _np(drandom.gamma((N,), alpha=3.0, seed=14))
    assert x.min() > 0
    assert abs(x.mean() - 3.0) < 0.1
    assert abs(x.var() - 3.0) < 0.2


def test_beta_moments():
    a, b = 2.0, 5.0
    x = _np(drandom.beta((N,), alpha=a, beta=b, seed=15))
    assert x.min() >= 0 and x.max() <= 1
    assert abs(x.mean() - a / (a + b)) < 0.01
    assert abs(x.var() - a * b / ((a + b) ** 2 * (a + b + 1))) < 0.002


def test_binomial_moments_and_broadcast_parameters():
    x = _np(drandom.binomial((N,), counts=10, probabilities=0.3, seed=16))
    assert x.dtype == np.float32  # floatx by default, as Keras
    assert np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 10
    assert abs(x.mean() - 3.0) < 0.05
    assert abs(x.var() - 2.1) < 0.1
    y = _np(drandom.binomial((N // 4, 2), counts=[4, 8], probabilities=[0.0, 1.0], seed=0))
    assert np.all(y[:, 0] == 0) and np.all(y[:, 1] == 8)


def test_categorical_frequencies_follow_softmax():
    logits = np.array([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0], [0.0, -np.inf, 0.0]])
    samples = _np(drandom.categorical(logits, N, seed=17))
    assert samples.shape == (3, N) and samples.dtype == np.int32
    finite = np.where(np.isinf(logits), -1e9, logits)
    probs = np.exp(finite) / np.exp(finite).sum(axis=1, keepdims=True)
    for row in range(3):
        freq = np.bincount(samples[row], minlength=3) / N
        np.testing.assert_allclose(freq, probs[row], atol=0.015)
    assert not np.any(samples[2] == 1)  # a class of probability 0 is never drawn


def test_randint_bounds_and_coverage():
    x = _np(drandom.randint((N,), minval=-2, maxval=3, seed=18))
    assert x.dtype == np.int32
    assert set(np.unique(x)) == {-2, -1, 0, 1, 2}
    assert _np(drandom.randint((4,), 0, 10, dtype="int64", seed=1)).dtype == np.int64


def test_shuffle_permutes_whole_slices():
    x = np.arange(40).reshape(10, 4)
    y = _np(drandom.shuffle(x, seed=19))
    assert not np.array_equal(x, y)
    np.testing.assert_array_equal(np.sort(y[:, 0]), x[:, 0])
    np.testing.assert_array_equal(y - y[:, :1], x - x[:, :1])  # rows stay intact
    z = _np(drandom.shuffle(x, axis=1, seed=19))
    np.testing.assert_array_equal(np.sort(z, axis=1), x)
    np.testing.assert_array_equal(z - z[:1], x - x[:1])  # columns stay intact


def test_shuffle_gradient_reaches_every_element():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = drandom.shuffle(x, seed=3)
    (y * Tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
    order = np.argsort(y.numpy()[:, 0] // 2).tolist()
    np.testing.assert_array_equal(x.grad, np.arange(6.0).reshape(3, 2)[order])


# --- dropout -------------------------------------------------------------------------------


def test_dropout_keeps_expectation_and_scales_kept_units():
    x = np.ones((N,), dtype="float32")
    y = _np(drandom.dropout(x, rate=0.25, seed=20))
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.015
    assert abs(y.mean() - 1.0) < 0.02


def test_dropout_noise_shape_shares_the_mask():
    x = np.ones((50, 3, 4), dtype="float32")
    y = _np(drandom.dropout(x, 0.5, noise_shape=(None, 1, 4), seed=21))
    assert np.all(y == y[:, :1, :])
    assert 0 < (y == 0).mean() < 1


def test_dropout_rate_zero_is_identity():
    x = Tensor(np.arange(4.0), requires_grad=True)
    assert drandom.dropout(x, 0.0) is x


def test_dropout_gradcheck():
    x = np.random.default_rng(0).standard_normal((4, 5))
    gradcheck(lambda t: drandom.dropout(t, 0.4, seed=5), x, name="dropout")
    gradcheck(lambda t: drandom.dropout(t, 0.4, seed=5), x, mode="elementwise", name="dropout")
    gradcheck(
        lambda t: drandom.dropout(t, 0.3, noise_shape=(1, 5), seed=6), x, name="dropout_shared"
    )


def test_dropout_gradient_is_mask_over_keep():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    y = drandom.dropout(x, 0.5, seed=8)
    y.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(x.grad, y.numpy())  # m / (1 - rate) for x = 1


# --- seeds and determinism -----------------------------------------------------------------


@pytest.mark.parametrize(
    "draw",
    [
        lambda s: drandom.normal((3, 2), seed=s),
        lambda s: drandom.uniform((5,), seed=s),
        lambda s: drandom.truncated_normal((5,), seed=s),
        lambda s: drandom.randint((5,), 0, 100, seed=s),
        lambda s: drandom.categorical(np.zeros((2, 5)), 6, seed=s),
        lambda s: drandom.shuffle(np.arange(10), seed=s),
        lambda s: drandom.dropout(np.ones(10), 0.5, seed=s),
        lambda s: drandom.gamma((5,), 2.0, seed=s),
        lambda s: drandom.binomial((5,), 20, 0.5, seed=s),
        lambda s: drandom.beta((5,), 2.0, 2.0, seed=s),
    ],
)
def test_seeding_int_is_stateless_generator_advances(draw):
    np.testing.assert_array_equal(_np(draw(7)), _np(draw(7)))
    gen = drandom.SeedGenerator(7)
    first, second = _np(draw(gen)), _np(draw(gen))
    np.testing.assert_array_equal(first, _np(draw(7)))  # state [7, 0] is the int seed 7
    assert not np.array_equal(first, second)
    again = drandom.SeedGenerator(7)
    np.testing.assert_array_equal(_np(draw(again)), first)
    np.testing.assert_array_equal(_np(draw(again)), second)


def test_seed_generator_state_and_next():
    gen = drandom.SeedGenerator(3)
    assert gen.state.dtype == np.uint32 and not gen.state.trainable
    assert _np(gen.next()).tolist() == [3, 0]
    assert _np(gen.next()).tolist() == [3, 1]
    assert gen.state.numpy().tolist() == [3, 2]
    gen.next(ordered=False)
    assert gen.state.numpy().tolist() == [(4 * 5387) % 933199, (3 * 5387) % 933199]


def test_seed_generator_config_round_trip_and_names():
    gen = drandom.SeedGenerator(seed=42)
    assert gen.get_config() == {"seed": 42}
    clone = drandom.SeedGenerator.from_config(gen.get_config())
    np.testing.assert_array_equal(
        _np(drandom.normal((4,), seed=gen)), _np(drandom.normal((4,), seed=clone))
    )
    assert drandom.SeedGenerator(name="mine").name == "mine"
    assert drandom.SeedGenerator().get_config() == {"seed": None}
    assert drandom.SeedGenerator().name.startswith("seed_generator")


def _program() -> list[np.ndarray]:
    gen = drandom.SeedGenerator()  # initial state from the global generator
    return [
        _np(drandom.normal((3,))),
        _np(drandom.uniform((3,), seed=gen)),
        _np(drandom.dropout(np.ones(8), 0.5)),
        _np(drandom.randint((3,), 0, 1000, seed=gen)),
        _np(drandom.shuffle(np.arange(8))),
    ]


def test_set_random_seed_reproduces_a_whole_program():
    set_random_seed(123)
    first = _program()
    set_random_seed(123)
    second = _program()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    set_random_seed(124)
    assert not np.array_equal(_program()[1], first[1])


def test_unseeded_draws_differ():
    assert not np.array_equal(_np(drandom.normal((8,))), _np(drandom.normal((8,))))


# --- shapes and dtypes ---------------------------------------------------------------------


def test_shapes_and_default_dtypes():
    assert drandom.normal(4).shape == (4,)
    assert drandom.normal([2, 3]).dtype == np.float32
    assert drandom.uniform((2, 0)).shape == (2, 0)
    assert drandom.gamma((2, 3), alpha=np.array([1.0, 2.0, 3.0])).shape == (2, 3)
    assert drandom.normal((2,), dtype="float64").dtype == np.float64
    _settings.set_floatx("float64")
    try:
        for draw in (drandom.normal, drandom.uniform, drandom.truncated_normal):
            assert draw((2,)).dtype == np.float64
        assert drandom.beta((2,), 1.0, 1.0).dtype == np.float64
    finally:
        _settings.set_floatx("float32")


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: drandom.normal((2,), seed="a"), "must be either an integer or an instance"),
        (lambda: drandom.normal((2,), seed=1.5), "must be either an integer or an instance"),
        (lambda: drandom.normal((2,), seed=-1), r"integer in \[0, 2\*\*32\)"),
        (lambda: drandom.SeedGenerator(seed="x"), "must be an integer"),
        (lambda: drandom.SeedGenerator(seed=1, color=2), "Unrecognized keyword arguments"),
        (lambda: drandom.normal((2, -1)), "non-negative integers"),
        (lambda: drandom.normal((2,), dtype="int32"), "requires a floating point `dtype`"),
        (lambda: drandom.uniform((2,), dtype="int32"), "requires a floating point `dtype`"),
        (lambda: drandom.randint((2,), 0, 5, dtype="float32"), "requires an integer `dtype`"),
        (lambda: drandom.randint((2,), 5, 5), "requires maxval > minval"),
        (lambda: drandom.randint((2,), 5, 1), "requires maxval > minval"),
        (lambda: drandom.categorical(np.zeros(3), 2), "should be a 2-D tensor"),
        (lambda: drandom.categorical(np.zeros((1, 3)), 2.5), "must be an integer"),
        (lambda: drandom.dropout(np.ones(3), 1.0), r"float value in \[0, 1\)"),
        (lambda: drandom.dropout(np.ones(3), -0.1), r"float value in \[0, 1\)"),
        (lambda: drandom.dropout(np.ones((2, 3)), 0.5, noise_shape=(2,)), "rank of the inputs"),
        (lambda: drandom.dropout(np.ones((2, 3)), 0.5, noise_shape=(2, 2)), "does not broadcast"),
        (lambda: drandom.gamma((2,), alpha=0.0), "`alpha` > 0"),
        (lambda: drandom.beta((2,), 1.0, -1.0), "`beta` > 0"),
        (lambda: drandom.binomial((2,), 5, 1.5), r"`probabilities` in \[0, 1\]"),
        (lambda: drandom.binomial((2,), 2.5, 0.5), "non-negative integers"),
        (lambda: drandom.shuffle(np.ones(3), axis=1), "out of bounds"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- a layer that owns a SeedGenerator -----------------------------------------------------


class NoisyDropout(Layer):
    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = drandom.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if training:
            return drandom.dropout(inputs, self.rate, seed=self.seed_generator)
        return inputs


def test_layer_owning_a_seed_generator():
    x = Tensor(np.ones((4, 6), dtype="float32"), requires_grad=True)
    layer = NoisyDropout(0.5, seed=9)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x.numpy())
    first = layer(x, training=True)
    second = layer(x, training=True)
    assert not np.array_equal(first.numpy(), second.numpy())  # the generator advanced
    assert layer.weights == []  # the seed state is not a weight, as in Keras
    first.sum().backward()
    np.testing.assert_array_equal(x.grad, first.numpy())  # mask / (1 - rate)
    same = NoisyDropout(0.5, seed=9)
    np.testing.assert_array_equal(_np(same(x, training=True)), first.numpy())
    set_random_seed(5)
    a = _np(NoisyDropout(0.5)(x, training=True))
    set_random_seed(5)
    np.testing.assert_array_equal(_np(NoisyDropout(0.5)(x, training=True)), a)
