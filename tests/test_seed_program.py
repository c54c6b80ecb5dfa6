"""The design document's program on Fashion-MNIST, and the `dendrite train` command."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_seed_program_reaches_86_percent():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_program.py")],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    # evaluate(verbose=2) prints one line: "313/313 - 0s - 1ms/step - accuracy: 0.8712 - ..."
    line = [text for text in result.stdout.splitlines() if text.startswith("313/313")][-1]
    accuracy = float(re.search(r"accuracy: ([0-9.]+)", line).group(1))
    print(f"seed program test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.86, result.stdout[-2000:]
    assert result.stdout.count("Epoch ") == 5


def test_cli_train_writes_weights_history_and_curve(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dendrite",
            "train",
            "--epochs",
            "1",
            "--hidden",
            "32",
            "--batch-size",
            "128",
            "--out",
            str(out),
            "--verbose",
            "2",
            "--validation-split",
            "0.1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=ROOT,
    )
    accuracy = float(re.search(r"Test accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.75
    assert (out / "model.weights.safetensors").stat().st_size > 100_000
    history = json.loads((out / "history.json").read_text())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    picture = (out / "training_curve.png").read_bytes()
    assert picture.startswith(b"\x89PNG")


def test_cli_rejects_unknown_dataset():
    result = subprocess.run(
        [sys.executable, "-m", "dendrite", "train", "--dataset", "cifar"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr
