"""A ``.keras`` file dendrite writes for a model compiled with loss, metric and
learning-rate schedule objects loads in Keras 3, compiled as dendrite compiled it: Keras
finds a built-in class in a compile config by its public module, which dendrite's entries
must name (``keras.losses``, ``keras.metrics``, ``keras.optimizers.schedules``), while a
custom object's entry keeps its registered name and no module.

Keras runs in a subprocess, as in tests/test_keras_files_roundtrip.py.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.saving.keras_format.config_out import keras_document
from dendrite.testing.keras_side import run_keras_side

pytest.importorskip("h5py")
K = tf.keras


def _model() -> object:
    tf.keras.utils.set_random_seed(0)
    return K.Sequential([K.Input((5,)), K.layers.Dense(3)])


CASES = {
    "loss_object": dict(
        optimizer="sgd",
        loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    ),
    "mse_and_auc": dict(
        optimizer="adam",
        loss=K.losses.MeanSquaredError(),
        metrics=[K.metrics.AUC(), K.metrics.MeanAbsoluteError()],
        weighted_metrics=[K.metrics.MeanSquaredError()],
    ),
    "schedule": dict(
        optimizer=K.optimizers.SGD(K.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)),
        loss="mse",
    ),
    "dice": dict(optimizer="sgd", loss=K.losses.Dice(axis=[1])),
}


def test_builtin_entries_name_keras_modules():
    model = _model()
    model.compile(**CASES["mse_and_auc"])
    settings = keras_document(model)["compile_config"]
    assert settings["loss"]["module"] == "keras.losses"
    assert [m["module"] for m in settings["metrics"]] == ["keras.metrics"] * 2
    assert settings["weighted_metrics"][0]["module"] == "keras.metrics"
    assert settings["metrics"][0]["config"]["dtype"] == "float32"  # a name, as Keras writes
    model = _model()
    model.compile(**CASES["schedule"])
    schedule = keras_document(model)["compile_config"]["optimizer"]["config"]["learning_rate"]
    assert schedule["module"] == "keras.optimizers.schedules"
    assert schedule["class_name"] == "ExponentialDecay"


def test_custom_loss_keeps_its_registered_name():
    @K.saving.register_keras_serializable(package="probe")
    class Scaled(K.losses.Loss):
        def call(self, y_true, y_pred):
            return K.ops.mean(K.ops.square(y_true - y_pred), axis=-1) * 2.0

    model = _model()
    model.compile(optimizer="sgd", loss=Scaled())
    entry = keras_document(model)["compile_config"]["loss"]
    assert "module" not in entry or not str(entry["module"]).startswith("keras.losses")


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    report = {}
    x = np.load(root + "/x.npy", allow_pickle=False)
    for name in json.loads(open(root + "/names.json").read()):
        y = np.load(root + f"/{name}.y.npy", allow_pickle=False)
        model = keras.models.load_model(root + f"/{name}.keras")
        lr = model.optimizer.learning_rate
        report[name] = {
            "loss": type(model.loss).__name__,
            "evaluate": model.evaluate(x, y, verbose=0, return_dict=True),
            "learning_rate": float(np.asarray(lr)) if lr is not None else None,
            "schedule": type(model.optimizer._learning_rate).__name__,
        }
    with open(root + "/report.json", "w") as f:
        json.dump(report, f)
    """
)


def test_keras_loads_and_evaluates_what_dendrite_compiled(tmp_path: Path):
    pytest.importorskip("keras")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((12, 5)).astype("float32")
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    expected = {}
    for name, settings in CASES.items():
        model = _model()
        model.compile(**settings)
        if name == "loss_object":
            y = rng.integers(0, 3, 12)
        elif name in ("mse_and_auc", "dice"):
            y = (rng.random((12, 3)) > 0.5).astype("float32")
        else:
            y = rng.standard_normal((12, 3)).astype("float32")
        np.save(tmp_path / f"{name}.y.npy", y, allow_pickle=False)
        model.save(tmp_path / f"{name}.keras")
        with zipfile.ZipFile(tmp_path / f"{name}.keras") as archive:
            assert "model.weights.h5" in archive.namelist()  # Keras' own layout
        expected[name] = model.evaluate(x, y, verbose=0, return_dict=True)
    (tmp_path / "names.json").write_text(json.dumps(list(CASES)))
    run_keras_side(KERAS_SIDE, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["loss_object"]["loss"] == "SparseCategoricalCrossentropy"
    assert report["mse_and_auc"]["loss"] == "MeanSquaredError"
    assert report["dice"]["loss"] == "Dice"
    assert report["schedule"]["schedule"] == "ExponentialDecay"
    assert report["schedule"]["learning_rate"] == pytest.approx(0.1)
    for name, values in expected.items():
        keras_values = report[name]["evaluate"]
        # Every value Keras names as dendrite does (older Keras 3 folds the metrics into
        # one "compile_metrics"; the loss is always there).
        shared = [key for key in values if key in keras_values]
        assert "loss" in shared
        for key in shared:
            assert keras_values[key] == pytest.approx(values[key], rel=1e-4, abs=1e-5), (name, key)
