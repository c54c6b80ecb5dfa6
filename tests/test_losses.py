"""Regression/hinge/divergence losses, the Loss base class, reductions and ``losses.get``."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import losses, ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck


@pytest.fixture
def floatx64():
    """Loss classes cast arrays to floatx (Keras); value checks against float64 references
    run with floatx float64."""
    from dendrite import config

    config.set_floatx("float64")
    yield
    config.set_floatx("float32")


RNG = np.random.default_rng(7)
EPS = 1e-7
SHAPES = [(6,), (5, 3), (2, 4, 3)]


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _signed(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def _normalize(x, axis):
    return x / np.maximum(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), EPS)


# name -> (function, numpy reference per sample, positive inputs?)
REFERENCES = {
    "mean_squared_error": (losses.mean_squared_error, lambda y, p: np.mean((y - p) ** 2, -1)),
    "mean_absolute_error": (losses.mean_absolute_error, lambda y, p: np.mean(np.abs(y - p), -1)),
    "mean_absolute_percentage_error": (
        losses.mean_absolute_percentage_error,
        lambda y, p: 100 * np.mean(np.abs(y - p) / np.maximum(np.abs(y), EPS), -1),
    ),
    "mean_squared_logarithmic_error": (
        losses.mean_squared_logarithmic_error,
        lambda y, p: np.mean(
            (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(y, EPS) + 1)) ** 2, -1
        ),
    ),
    "huber": (
        losses.huber,
        lambda y, p: np.mean(
            np.where(np.abs(p - y) <= 1, 0.5 * (p - y) ** 2, np.abs(p - y) - 0.5), -1
        ),
    ),
    "log_cosh": (losses.log_cosh, lambda y, p: np.mean(np.log(np.cosh(p - y)), -1)),
    "kl_divergence": (
        losses.kl_divergence,
        lambda y, p: np.sum(
            np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1)), -1
        ),
    ),
    "poisson": (losses.poisson, lambda y, p: np.mean(p - y * np.log(p + EPS), -1)),
    "cosine_similarity": (
        losses.cosine_similarity,
        lambda y, p: -np.sum(_normalize(y, -1) * _normalize(p, -1), -1),
    ),
    "hinge": (losses.hinge, lambda y, p: np.mean(np.maximum(1 - _signed(y) * p, 0), -1)),
    "squared_hinge": (
        losses.squared_hinge,
        lambda y, p: np.mean(np.maximum(1 - _signed(y) * p, 0) ** 2, -1),
    ),
    "categorical_hinge": (
        losses.categorical_hinge,
        lambda y, p: np.maximum(np.max((1 - y) * p, -1) - np.sum(y * p, -1) + 1, 0),
    ),
}


def _inputs(name, shape):
    if name in ("kl_divergence", "poisson", "mean_squared_logarithmic_error"):
        return RNG.random(shape) + 0.05, RNG.random(shape) + 0.05
    if name in ("hinge", "squared_hinge", "categorical_hinge"):
        return RNG.integers(0, 2, size=shape).astype(float), RNG.standard_normal(shape)
    return RNG.standard_normal(shape), RNG.standard_normal(shape) * 2


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_function_values(name, shape):
    fn, reference = REFERENCES[name]
    y, p = _inputs(name, shape)
    out = fn(y, p)
    assert out.shape == shape[:-1]
    np.testing.assert_allclose(out.data, reference(y, p), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_function_gradients(name):
    fn, _ = REFERENCES[name]
    y, p = _inputs(name, (4, 3))
    if name == "huber":  # keep away from the kink at |e| = delta
        p = y + np.where(RNG.random((4, 3)) < 0.5, 0.3, 2.0) * np.sign(RNG.standard_normal((4, 3)))
    if name in ("hinge", "squared_hinge"):
        p = np.where(np.abs(1 - _signed(y) * p) < 0.05, p + 0.2, p)
    gradcheck(lambda t: fn(y, t), p, name=name)


def test_loss_classes_match_functions(floatx64):
    pairs = [
        (losses.MeanSquaredError(), losses.mean_squared_error),
        (losses.MeanAbsoluteError(), losses.mean_absolute_error),
        (losses.MeanAbsolutePercentageError(), losses.mean_absolute_percentage_error),
        (losses.MeanSquaredLogarithmicError(), losses.mean_squared_logarithmic_error),
        (losses.Huber(delta=1.0), losses.huber),
        (losses.LogCosh(), losses.log_cosh),
        (losses.KLDivergence(), losses.kl_divergence),
        (losses.Poisson(), losses.poisson),
        (losses.CosineSimilarity(), losses.cosine_similarity),
        (losses.Hinge(), losses.hinge),
        (losses.SquaredHinge(), losses.squared_hinge),
        (losses.CategoricalHinge(), losses.categorical_hinge),
    ]
    y = RNG.random((5, 3)) + 0.1
    p = RNG.random((5, 3)) + 0.1
    for loss, fn in pairs:
        np.testing.assert_allclose(loss(y, p).data, np.mean(fn(y, p).data), rtol=1e-12)


def test_huber_delta():
    y, p = np.zeros((2, 3)), np.array([[0.5, 2.0, -3.0], [0.1, 0.0, 1.5]])
    e = np.abs(p - y)
    expected = np.mean(np.where(e <= 2.0, 0.5 * e**2, 2.0 * e - 2.0), -1).mean()
    np.testing.assert_allclose(losses.Huber(delta=2.0)(y, p).data, expected)
    assert losses.Huber(delta=2.0).get_config()["delta"] == 2.0


def test_log_cosh_large_errors_finite():
    out = losses.log_cosh(np.zeros(3), np.array([1000.0, -1000.0, 0.0]))
    np.testing.assert_allclose(out.data, (2000 - 2 * np.log(2)) / 3)


def test_cosine_zero_vector_is_finite():
    """Near 0, x / max(|x|, eps) = x / eps: value 0, gradient finite (no NaN from 1/|x|)."""
    p = Tensor(np.zeros((1, 3)), requires_grad=True)
    out = losses.cosine_similarity(np.ones((1, 3)), p)
    out.sum().backward()
    assert float(out.data[0]) == 0.0
    assert np.all(np.isfinite(p.grad))


def test_hinge_keeps_signed_labels():
    y = np.array([[-1.0, 1.0, 1.0]])
    p = np.array([[0.3, -0.2, 2.0]])
    np.testing.assert_allclose(losses.hinge(y, p).data, [np.mean([1.3, 1.2, 0.0])])


# --- reductions and sample weights ---------------------------------------------------------
def _per_sample_mse(y, p):
    return np.mean((y - p) ** 2, -1)


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 2)])
def test_reductions(shape, floatx64):
    y, p = RNG.standard_normal(shape), RNG.standard_normal(shape)
    per = _per_sample_mse(y, p)
    w = RNG.random(shape[0])
    w_full = w.reshape((-1,) + (1,) * (per.ndim - 1))
    cases = {
        "sum_over_batch_size": (per.mean(), (per * w_full).sum() / per.size),
        "mean": (per.mean(), (per * w_full).sum() / per.size),
        "sum": (per.sum(), (per * w_full).sum()),
        "mean_with_sample_weight": (
            per.mean(),
            (per * w_full).sum() / np.broadcast_to(w_full, per.shape).sum(),
        ),
        "none": (per, per * w_full),
        None: (per, per * w_full),
    }
    for reduction, (plain, weighted) in cases.items():
        loss = losses.MeanSquaredError(reduction=reduction)
        np.testing.assert_allclose(loss(y, p).data, plain, rtol=1e-12)
        np.testing.assert_allclose(loss(y, p, sample_weight=w).data, weighted, rtol=1e-12)


def test_sample_weight_shapes(floatx64):
    y, p = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    per = _per_sample_mse(y, p)
    loss = losses.MeanSquaredError()
    # (n, 1) weights are squeezed; a scalar weighs everything; zero weights do not change n
    w = np.array([1.0, 0.0, 2.0, 0.5])
    np.testing.assert_allclose(loss(y, p, sample_weight=w[:, None]).data, (per * w).mean())
    np.testing.assert_allclose(loss(y, p, sample_weight=3.0).data, 3 * per.mean())
    np.testing.assert_allclose(loss(y, p, sample_weight=np.zeros(4)).data, 0.0)
    with pytest.raises(ValueError, match="sample_weight"):
        loss(y, p, sample_weight=np.ones(3))


def test_mean_with_sample_weight_zero_weights():
    loss = losses.MeanSquaredError(reduction="mean_with_sample_weight")
    assert float(loss(np.ones((2, 2)), np.zeros((2, 2)), sample_weight=[0.0, 0.0])) == 0.0


def test_invalid_reduction():
    with pytest.raises(ValueError, match="Invalid reduction 'avg'"):
        losses.MeanSquaredError(reduction="avg")


def test_y_true_conversions_and_dtypes():
    p32 = RNG.standard_normal((3, 2)).astype(np.float32)
    y = [[1, 0], [0, 1], [1, 1]]
    ref = _per_sample_mse(np.array(y, np.float64), p32.astype(np.float64)).mean()
    for y_true in (y, np.array(y), np.array(y, np.float64), Tensor(np.array(y))):
        out = losses.MeanSquaredError()(y_true, p32)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, ref, rtol=1e-6)
    # Keras casts arrays to floatx; a float64 Tensor keeps its dtype (float64 models).
    assert losses.MeanSquaredError()(y, p32.astype(np.float64)).dtype == np.float32
    assert losses.MeanSquaredError()(y, Tensor(p32.astype(np.float64))).dtype == np.float64
    assert losses.MeanSquaredError(dtype="float64")(y, p32).dtype == np.float64
    # a list of Python floats as y_pred becomes floatx
    assert losses.mean_squared_error([1.0, 2.0], [1.5, 2.5]).dtype == np.float32


def test_rank_alignment():
    """(n,) targets against (n, 1) predictions are compared element by element."""
    y = np.array([1.0, 2.0, 3.0])
    p = np.array([[1.5], [2.0], [2.0]])
    np.testing.assert_allclose(losses.MeanSquaredError()(y, p).data, (0.25 + 0 + 1) / 3)
    np.testing.assert_allclose(losses.mean_squared_error(y, p).data, [0.25, 0, 1])


def test_loss_is_differentiable_end_to_end():
    p = Tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    y = RNG.standard_normal((4, 3))
    w = RNG.random(4)
    losses.MeanSquaredError()(y, p, sample_weight=w).backward()
    np.testing.assert_allclose(p.grad, 2 * (p.data - y) / 3 * w[:, None] / 4, rtol=1e-12)
    gradcheck(
        lambda t: losses.Huber(reduction="sum")(y, t, sample_weight=w), p.data * 3, name="huber"
    )


def test_keras_mask_on_predictions():
    y, p = RNG.standard_normal((2, 4, 3)), RNG.standard_normal((2, 4, 3))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
    pred = Tensor(p)
    pred._keras_mask = mask
    per = _per_sample_mse(y, p)
    np.testing.assert_allclose(losses.MeanSquaredError()(y, pred).data, per[mask].mean())
    np.testing.assert_allclose(
        losses.MeanSquaredError(reduction="sum")(y, pred).data, per[mask].sum()
    )


# --- custom losses, get, config -------------------------------------------------------------
def custom_loss(y_true, y_pred):
    return ops.mean(ops.abs(y_true - y_pred) ** 3, axis=-1)


def test_custom_function_loss(floatx64):
    assert losses.get(custom_loss) is custom_loss
    wrapped = losses.LossFunctionWrapper(custom_loss)
    assert wrapped.name == "custom_loss"
    y, p = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    np.testing.assert_allclose(wrapped(y, p).data, np.mean(np.abs(y - p) ** 3))
    gradcheck(lambda t: wrapped(y, t), p, name="custom")


def test_custom_loss_subclass(floatx64):
    class Scaled(losses.Loss):
        def __init__(self, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, y_true, y_pred):
            return self.scale * ops.sum(ops.square(y_true - y_pred), axis=-1)

    y, p = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2))
    loss = Scaled(reduction="sum")
    assert loss.name == "scaled"
    np.testing.assert_allclose(loss(y, p).data, 2 * np.sum((y - p) ** 2))
    with pytest.raises(NotImplementedError):
        losses.Loss()(y, p)


@pytest.mark.parametrize(
    "identifier,expected",
    [
        ("mse", losses.mean_squared_error),
        ("MSE", losses.mean_squared_error),
        ("mae", losses.mean_absolute_error),
        ("mape", losses.mean_absolute_percentage_error),
        ("msle", losses.mean_squared_logarithmic_error),
        ("kld", losses.kl_divergence),
        ("bce", losses.binary_crossentropy),
        ("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy),
        ("categorical_crossentropy", losses.categorical_crossentropy),
        ("huber", losses.huber),
        ("cosine_similarity", losses.cosine_similarity),
    ],
)
def test_get_names(identifier, expected):
    assert losses.get(identifier) is expected


def test_get_other_identifiers():
    assert losses.get(None) is None
    assert isinstance(losses.get("MeanSquaredError"), losses.MeanSquaredError)
    assert isinstance(losses.get(losses.Huber), losses.Huber)
    instance = losses.CategoricalCrossentropy(from_logits=True)
    assert losses.get(instance) is instance
    built = losses.get(
        {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True, "axis": 1}}
    )
    assert built.from_logits is True and built.axis == 1
    with pytest.raises(ValueError, match=r"Unknown loss 'msee'.*mean_squared_error"):
        losses.get("msee")
    with pytest.raises(ValueError, match="Unknown loss 'Nope'"):
        losses.get({"class_name": "Nope"})
    with pytest.raises(ValueError, match="Could not interpret"):
        losses.get(42)


@pytest.mark.parametrize("cls", losses.LOSS_CLASSES)
def test_config_round_trip(cls):
    loss = cls(reduction="sum", name="custom_name")
    config = loss.get_config()
    assert config["name"] == "custom_name" and config["reduction"] == "sum"
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == config
    assert losses.deserialize(losses.serialize(loss)).get_config() == config


def test_wrapper_config_round_trip():
    wrapped = losses.LossFunctionWrapper(losses.huber, name="h", delta=0.5)
    config = wrapped.get_config()
    assert config == {"name": "h", "reduction": "sum_over_batch_size", "fn": "huber", "delta": 0.5}
    clone = losses.LossFunctionWrapper.from_config(config)
    y, p = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2))
    np.testing.assert_allclose(clone(y, p).data, wrapped(y, p).data)
    assert losses.serialize(losses.mse)["config"] == "mean_squared_error"


def test_a_compiled_sparse_crossentropy_keeps_integer_labels():
    """compile(loss="sparse_categorical_crossentropy") wraps the function; the wrapper must
    not cast the labels to float on their way (float32 cannot hold every label above
    2**24, and the round trip costs passes over the batch)."""
    from dendrite.losses.loss import LossFunctionWrapper

    seen = []

    def spy(y_true, y_pred):
        seen.append(np.asarray(y_true.data if hasattr(y_true, "data") else y_true).dtype)
        return losses.sparse_categorical_crossentropy(y_true, y_pred)

    spy.integer_targets = True
    wrapper = LossFunctionWrapper(losses.sparse_categorical_crossentropy)
    assert wrapper.integer_targets
    labels = np.array([16_777_217, 3], np.int64)
    probs = np.full((2, 16_777_218), 1e-9, np.float32)
    probs[0, 16_777_217] = 1.0
    probs[1, 3] = 1.0
    loss = wrapper(labels, probs)
    assert float(loss.data) < 0.2  # the right class was picked: -log(~1) plus clipping
    LossFunctionWrapper(spy)(labels[1:], probs[1:, :8])
    assert seen and seen[0].kind == "i"
