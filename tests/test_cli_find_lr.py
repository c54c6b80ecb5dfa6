"""``dendrite train --find-lr`` (issue #17): the range test picks the rate, the run records
it (so --resume continues at it) and draws the curve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite import cli


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    path = tmp_path / "toy.npz"
    np.savez(path, x_train=x[:320], y_train=y[:320], x_test=x[320:], y_test=y[320:])
    return path


def test_find_lr_trains_at_the_suggestion(tmp_path, data, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--data", str(data), "--find-lr", "--epochs", "3", "--hidden", "8",
                     "--verbose", "0", "--out", str(out)])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "Learning-rate range test: training at" in text
    run = json.loads((out / "run.json").read_text())
    assert 1e-7 <= run["lr"] <= 10.0 and run["finished"]
    assert (out / "lr_finder.png").stat().st_size > 0
    accuracy = float(text.split("Test accuracy: ")[1].split()[0])
    assert accuracy > 0.8  # a linearly separable toy problem, trained at the found rate


def test_find_lr_and_lr_together_are_refused(tmp_path, data, capsys):
    code = cli.main(["train", "--data", str(data), "--find-lr", "--lr", "0.01", "--epochs", "1",
                     "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 1
    assert "give --lr or --find-lr, not both" in capsys.readouterr().err


def test_find_lr_on_an_image_folder_is_refused_clearly(tmp_path, capsys):
    folder = tmp_path / "images"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
    code = cli.main(["train", "--data", str(folder), "--find-lr", "--out", str(tmp_path / "r")])
    assert code == 1
    assert "--find-lr needs the data in memory" in capsys.readouterr().err
