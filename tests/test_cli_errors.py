"""Every user error of ``dendrite train | evaluate | predict`` is one line on stderr with
no traceback: exit status 2 for a bad option, 1 for a failure, 130 after Ctrl-C; and
``train --out DIR`` never deletes or overwrites what dendrite did not write (issue #12)."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dendrite import cli

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dendrite", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _one_line(stderr: str, *words: str) -> str:
    """The single line of ``stderr``: no traceback, naming each of ``words``."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` with its bytes (None for folders)."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((80, 12), dtype=np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + (x[:, 2] > 0.5)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    return path


TOY = ("--epochs", "2", "--hidden", "4", "--verbose", "0")


@pytest.fixture(scope="module")
def model(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = _cli("train", "--data", data, *TOY, "--out", out)
    assert result.returncode == 0, result.stderr
    return out / "model.dendrite"


# --- usage errors: exit status 2, found before anything runs ----------------------------------
BAD_TRAIN_OPTIONS = [
    ("--epochs", "-1"),
    ("--epochs", "0"),
    ("--epochs", "2.5"),
    ("--epochs", "many"),
    ("--batch-size", "0"),
    ("--batch-size", "-32"),
    ("--batch-size", "x"),
    ("--hidden", "0"),
    ("--hidden", "-3"),
    ("--hidden", "1e3"),
    ("--lr", "inf"),
    ("--lr", "-inf"),
    ("--lr", "nan"),
    ("--lr", "0"),
    ("--lr", "-0.1"),
    ("--lr", "fast"),
    ("--optimizer", "nope"),
    ("--optimizer", ""),
    ("--validation-split", "1"),
    ("--validation-split", "1.5"),
    ("--validation-split", "-0.1"),
    ("--validation-split", "nan"),
    ("--validation-split", "half"),
    ("--seed", "-1"),
    ("--seed", "x"),
    ("--dataset", "cifar"),
    ("--verbose", "5"),
    ("--data", ""),
    ("--out", ""),
]


class TestUsageErrors:
    @pytest.mark.parametrize("option,value", BAD_TRAIN_OPTIONS)
    def test_train_option(self, option, value, capsys, tmp_path):
        out = tmp_path / "run"
        with pytest.raises(SystemExit) as stopped:
            cli.main(["train", "--out", str(out), f"{option}={value}"])  # "=": "-inf" too
        assert stopped.value.code == 2
        line = _one_line(capsys.readouterr().err, "dendrite train: error:", option)
        if value:
            assert repr(value) in line or value in line
        assert not out.exists()  # nothing ran

    @pytest.mark.parametrize("command", ["evaluate", "predict"])
    @pytest.mark.parametrize("value", ["0", "-1", "x"])
    def test_batch_size_of_evaluate_and_predict(self, command, value, capsys):
        with pytest.raises(SystemExit) as stopped:
            cli.main([command, "model.dendrite", "--batch-size", value])
        assert stopped.value.code == 2
        _one_line(capsys.readouterr().err, f"dendrite {command}: error:", "--batch-size", value)

    def test_the_unknown_optimizer_lists_the_known_ones(self, capsys):
        with pytest.raises(SystemExit):
            cli.main(["train", "--optimizer", "adamm"])
        assert "adam, adamax" in _one_line(capsys.readouterr().err)

    def test_optimizer_names_are_any_case(self):
        assert cli.build_parser().parse_args(["train", "--optimizer", "SGD"]).optimizer == "SGD"

    @pytest.mark.parametrize("option,value", [("--epochs", "-1"), ("--lr", "inf")])
    def test_from_the_command_line(self, option, value, tmp_path):
        result = _cli("train", "--out", tmp_path / "run", option, value)
        assert result.returncode == 2 and result.stdout == ""
        _one_line(result.stderr, option, value)
        assert not (tmp_path / "run").exists()


# --- failures while running: exit status 1 ---------------------------------------------------
class TestFailures:
    def test_out_is_a_file(self, data, tmp_path):
        target = tmp_path / "notes.txt"
        target.write_text("mine")
        result = _cli("train", "--data", data, *TOY, "--out", target)
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite train: error:", "--out", str(target), "is a file")
        assert target.read_text() == "mine"

    def test_out_cannot_be_created(self, data, tmp_path):
        (tmp_path / "file").write_text("mine")
        result = _cli("train", "--data", data, *TOY, "--out", tmp_path / "file" / "run")
        assert result.returncode == 1
        _one_line(result.stderr, "--out", "cannot create")
        assert (tmp_path / "file").read_text() == "mine"

    @pytest.mark.parametrize(
        "content,words",
        [
            (b"not a zip at all", ("not an .npz",)),
            (b"PK\x03\x04 broken zip", ("cannot read",)),
            (None, ("cannot read", "No such file")),
        ],
    )
    def test_unreadable_data(self, content, words, tmp_path):
        path = tmp_path / "data.npz"
        if content is not None:
            path.write_bytes(content)
        result = _cli("train", "--data", path, *TOY, "--out", tmp_path / "run")
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite train: error:", str(path), *words)

    @pytest.mark.parametrize(
        "arrays,word",
        [
            ({"x_test": np.zeros((4, 3))}, "x_train"),
            ({"x_train": np.zeros((4, 3))}, "y_train"),
            ({"x_train": np.zeros((4, 3)), "y_train": np.array([0.5, 1, 0, 1])}, "whole numbers"),
            ({"x_train": np.array(["a", "b"]), "y_train": np.array([0, 1])}, "numbers"),
            ({"x_train": np.zeros((0, 3)), "y_train": np.zeros(0, np.int64)}, "no samples"),
            ({"x_train": np.zeros((4, 3)), "y_train": np.array([0, 1, -1, 1])}, ""),
            ({"x_train": np.zeros((4, 3)), "y_train": np.array([0, 1])}, ""),
        ],
    )
    def test_data_without_what_training_needs(self, arrays, word, tmp_path):
        path = tmp_path / "data.npz"
        np.savez(path, **arrays)
        result = _cli("train", "--data", path, *TOY, "--out", tmp_path / "run")
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite train: error:", word)
        assert not (tmp_path / "run" / "model.dendrite").exists()

    def test_a_diverging_learning_rate_fails_and_saves_nothing(self, data, tmp_path):
        result = _cli("train", "--data", data, *TOY, "--out", tmp_path / "run", "--lr", "1e300")
        assert result.returncode == 1
        _one_line(result.stderr, "diverged", "--lr")
        assert not (tmp_path / "run" / "model.dendrite").exists()

    @pytest.mark.parametrize(
        "text,word",
        [
            ("{broken", "no readable run.json"),
            ("[1, 2]", "not a JSON object"),
            ('{"epochs": -1}', "epochs"),
            ('{"optimizer": "nope"}', "optimizer"),
            ('{"lr": "inf"}', "lr"),
            ('{"batch_size": true}', "batch_size"),
            ('{"validation_split": 2}', "validation_split"),
            ('{"dataset": "cifar"}', "dataset"),
        ],
    )
    def test_a_broken_run_json(self, text, word, tmp_path):
        (tmp_path / "run.json").write_text(text)
        result = _cli("train", "--resume", tmp_path)
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite train: error:", "cannot resume", word)
        assert (tmp_path / "run.json").read_text() == text

    def test_resume_of_nothing(self, tmp_path):
        result = _cli("train", "--resume", tmp_path / "nothing")
        assert result.returncode == 1
        _one_line(result.stderr, "run.json")
        assert not (tmp_path / "nothing").exists()

    def test_predict_a_wrong_input_shape(self, model, tmp_path):
        np.save(tmp_path / "x.npy", np.zeros((3, 5), np.float32))
        result = _cli("predict", model, "--input", tmp_path / "x.npy", "--output", tmp_path / "p")
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite predict: error:", "shape")
        assert not (tmp_path / "p").exists()

    def test_debug_shows_the_traceback(self, model, tmp_path):
        np.save(tmp_path / "x.npy", np.zeros((3, 5), np.float32))
        result = _cli("predict", model, "--input", tmp_path / "x.npy", "--debug")
        assert result.returncode == 1 and "Traceback" in result.stderr

    @pytest.mark.parametrize("kind", ["missing", "junk", "directory", "pickle"])
    def test_unreadable_inputs_and_models(self, kind, model, data, tmp_path):
        bad = tmp_path / "bad.npy"
        if kind == "junk":
            bad.write_bytes(b"\x93NUMPY junk")
        elif kind == "directory":
            bad.mkdir()
        elif kind == "pickle":
            np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        result = _cli("predict", model, "--input", bad, "--output", tmp_path / "p.npy")
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite predict: error:", str(bad))
        for command in ("evaluate", "predict"):
            result = _cli(command, bad, "--data", data)
            assert result.returncode == 1
            _one_line(result.stderr, f"dendrite {command}: error:", str(bad))

    def test_predict_output_that_cannot_be_written(self, model, data, tmp_path):
        (tmp_path / "file").write_text("mine")
        for output in (tmp_path, tmp_path / "file" / "p.npy"):
            result = _cli("predict", model, "--data", data, "--output", output)
            assert result.returncode == 1
            _one_line(result.stderr, "dendrite predict: error:", str(output))
        assert (tmp_path / "file").read_text() == "mine"

    def test_a_full_disk(self, data, tmp_path, monkeypatch, capsys):
        import dendrite._atomic

        def full(path, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(dendrite._atomic, "atomic_write_bytes", full)
        code = cli.main(["train", "--data", str(data), *TOY, "--out", str(tmp_path / "run")])
        assert code == 1
        _one_line(capsys.readouterr().err, "dendrite train: error:", "No space left", "run.json")


# --- Ctrl-C --------------------------------------------------------------------------------
class TestInterrupt:
    def test_ctrl_c_stops_at_once_and_resume_continues(self, tmp_path):
        rng = np.random.default_rng(1)
        x = rng.random((2000, 12), dtype=np.float32)
        path = tmp_path / "data.npz"
        np.savez(path, x_train=x, y_train=(x[:, 0] > x[:, 1]).astype(np.int64))
        out = tmp_path / "run"
        args = ["train", "--data", path, "--epochs", "500", "--batch-size", "8", "--hidden", "4"]
        args += ["--out", out, "--verbose", "2"]
        process = subprocess.Popen(
            [sys.executable, "-m", "dendrite", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for line in process.stdout:
            if line.startswith("Epoch 3/"):  # epochs 1 and 2 are checkpointed
                process.send_signal(signal.SIGINT)
                break
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130
        _one_line(stderr, "interrupted", f"dendrite train --resume {out}")
        checkpoint = out / ".dendrite-backup" / "latest.checkpoint"
        assert checkpoint.is_file() and not (out / "model.dendrite").exists()
        assert len(json.loads((out / "history.json").read_text())["loss"]) >= 2

        result = _cli("train", "--resume", out, "--epochs", "3", "--verbose", "2")
        assert result.returncode == 0, result.stderr
        assert "Epoch 3/3" in result.stdout and "Epoch 1/3" not in result.stdout
        assert (out / "model.dendrite").is_file() and not (out / ".dendrite-backup").exists()

    def test_ctrl_c_before_anything_was_saved(self, tmp_path, monkeypatch, capsys):
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(cli, "load_npz", interrupted)
        monkeypatch.setattr(cli, "claim_output", interrupted)
        code = cli.main(["train", "--data", "x.npz", "--out", str(tmp_path / "run")])
        assert code == 130
        _one_line(capsys.readouterr().err, "interrupted", "nothing was saved")


# --- the user's files ----------------------------------------------------------------------
class TestUsersFiles:
    def test_the_users_backup_folder_survives(self, data, tmp_path):
        out = tmp_path / "run"
        (out / "backup").mkdir(parents=True)
        (out / "backup" / "thesis.tex").write_text("years of work")
        (out / "notes.txt").write_text("mine")
        mine = _snapshot(out)
        result = _cli("train", "--data", data, *TOY, "--out", out)
        assert result.returncode == 0, result.stderr
        now = _snapshot(out)
        assert {name: now[name] for name in mine} == mine
        result = _cli("train", "--resume", out, "--epochs", "3", "--verbose", "0")
        assert result.returncode == 0, result.stderr
        now = _snapshot(out)
        assert {name: now[name] for name in mine} == mine
        assert (out / "model.dendrite").is_file() and not (out / ".dendrite-backup").exists()

    @pytest.mark.parametrize(
        "name",
        ["run.json", "model.dendrite", "model.weights.safetensors", "history.json"]
        + ["training_curve.png", ".dendrite-backup"],
    )
    def test_a_foreign_file_under_dendrites_names_is_refused(self, name, data, tmp_path):
        out = tmp_path / "run"
        out.mkdir()
        if name == ".dendrite-backup":
            (out / name).mkdir()
            (out / name / "latest.checkpoint.txt").write_text("mine")
        else:
            (out / name).write_text("mine")
        before = _snapshot(out)
        result = _cli("train", "--data", data, *TOY, "--out", out)
        assert result.returncode == 1
        _one_line(result.stderr, "dendrite train: error:", name, "did not")
        assert _snapshot(out) == before

    def test_a_foreign_backup_folder_is_refused_on_resume(self, data, tmp_path):
        out = tmp_path / "run"
        assert _cli("train", "--data", data, *TOY, "--out", out).returncode == 0
        (out / ".dendrite-backup").write_text("mine")
        result = _cli("train", "--resume", out, "--epochs", "3", "--verbose", "0")
        assert result.returncode == 1
        _one_line(result.stderr, ".dendrite-backup", "did not write")
        assert (out / ".dendrite-backup").read_text() == "mine"

    def test_a_dendrite_run_is_trained_again_in_place(self, data, tmp_path):
        out = tmp_path / "run"
        for _ in range(2):
            result = _cli("train", "--data", data, *TOY, "--out", out)
            assert result.returncode == 0, result.stderr
        assert json.loads((out / "run.json").read_text())["finished"] is True

    def test_a_fresh_run_deletes_only_its_own_stale_checkpoint(self, data, tmp_path):
        out = tmp_path / "run"
        assert _cli("train", "--data", data, *TOY, "--out", out).returncode == 0
        backup = out / ".dendrite-backup"
        backup.mkdir()
        (backup / "latest.checkpoint").write_bytes(b"stale")
        (backup / ".latest.checkpoint.x1.tmp").write_bytes(b"half")
        result = _cli("train", "--data", data, *TOY, "--out", out)
        assert result.returncode == 0, result.stderr
        assert not backup.exists()

    def test_an_interrupted_rerun_is_not_taken_for_the_finished_one(self, data, tmp_path):
        out = tmp_path / "run"
        assert _cli("train", "--data", data, *TOY, "--out", out).returncode == 0
        settings = json.loads((out / "run.json").read_text())
        (out / "run.json").write_text(json.dumps({**settings, "finished": False}))
        result = _cli("train", "--resume", out, "--verbose", "2")
        assert result.returncode == 0 and "Epoch 1/2" in result.stdout
