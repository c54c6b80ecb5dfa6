"""The Keras 3 metrics added with condition counts, rates at a target rate, F-scores, R2,
IoU and the hinge / divergence / cosine / log-cosh metrics, against real Keras 3 run in its
own process (one subprocess for every case): two ``update_state`` batches without and with
``sample_weight``, the result after ``reset_state`` and the same batches again, names and
configs. Also ``get_config`` round trips and use in ``compile`` / ``fit`` / ``evaluate``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import dendrite as tf
from dendrite import metrics
from dendrite.testing.keras_side import run_keras_side

RNG = np.random.default_rng(11)
N1, N2 = 23, 17  # two batches of different sizes


def _pair(make):
    return make(N1), make(N2)


def _arrays() -> dict[str, np.ndarray]:
    """Every input, as float32 (int64 for class ids), one entry per batch: NAME_0, NAME_1."""
    out: dict[str, np.ndarray] = {}

    def put(name, make):
        for i, value in enumerate(_pair(make)):
            out[f"{name}_{i}"] = value

    def probs(n, k=3):
        p = RNG.random((n, k)).astype("float32")
        p[:2, 0] = [0.0, 1.0]  # the edges of the threshold grid
        p[2, -1] = 0.5
        return p

    def onehot(n, k):
        return np.eye(k, dtype="float32")[RNG.integers(0, k, n)]

    def scores(n, k):
        x = np.exp(RNG.normal(size=(n, k))).astype("float32")
        return (x / x.sum(1, keepdims=True)).astype("float32")

    put("bin3", lambda n: RNG.integers(0, 2, (n, 3)).astype("float32"))
    put("prob3", probs)
    put("bin1", lambda n: RNG.integers(0, 2, n).astype("float32"))
    put("prob1", lambda n: probs(n, 1)[:, 0].copy())
    put("onehot4", lambda n: onehot(n, 4))
    put("scores4", lambda n: scores(n, 4))
    put("multi4", lambda n: RNG.integers(0, 2, (n, 4)).astype("float32"))
    put("real3", lambda n: RNG.normal(size=(n, 3)).astype("float32"))
    put("near3", lambda n: RNG.normal(size=(n, 3)).astype("float32"))
    put("ids", lambda n: RNG.integers(-1, 5, n))  # 4 classes, some out of range
    put("pids", lambda n: RNG.integers(0, 5, n))
    put("pm1", lambda n: RNG.choice([-1.0, 1.0], (n, 3)).astype("float32"))
    put("pos3", lambda n: (RNG.random((n, 3)) * 3).astype("float32"))
    put("cube", lambda n: RNG.normal(size=(n, 3, 2)).astype("float32"))
    put("cube2", lambda n: RNG.normal(size=(n, 3, 2)).astype("float32"))
    put("weights", lambda n: (RNG.random(n) * 2).astype("float32"))
    put("intweights", lambda n: RNG.integers(0, 3, n).astype("float32"))
    put("intweights3", lambda n: RNG.integers(0, 3, (n, 3)).astype("float32"))
    for i in range(2):  # 'near3' is a noisy version of 'real3'
        out[f"near3_{i}"] = out[f"real3_{i}"] + 0.5 * out[f"near3_{i}"]
    return out


# id: (class, kwargs, y_true, y_pred, weights)
CASES: dict[str, tuple[str, dict, str, str, str]] = {
    "tp": ("TruePositives", {}, "bin3", "prob3", "weights"),
    "fp_list": ("FalsePositives", {"thresholds": [0.2, 0.5, 0.8]}, "bin3", "prob3", "weights"),
    "tn_even": ("TrueNegatives", {"thresholds": [0.0, 0.5, 1.0]}, "bin3", "prob3", "weights"),
    "fn_one": ("FalseNegatives", {"thresholds": 0.3}, "bin1", "prob1", "weights"),
    "p_at_r": ("PrecisionAtRecall", {"recall": 0.6}, "bin1", "prob1", "weights"),
    "r_at_p": (
        "RecallAtPrecision",
        {"precision": 0.55, "num_thresholds": 7},
        "bin3",
        "prob3",
        "weights",
    ),
    "r_at_p_one": (
        "RecallAtPrecision",
        {"precision": 0.4, "num_thresholds": 1},
        "bin1",
        "prob1",
        "weights",
    ),
    "sens_at_spec": (
        "SensitivityAtSpecificity",
        {"specificity": 0.7, "class_id": 1},
        "bin3",
        "prob3",
        "weights",
    ),
    "spec_at_sens": (
        "SpecificityAtSensitivity",
        {"sensitivity": 0.5, "num_thresholds": 50},
        "bin1",
        "prob1",
        "weights",
    ),
    "f1_none": ("F1Score", {}, "onehot4", "scores4", "weights"),
    "f1_micro": ("F1Score", {"average": "micro"}, "onehot4", "scores4", "weights"),
    "f1_macro_thr": (
        "F1Score",
        {"average": "macro", "threshold": 0.3},
        "multi4",
        "scores4",
        "weights",
    ),
    "fbeta_weighted": (
        "FBetaScore",
        {"average": "weighted", "beta": 2.0},
        "onehot4",
        "scores4",
        "weights",
    ),
    "fbeta_none": ("FBetaScore", {"beta": 0.5, "threshold": 0.25}, "multi4", "scores4", "weights"),
    "r2": ("R2Score", {}, "real3", "near3", "weights"),
    "r2_none": ("R2Score", {"class_aggregation": None}, "real3", "near3", "weights"),
    "r2_var_adj": (
        "R2Score",
        {"class_aggregation": "variance_weighted_average", "num_regressors": 2},
        "real3",
        "near3",
        "weights",
    ),
    "iou": ("IoU", {"num_classes": 4, "target_class_ids": [0, 2]}, "ids", "pids", "intweights"),
    "iou_float": (
        "IoU",
        {"num_classes": 4, "target_class_ids": [1, 3], "dtype": "float32"},
        "ids",
        "pids",
        "weights",
    ),
    "mean_iou": ("MeanIoU", {"num_classes": 4, "ignore_class": 1}, "ids", "pids", "intweights"),
    "mean_iou_scores": (
        "MeanIoU",
        {"num_classes": 4, "sparse_y_pred": False, "dtype": "float32"},
        "ids",
        "scores4",
        "weights",
    ),
    "binary_iou": ("BinaryIoU", {"threshold": 0.3}, "bin3", "prob3", "intweights3"),
    "binary_iou_one": ("BinaryIoU", {"target_class_ids": [1]}, "bin1", "prob1", "intweights"),
    "onehot_iou": (
        "OneHotIoU",
        {"num_classes": 4, "target_class_ids": [0, 3]},
        "onehot4",
        "scores4",
        "intweights",
    ),
    "onehot_mean_iou": (
        "OneHotMeanIoU",
        {"num_classes": 4, "dtype": "float32"},
        "onehot4",
        "scores4",
        "weights",
    ),
    "hinge01": ("Hinge", {}, "bin3", "real3", "weights"),
    "hinge_pm1": ("Hinge", {}, "pm1", "real3", "weights"),
    "squared_hinge": ("SquaredHinge", {}, "bin3", "real3", "weights"),
    "categorical_hinge": ("CategoricalHinge", {}, "onehot4", "scores4", "weights"),
    "kld": ("KLDivergence", {}, "onehot4", "scores4", "weights"),
    "kld_soft": ("KLDivergence", {}, "scores4", "scores4", "weights"),
    "poisson": ("Poisson", {}, "pos3", "prob3", "weights"),
    "cosine": ("CosineSimilarity", {}, "real3", "near3", "weights"),
    "cosine_axis1": ("CosineSimilarity", {"axis": 1}, "cube", "cube2", "weights"),
    "logcosh": ("LogCoshError", {}, "real3", "near3", "weights"),
}

KERAS_SIDE = r"""
import json, sys, warnings
from pathlib import Path
import numpy as np
import keras

root = Path(sys.argv[1])
cases = json.loads((root / "cases.json").read_text())
load = lambda name: np.load(root / f"{name}.npy", allow_pickle=False)
plain = lambda x: x.tolist() if isinstance(x, np.ndarray) else x
out = {}
for key, (cls, kwargs, y, p, w) in cases.items():
    batches = [(load(f"{y}_{i}"), load(f"{p}_{i}"), load(f"{w}_{i}")) for i in range(2)]
    keras.backend.clear_session()  # so names are not uniquified across cases
    m = getattr(keras.metrics, cls)(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = []
        for yt, yp, _ in batches:
            m.update_state(yt, yp)
            first.append(np.asarray(m.result()).tolist())
        m.reset_state()
        weighted = []
        for yt, yp, sw in batches:
            m.update_state(yt, yp, sample_weight=sw)
            weighted.append(np.asarray(m.result()).tolist())
    config = {k: plain(v) for k, v in m.get_config().items()}
    out[key] = {"name": m.name, "plain": first, "weighted": weighted, "config": config}
(root / "keras.json").write_text(json.dumps(out))
"""


def _batches(arrays, y, p, w):
    return [(arrays[f"{y}_{i}"], arrays[f"{p}_{i}"], arrays[f"{w}_{i}"]) for i in range(2)]


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory) -> tuple[dict, dict]:
    pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("keras_metrics")
    arrays = _arrays()
    for name, value in arrays.items():
        np.save(root / f"{name}.npy", value, allow_pickle=False)
    (root / "cases.json").write_text(json.dumps(CASES))
    run_keras_side(KERAS_SIDE, root)
    return arrays, json.loads((root / "keras.json").read_text())


def _close(got, want, key, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{key} {what}: shape {got.shape} != Keras {want.shape}"
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=f"{key} {what}")


@pytest.mark.parametrize("key", sorted(CASES))
def test_against_keras(keras_results, key):
    arrays, expected = keras_results
    cls, kwargs, y, p, w = CASES[key]
    want = expected[key]
    batches = _batches(arrays, y, p, w)
    m = getattr(tf.keras.metrics, cls)(**kwargs)
    assert m.name == want["name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):  # the second round after reset_state must repeat the first
            for i, (yt, yp, _) in enumerate(batches):
                m.update_state(yt, yp)
                _close(m.result(), want["plain"][i], key, f"batch {i}")
            m.reset_state()
            for i, (yt, yp, sw) in enumerate(batches):
                m.update_state(yt, yp, sample_weight=sw)
                _close(m.result(), want["weighted"][i], key, f"weighted batch {i}")
            m.reset_state()
    config = json.loads(json.dumps(m.get_config()))
    if cls == "CosineSimilarity":  # dendrite keeps `axis`, which Keras's config drops
        assert config.pop("axis") == kwargs.get("axis", -1)
    assert config == want["config"]


@pytest.mark.parametrize("key", sorted(CASES))
def test_config_round_trip(key):
    cls, kwargs, *_ = CASES[key]
    m = getattr(metrics, cls)(**kwargs)
    again = type(m).from_config(m.get_config())
    assert again.get_config() == m.get_config()
    rebuilt = metrics.deserialize(metrics.serialize(m))
    assert type(rebuilt) is type(m) and rebuilt.get_config() == m.get_config()
    arrays = _arrays()
    _, _, y, p, w = CASES[key]
    yt, yp, sw = arrays[f"{y}_0"], arrays[f"{p}_0"], arrays[f"{w}_0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.update_state(yt, yp, sample_weight=sw)
        again.update_state(yt, yp, sample_weight=sw)
    np.testing.assert_array_equal(np.asarray(m.result()), np.asarray(again.result()))


def _fit_and_check(model, x, y, loss, compiled):
    model.compile(optimizer="adam", loss=loss, metrics=compiled)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    logs = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    pred = model.predict(x, batch_size=len(x), verbose=0)
    for spec in compiled:
        fresh = (
            metrics.get(spec)
            if isinstance(spec, str)
            else type(spec).from_config(spec.get_config())
        )
        assert fresh.name in history.history and len(history.history[fresh.name]) == 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh.update_state(y, pred)
        np.testing.assert_allclose(
            np.asarray(logs[fresh.name], np.float64),
            np.asarray(fresh.result(), np.float64),
            rtol=1e-5,
            atol=1e-6,
            err_msg=fresh.name,
        )


def test_compile_fit_evaluate():
    tf.keras.utils.set_random_seed(0)
    x = RNG.normal(size=(32, 5)).astype("float32")

    def model(units, activation=None):
        return tf.keras.Sequential(
            [tf.keras.Input((5,)), tf.keras.layers.Dense(units, activation=activation)]
        )

    binary = RNG.integers(0, 2, (32, 3)).astype("float32")
    _fit_and_check(
        model(3, "sigmoid"),
        x,
        binary,
        "binary_crossentropy",
        [
            metrics.TruePositives(),
            metrics.FalseNegatives(thresholds=[0.3, 0.7]),
            metrics.TrueNegatives(),
            metrics.FalsePositives(),
            metrics.PrecisionAtRecall(0.5),
            metrics.RecallAtPrecision(0.5),
            metrics.SensitivityAtSpecificity(0.5, class_id=0),
            metrics.SpecificityAtSensitivity(0.5),
            metrics.BinaryIoU(),
            "hinge",
            metrics.SquaredHinge(),
            metrics.Poisson(),
        ],
    )
    onehot = np.eye(4, dtype="float32")[RNG.integers(0, 4, 32)]
    _fit_and_check(
        model(4, "softmax"),
        x,
        onehot,
        "categorical_crossentropy",
        [
            "f1_score",
            metrics.FBetaScore(average="macro", beta=2.0),
            metrics.OneHotMeanIoU(4),
            metrics.OneHotIoU(4, [0, 1]),
            metrics.CategoricalHinge(),
            "kl_divergence",
        ],
    )
    labels = RNG.integers(0, 4, 32)
    _fit_and_check(
        model(4, "softmax"),
        x,
        labels,
        "sparse_categorical_crossentropy",
        [metrics.MeanIoU(4, sparse_y_pred=False), metrics.IoU(4, [1, 2], sparse_y_pred=False)],
    )
    target = RNG.normal(size=(32, 3)).astype("float32")
    _fit_and_check(
        model(3),
        x,
        target,
        "mse",
        ["r2_score", metrics.CosineSimilarity(), metrics.LogCoshError()],
    )
