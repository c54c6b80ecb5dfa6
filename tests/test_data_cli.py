"""``dendrite train --data DIR``: a CNN on a folder of images, classes = sub-folders."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.cli import main

PIL = pytest.importorskip("PIL.Image")


def _folder(root, bad=False):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("circle", "square")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 60, (30, 30), dtype=np.uint8) + 150 * c
            PIL.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    if bad:
        (root / "square" / "5.png").write_bytes(b"\x89PNG broken")
    return root


def test_train_on_an_image_folder_saves_the_model_and_history(tmp_path, capsys):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--epochs", "2", "--batch-size", "4"]
    code = main([*args, "--out", str(out), "--verbose", "0", "--seed", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Validation accuracy" in printed and "circle, square" in printed
    assert (out / "model.dendrite").exists() and (out / "history.json").exists()


def test_a_broken_image_is_one_line_naming_the_file(tmp_path, capsys):
    data = _folder(tmp_path / "shapes", bad=True)
    args = ["train", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "run")]
    code = main([*args, "--verbose", "0", "--seed", "1", "--validation-split", "0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "5.png" in err and len(err.strip().splitlines()) == 1
