"""Training and evaluation report the same loss for the same weights and data, for every
registered loss and every kind of output head (the architecture issue's first item: a
softmax's cross-entropy used to start from its logits only when the softmax was recorded,
so ``train_on_batch`` said 80.0 where ``evaluate`` said 16.12)."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import registry

RNG = np.random.default_rng(16)
# Large inputs saturate the softmax and sigmoid: clipped probabilities and exact logits
# then give very different numbers, which is what the old bug produced.
X = (RNG.standard_normal((12, 5)) * 30).astype("float32")
LABELS = RNG.integers(0, 3, 12)
ONE_HOT = np.eye(3, dtype="float32")[LABELS]


def _every_loss() -> list:
    found = {}
    for name, obj in registry.items("loss").items():
        if isinstance(obj, type) and obj.__name__ in ("Loss", "LossFunctionWrapper"):
            continue
        # sequence outputs (CTC) or integer labels over embeddings (Circle, generalized
        # cross-entropy): their own tests check train/evaluate against Keras
        if getattr(obj, "__name__", "") in (
            "CTC",
            "ctc",
            "Circle",
            "circle",
            "CategoricalGeneralizedCrossEntropy",
            "categorical_generalized_cross_entropy",
        ):
            continue  # sequence outputs (batch, T, classes): tests/test_losses_ctc.py checks it
        found.setdefault(id(obj), (name, obj))
    return sorted(found.values(), key=lambda pair: pair[0])


LOSSES = _every_loss()


def _targets(name: str, obj: object) -> np.ndarray:
    sparse = "sparse" in name.lower() or "Sparse" in getattr(obj, "__name__", "")
    return LABELS if sparse else ONE_HOT


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("name_and_loss", LOSSES, ids=[name for name, _ in LOSSES])
def test_train_and_evaluate_report_the_same_loss(name_and_loss, activation):
    name, loss = name_and_loss
    tf.utils.set_random_seed(3)
    model = tf.Sequential([tf.Input((5,)), tf.layers.Dense(3, activation=activation)])
    # A class is compiled as an instance, a function as itself.
    compiled = loss() if isinstance(loss, type) else loss
    model.compile(optimizer=tf.optimizers.SGD(learning_rate=0.0), loss=compiled)
    y = _targets(name, loss)
    before = [w.copy() for w in model.get_weights()]
    trained = model.train_on_batch(X, y)
    tested = model.test_on_batch(X, y)
    evaluated = model.evaluate(X, y, batch_size=len(X), verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)  # learning rate 0: the same weights throughout
    if not (name.lower() == "poisson" and activation == "linear"):
        assert np.isfinite(trained)  # (Poisson takes the log of a rate: negative is NaN)
    np.testing.assert_allclose(tested, trained, rtol=1e-6, err_msg=f"{name}, {activation}")
    np.testing.assert_allclose(evaluated, trained, rtol=1e-6, err_msg=f"{name}, {activation}")


def test_the_reported_case_softmax_dense_learning_rate_zero():
    tf.utils.set_random_seed(0)
    model = tf.Sequential([tf.Input((5,)), tf.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=tf.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    trained = model.train_on_batch(X, LABELS)
    assert model.test_on_batch(X, LABELS) == pytest.approx(trained, rel=1e-6)
    assert model.evaluate(X, LABELS, verbose=0) == pytest.approx(trained, rel=1e-6)
    # And it is the exact cross-entropy of the logits (no probability was clipped).
    logits = X @ model.layers[0].kernel.numpy() + model.layers[0].bias.numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    exact = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(X)), LABELS]
    assert trained == pytest.approx(float(exact.mean()), rel=1e-5)


def test_validation_loss_equals_the_evaluated_loss():
    """What EarlyStopping and ReduceLROnPlateau see as val_loss is evaluate()'s number."""
    tf.utils.set_random_seed(1)
    model = tf.Sequential([tf.Input((5,)), tf.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=tf.optimizers.SGD(0.0), loss="categorical_crossentropy")
    history = model.fit(X, ONE_HOT, validation_data=(X, ONE_HOT), epochs=1, verbose=0)
    (val_loss,) = history.history["val_loss"]
    assert val_loss == pytest.approx(model.evaluate(X, ONE_HOT, verbose=0), rel=1e-6)
    assert val_loss == pytest.approx(history.history["loss"][0], rel=1e-6)
