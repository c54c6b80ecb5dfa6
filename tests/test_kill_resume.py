"""SIGKILL a training process at random moments -- mid-epoch and mid-checkpoint-write --
then resume it with ``BackupAndRestore``: the run ends with the same weights, bit for bit,
as one never interrupted, and the checkpoint on disk is readable after every kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6

WORKER = textwrap.dedent(
    """
    import os, sys, time, zipfile
    import numpy as np
    import dendrite as tf
    import dendrite.saving
    from dendrite.training.callbacks import BackupAndRestore, Callback

    mode, out, backup = sys.argv[1], sys.argv[2], sys.argv[3]
    pause = float(os.environ.get("WORKER_PAUSE", "0"))

    if mode == "backup":
        # Slow the checkpoint's zip writes down and announce them, so the parent can kill
        # the process in the middle of one (test scaffolding, not library behaviour).
        real_writestr = zipfile.ZipFile.writestr

        def slow_writestr(self, *args, **kwargs):
            print("WRITE", flush=True)
            time.sleep(pause)
            return real_writestr(self, *args, **kwargs)

        zipfile.ZipFile.writestr = slow_writestr

    class Marker(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"EPOCH {epoch}", flush=True)

        def on_train_batch_end(self, batch, logs=None):
            time.sleep(pause / 4)

    tf.utils.set_random_seed(123)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 6)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("int64")
    model = tf.Sequential([
        tf.layers.Dense(16, activation="relu", input_shape=(6,)),
        tf.layers.Dropout(0.25),
        tf.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [Marker()]
    if mode == "backup":
        callbacks.insert(0, BackupAndRestore(backup))
    model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, callbacks=callbacks)
    np.savez(out, *model.get_weights())
    print("DONE", flush=True)
    """
).replace("EPOCHS", str(EPOCHS))


def _start(script: Path, mode: str, out: Path, backup: Path, pause: float) -> subprocess.Popen:
    env = {**os.environ, "WORKER_PAUSE": str(pause), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(out), str(backup)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _checkpoint_is_readable(checkpoint: Path) -> None:
    import dendrite as tf
    import dendrite.saving  # noqa: F401
    from dendrite.saving.checkpoint import read_checkpoint

    model = tf.Sequential(
        [
            tf.layers.Dense(16, activation="relu", input_shape=(6,)),
            tf.layers.Dropout(0.25),
            tf.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    state = read_checkpoint(model, checkpoint, restore=False)
    assert 1 <= state["epoch"] <= EPOCHS


def _kill_when(process: subprocess.Popen, marker: str, skip: int, delay: float) -> bool:
    """Wait for the ``skip``-th line starting with ``marker``, then SIGKILL after
    ``delay`` seconds; False if the process finished first."""
    seen = 0
    for line in process.stdout:
        if line.startswith("DONE"):
            break
        if line.startswith(marker):
            seen += 1
            if seen > skip:
                time.sleep(delay)
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
    process.wait()
    return False


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    reference_out = tmp_path / "reference.npz"
    reference = _start(script, "plain", reference_out, tmp_path / "unused", 0.0)
    assert reference.wait(timeout=120) == 0
    expected = _weights(reference_out)

    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    backup = tmp_path / "backup"
    checkpoint = backup / "latest.checkpoint"
    out = tmp_path / "resumed.npz"
    kills = []
    plan = ["write", "epoch", "write", "epoch"]
    for where in plan:
        process = _start(script, "backup", out, backup, pause=0.02)
        if where == "write":  # during a checkpoint write (one of its member writes)
            killed = _kill_when(
                process, "WRITE", int(rng.integers(0, 4)), float(rng.uniform(0, 0.02))
            )
        else:  # at a random moment inside an epoch
            killed = _kill_when(
                process, "EPOCH", int(rng.integers(0, 2)), float(rng.uniform(0, 0.1))
            )
        if not killed:
            break
        kills.append(where)
        if checkpoint.exists():
            _checkpoint_is_readable(checkpoint)
        leftovers = [p.name for p in backup.glob("*")] if backup.exists() else []
        assert set(leftovers) <= {"latest.checkpoint"} | {
            p for p in leftovers if p.endswith(".tmp")
        }
    final = _start(script, "backup", out, backup, pause=0.0)
    assert final.wait(timeout=120) == 0, "the resumed run failed"
    assert kills, "no kill happened"
    resumed = _weights(out)
    assert all(np.array_equal(a, b) for a, b in zip(expected, resumed)), f"kills: {kills}"
    print(f"killed {len(kills)} times ({', '.join(kills)}), resumed to identical weights")
    assert not backup.exists()
