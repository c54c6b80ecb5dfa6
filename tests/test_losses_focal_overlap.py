"""CategoricalFocalCrossentropy, Dice and Tversky (Keras 3's): against Keras 3 itself (in a
subprocess, on the same arrays, every reduction and with sample weights), by finite
differences in float64, through compile by name, and in a ``.keras`` file Keras loads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

L = tf.keras.losses

# name -> (class name, constructor arguments): the same in both frameworks.
CASES = {
    "focal": ("CategoricalFocalCrossentropy", {}),
    "focal_options": (
        "CategoricalFocalCrossentropy",
        {"alpha": [0.2, 0.5, 0.3, 0.1], "gamma": 1.5, "label_smoothing": 0.1},
    ),
    "focal_logits": ("CategoricalFocalCrossentropy", {"from_logits": True, "reduction": "sum"}),
    "dice": ("Dice", {}),
    "dice_per_sample": ("Dice", {"axis": [1, 2], "reduction": "none"}),
    "tversky": ("Tversky", {"alpha": 0.3, "beta": 0.7}),
    "tversky_per_sample": ("Tversky", {"axis": [1, 2], "reduction": "mean"}),
}


def _arrays() -> dict:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=6).astype("float32")
    onehot = np.eye(4, dtype="float32")[rng.integers(0, 4, 6)]
    masks = (rng.random((6, 5, 3)) > 0.5).astype("float32")
    return {
        "probabilities": probabilities,
        "logits": rng.standard_normal((6, 4)).astype("float32") * 2,
        "onehot": onehot,
        "masks": masks,
        "soft": rng.random((6, 5, 3)).astype("float32"),
        "weights": rng.random(6).astype("float32"),
    }


def _inputs(name: str, arrays: dict) -> tuple:
    if name.startswith("focal"):
        pred = arrays["logits"] if "logits" in name else arrays["probabilities"]
        return arrays["onehot"], pred
    return arrays["masks"], arrays["soft"]


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    arrays = dict(np.load(root + "/arrays.npz", allow_pickle=False))
    out = {}
    for name, (cls, kwargs, y_name, p_name) in cases.items():
        loss = getattr(keras.losses, cls)(**kwargs)
        y, p = arrays[y_name], arrays[p_name]
        plain = np.asarray(loss(y, p)).tolist()
        weighted = None
        if kwargs.get("axis") is not None or cls == "CategoricalFocalCrossentropy":
            weighted = np.asarray(loss(y, p, sample_weight=arrays["weights"])).tolist()
        out[name] = [plain, weighted]
    json.dump(out, open(root + "/keras.json", "w"))
    """
)


def test_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    arrays = _arrays()
    np.savez(tmp_path / "arrays.npz", **arrays)
    cases = {}
    for name, (cls, kwargs) in CASES.items():
        y_name = "onehot" if name.startswith("focal") else "masks"
        p_name = "logits" if "logits" in name else "probabilities" if y_name == "onehot" else "soft"
        cases[name] = [cls, kwargs, y_name, p_name]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    run_keras_side(KERAS_SIDE, tmp_path)
    expected = json.loads((tmp_path / "keras.json").read_text())
    for name, (cls, kwargs) in CASES.items():
        loss = getattr(L, cls)(**kwargs)
        y, p = _inputs(name, arrays)
        plain, weighted = expected[name]
        np.testing.assert_allclose(
            np.asarray(loss(y, p)), plain, rtol=1e-5, atol=1e-6, err_msg=name
        )
        if weighted is not None:
            got = np.asarray(loss(y, p, sample_weight=arrays["weights"]))
            np.testing.assert_allclose(got, weighted, rtol=1e-5, atol=1e-6, err_msg=name)


def test_docstring_values_and_gamma_zero():
    y = np.array([[0, 1, 0], [0, 0, 1]], "float64")
    p = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]], "float64")
    focal = np.asarray(L.categorical_focal_crossentropy(y, p, alpha=1.0, gamma=0.0))
    np.testing.assert_allclose(focal, np.asarray(L.categorical_crossentropy(y, p)), rtol=1e-12)
    # Dice is Tversky at alpha = beta = 0.5.
    rng = np.random.default_rng(3)
    masks, soft = (rng.random((4, 6)) > 0.5).astype("float64"), rng.random((4, 6))
    np.testing.assert_allclose(
        np.asarray(L.dice(masks, soft, axis=1)), np.asarray(L.tversky(masks, soft, axis=1))
    )
    total = 2 * (masks * soft).sum() / (masks.sum() + soft.sum() + 1e-7)
    assert float(np.asarray(L.dice(masks, soft))) == pytest.approx(1 - total, rel=1e-12)


def test_gradients_by_finite_differences():
    rng = np.random.default_rng(4)
    y = np.eye(3)[rng.integers(0, 3, 4)]
    logits = rng.standard_normal((4, 3))
    gradcheck(
        lambda z: L.categorical_focal_crossentropy(y, z, from_logits=True, alpha=[0.2, 0.3, 0.5]),
        logits,
    )
    masks = (rng.random((3, 5)) > 0.5).astype("float64")
    soft = rng.uniform(0.1, 0.9, (3, 5))
    gradcheck(lambda q: L.dice(masks, q, axis=1), soft)
    gradcheck(lambda q: L.tversky(masks, q, alpha=0.3, beta=0.7), soft)


def test_names_configs_and_a_model_that_trains():
    for cls in (L.CategoricalFocalCrossentropy, L.Dice, L.Tversky):
        loss = cls(name="mine") if cls is not L.Dice else cls(axis=[1], name="mine")
        config = loss.get_config()
        assert type(L.deserialize(L.serialize(loss))) is cls
        assert cls.from_config(config).get_config() == config
    assert L.get("dice") is L.dice and L.get("Tversky").__class__ is L.Tversky
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((8,)), tf.keras.layers.Dense(4, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="categorical_focal_crossentropy")
    x = np.random.default_rng(5).standard_normal((64, 8)).astype("float32")
    y = np.eye(4, dtype="float32")[np.argmax(x[:, :4], axis=1)]
    history = model.fit(x, y, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.warns(UserWarning, match="binary_focal_crossentropy"):
        L.categorical_focal_crossentropy(np.ones((2, 1)), np.ones((2, 1)) * 0.5)
