"""``dendrite export MODEL --format onnx --output PATH``: writes a file ONNX Runtime runs
like ``predict`` (within 1e-5), and reports failures in one line with exit status 1 (2 for a
bad option), writing nothing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.cli import main  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402


def test_cli_export_writes_a_model_onnx_runtime_runs(tmp_path, capsys) -> None:
    model = K.Sequential(
        [K.Input(shape=(6,)), K.layers.Dense(5, activation="relu"), K.layers.Dense(3)]
    )
    model.save(tmp_path / "model.keras")
    out = tmp_path / "out" / "model.onnx"
    assert (
        main(["export", str(tmp_path / "model.keras"), "--format", "onnx", "--output", str(out)])
        == 0
    )
    assert "Wrote ONNX model" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((7, 6)).astype("float32")
    got = run_onnx(out, x)[0]
    assert max_relative_difference(got, model.predict(x, verbose=0)) <= 1e-5


def test_cli_export_failure_is_one_line_and_writes_nothing(tmp_path, capsys) -> None:
    model = K.Sequential([K.Input(shape=(3,)), K.layers.Dense(2)])
    model.save(tmp_path / "model.keras")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "missing.keras"), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dendrite export: error:") and "\n" not in err
    assert main(["export", str(tmp_path / "model.keras"), "--output", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    stateful = K.Sequential([K.Input(batch_shape=(2, 5, 3)), K.layers.LSTM(4, stateful=True)])
    stateful.save(tmp_path / "stateful.keras")
    assert main(["export", str(tmp_path / "stateful.keras"), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "stateful" in err and "(LSTM)" in err
    assert not out.exists()


def test_cli_export_options(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "m.keras", "--format", "tflite", "--output", "x"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "m.keras"])
    assert exit_info.value.code == 2
    assert "--output" in capsys.readouterr().err
