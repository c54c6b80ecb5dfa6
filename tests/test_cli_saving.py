"""``dendrite train`` writes a whole-model file; ``evaluate`` and ``predict`` read it;
``train --resume`` continues an interrupted run to the same weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dendrite", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((160, 12), dtype=np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + (x[:, 2] > 0.5)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("run")
    _cli(
        "train",
        "--data",
        str(data),
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--out",
        str(out),
        "--verbose",
        "0",
    )
    return out


def test_train_saves_the_whole_model(trained):
    import dendrite.saving

    assert {"model.dendrite", "model.weights.safetensors", "history.json", "run.json"} <= {
        p.name for p in trained.iterdir()
    }
    assert not (trained / ".dendrite-backup").exists()
    model = dendrite.saving.load_model(trained / "model.dendrite")
    assert int(model.optimizer.iterations.data) == 3 * 4  # 120 samples, batch 32
    assert len(json.loads((trained / "history.json").read_text())["loss"]) == 3


def test_evaluate_prints_the_metrics(trained, data):
    result = _cli("evaluate", str(trained / "model.dendrite"), "--data", str(data))
    assert "40 samples (test split)" in result.stdout and "accuracy: " in result.stdout


def test_predict_writes_npy_and_csv(trained, data, tmp_path):
    out = tmp_path / "p.npy"
    _cli("predict", str(trained / "model.dendrite"), "--data", str(data), "--output", str(out))
    scores = np.load(out, allow_pickle=False)
    assert scores.shape == (40, 3) and np.allclose(scores.sum(axis=1), 1, atol=1e-5)
    csv = tmp_path / "p.csv"
    x = np.load(data, allow_pickle=False)["x_test"][:5]
    np.save(tmp_path / "x.npy", x)
    _cli(
        "predict",
        str(trained / "model.dendrite"),
        "--input",
        str(tmp_path / "x.npy"),
        "--output",
        str(csv),
        "--classes",
    )
    classes = np.loadtxt(csv, dtype=np.int64, delimiter=",")
    np.testing.assert_array_equal(classes, scores[:5].argmax(axis=1))


def test_evaluate_refuses_a_bad_file_cleanly(tmp_path, data):
    bad = tmp_path / "bad.dendrite"
    bad.write_bytes(b"PK\x03\x04 not really")
    result = _cli("evaluate", str(bad), "--data", str(data), check=False)
    assert result.returncode != 0 and "not a valid dendrite file" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_continues_a_killed_run_to_the_same_weights(tmp_path, data, trained):
    import signal

    import dendrite.saving

    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--epochs", "3", "--hidden", "8", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "dendrite", *args, "--verbose", "2"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    for line in process.stdout:
        if line.startswith("Epoch 3/3"):  # epochs 1 and 2 are checkpointed
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=300)
    assert process.returncode == -signal.SIGKILL
    assert (out / ".dendrite-backup" / "latest.checkpoint").exists()
    assert not (out / "model.dendrite").exists()
    result = _cli("train", "--resume", str(out), "--verbose", "2")
    assert "Epoch 3/3" in result.stdout and "Epoch 1/3" not in result.stdout
    assert not (out / ".dendrite-backup").exists()
    resumed = dendrite.saving.load_model(out / "model.dendrite")
    uninterrupted = dendrite.saving.load_model(trained / "model.dendrite")
    assert all(
        np.array_equal(a, b) for a, b in zip(resumed.get_weights(), uninterrupted.get_weights())
    )
    assert int(resumed.optimizer.iterations.data) == 12
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3
    assert "already finished" in _cli("train", "--resume", str(out)).stdout


def test_resume_refuses_changed_settings_and_missing_runs(tmp_path, trained):
    result = _cli("train", "--resume", str(trained), "--hidden", "99", check=False)
    assert result.returncode != 0 and "--hidden" in result.stderr
    result = _cli("train", "--resume", str(tmp_path / "nothing"), check=False)
    assert result.returncode != 0 and "run.json" in result.stderr
