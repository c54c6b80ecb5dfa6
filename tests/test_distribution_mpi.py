"""Data parallelism over real MPI: ``mpiexec -n 1/2/3`` runs of small models, compared
with one process (skipped only when mpi4py or mpiexec is missing: pip install
'dendrite[mpi]').

Equivalence guaranteed and tested: N ranks at global batch B end with the weights of one
process at batch B within 1e-5 (max abs difference, float32, after two epochs with
shuffle and a validation split, including a last partial batch smaller than the number of
ranks); epoch logs (loss, accuracy, AUC, precision, validation) within 1e-6; predictions
within 1e-5, all rows in order on every rank; every rank holds bit-identical weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

try:
    import mpi4py  # noqa: F401

    MPIEXEC = shutil.which("mpiexec")
except ImportError:
    MPIEXEC = None

pytestmark = pytest.mark.skipif(
    MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install 'dendrite[mpi]' (mpi4py and mpich)",
)

TOLERANCE = 1e-5  # max abs weight difference, N ranks vs one process

WORKER = r"""
import json, os, signal, sys
import numpy as np
import dendrite as keras
from dendrite import distribution as D

mode, kind, out, flag = sys.argv[1:5]
if mode == "dist":
    D.set_distribution(D.DataParallel())
rank = D.distribution().process_id if D.distribution() else 0
keras.utils.set_random_seed(0)
rng = np.random.default_rng(1)


class Custom(keras.Sequential):
    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            loss = self.compute_loss(x, y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self._loss_tracker.update_state(float(loss.data), sample_weight=len(x))
        return {"loss": self._loss_tracker.result()}


if kind == "cnn":
    x = rng.normal(size=(101, 12, 12, 1)).astype("float32")
    layers = [keras.Input(shape=(12, 12, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
              keras.layers.MaxPooling2D(2), keras.layers.Flatten()]
else:
    x = rng.normal(size=(203, 30)).astype("float32")
    width = 32 if not (flag == "mismatch" and rank == 1) else 16
    layers = [keras.Input(shape=(30,)), keras.layers.Dense(width, activation="relu")]
y = np.eye(4, dtype="float32")[rng.integers(0, 4, len(x))]
model = (Custom if kind == "custom" else keras.Sequential)(
    layers + [keras.layers.Dense(4, activation="softmax")])
metrics = [] if kind == "custom" else ["accuracy", keras.metrics.AUC(name="auc"),
                                       keras.metrics.Precision(name="precision")]
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=metrics)

callbacks = []
if flag in ("writers", "interrupt", "resume"):
    callbacks = [
        keras.callbacks.ModelCheckpoint(f"{out}.ckpt{rank}.weights.h5", save_weights_only=True),
        keras.callbacks.CSVLogger(f"{out}.log{rank}.csv"),
        keras.callbacks.BackupAndRestore(f"{out}.backup"),
    ]


class Trouble(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if flag == "kill" and rank == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        if flag == "raise" and rank == 1 and batch == 2:
            raise RuntimeError("rank 1 fails on purpose")

    def on_epoch_end(self, epoch, logs=None):
        if flag == "interrupt" and epoch == 1 and rank == 0:  # after its backup
            raise RuntimeError("interrupted on purpose after epoch 2")


h = model.fit(x, y, batch_size=32, epochs=3 if flag in ("interrupt", "resume") else 2,
              verbose=0, validation_split=0.2, shuffle=True,
              callbacks=callbacks + [Trouble()])
ev = model.evaluate(x, y, batch_size=20, verbose=0, return_dict=True)
pred = model.predict(x, batch_size=17, verbose=0)
np.savez(f"{out}.{rank}.npz", *[w.data for w in model.weights], pred=pred)
with open(f"{out}.{rank}.json", "w") as f:
    json.dump({"history": h.history, "eval": ev}, f)
"""

ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    path = tmp_path_factory.mktemp("mpi")
    (path / "worker.py").write_text(WORKER)
    return path


def run(work, ranks, kind, name, flag="-", timeout=120):
    """One process (ranks=None) or ``mpiexec -n ranks``; returns the finished process."""
    command = [sys.executable, str(work / "worker.py")]
    args = ["single" if ranks is None else "dist", kind, str(work / name), flag]
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks), *command]
    return subprocess.run(
        command + args, cwd=work, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def results(work, name, rank=0):
    arrays = np.load(work / f"{name}.{rank}.npz")
    logs = json.loads((work / f"{name}.{rank}.json").read_text())
    return {k: arrays[k] for k in arrays.files}, logs


def assert_same_run(work, single, name, ranks):
    weights, logs = results(work, single)
    for rank in range(ranks):
        got, got_logs = results(work, name, rank)
        if rank:
            first, _ = results(work, name, 0)
            assert all(np.array_equal(first[k], got[k]) for k in got)  # bit-identical
        worst = max(float(np.abs(weights[k] - got[k]).max()) for k in weights)
        assert worst < TOLERANCE, (ranks, rank, worst)
        for key, values in logs["history"].items():
            np.testing.assert_allclose(got_logs["history"][key], values, atol=1e-6, err_msg=key)
        for key, value in logs["eval"].items():
            assert got_logs["eval"][key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("kind", ["mlp", "cnn", "custom"])
def test_n_ranks_train_like_one_process(work, kind):
    single = run(work, None, kind, f"{kind}-single")
    assert single.returncode == 0, single.stderr
    for ranks in (1, 2, 3) if kind == "mlp" else (2, 3):
        done = run(work, ranks, kind, f"{kind}-{ranks}")
        assert done.returncode == 0, done.stderr
        assert_same_run(work, f"{kind}-single", f"{kind}-{ranks}", ranks)


def test_only_rank_0_writes_and_backup_resumes(work):
    stopped = run(work, 2, "mlp", "par", "interrupt")
    assert stopped.returncode != 0 and "interrupted on purpose" in stopped.stderr
    assert (work / "par.backup").is_dir()  # kept for the resume
    resumed = run(work, 2, "mlp", "par", "resume")
    assert resumed.returncode == 0, resumed.stderr
    written = sorted(p.name for p in work.iterdir() if p.name.startswith("par."))
    assert "par.ckpt0.weights.h5" in written and "par.log0.csv" in written
    assert not any("ckpt1" in n or "log1" in n for n in written), written
    assert not (work / "par.backup").exists()  # rank 0 removed it at the end
    _, logs = results(work, "par")
    assert len(logs["history"]["loss"]) == 1  # only the third epoch ran after resuming
    first, _ = results(work, "par", 0)
    second, _ = results(work, "par", 1)
    assert all(np.array_equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("flag", ["raise", "kill"])
def test_a_failing_rank_stops_the_others_within_seconds(work, flag):
    start = time.monotonic()
    done = run(work, 2, "mlp", f"fail-{flag}", flag, timeout=60)
    assert done.returncode != 0
    assert time.monotonic() - start < 30
    if flag == "raise":
        assert "rank 1 fails on purpose" in done.stderr


def test_models_that_differ_fail_before_the_first_step(work):
    done = run(work, 2, "mlp", "mismatch", "mismatch", timeout=60)
    assert done.returncode != 0
    assert "differs across ranks" in done.stderr
    assert "(30, 32)" in done.stderr and "(30, 16)" in done.stderr


def test_cli_train_under_mpiexec(work):
    rng = np.random.default_rng(0)
    np.savez(
        work / "data.npz",
        x_train=rng.random((150, 12)).astype("float32"),
        y_train=rng.integers(0, 3, 150),
        x_test=rng.random((30, 12)).astype("float32"),
        y_test=rng.integers(0, 3, 30),
    )
    base = [sys.executable, "-m", "dendrite", "train", "--data", "data.npz", "--epochs", "2"]
    base += ["--hidden", "8", "--verbose", "0", "--seed", "1"]
    one = subprocess.run(
        base + ["--out", "cli1"], cwd=work, env=ENV, capture_output=True, text=True, timeout=120
    )
    two = subprocess.run(
        [MPIEXEC, "-n", "2", *base, "--out", "cli2"],
        cwd=work,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("Test accuracy") == 1  # rank 0 alone prints
    h1 = json.loads((work / "cli1" / "history.json").read_text())
    h2 = json.loads((work / "cli2" / "history.json").read_text())
    for key in h1:
        np.testing.assert_allclose(h2[key], h1[key], atol=1e-6, err_msg=key)


THREADS = r"""
import json, os, sys
from dendrite import _native
from dendrite import distribution as D
from dendrite.distribution import threads
before = threads.blas_threads()
dist = D.DataParallel()
chosen = D.thread_limits()
# One file per rank: two ranks printing at once can interleave on one stdout line.
with open(f"report-{dist.process_id}.json", "w") as out:
    json.dump({"rank": dist.process_id, "before": before, "threads": chosen.threads,
               "blas": chosen.blas, "kernels": _native.kernel_threads,
               "local": chosen.ranks_on_host, "repr": repr(dist)}, out)
"""


def test_each_rank_limits_its_threads_to_its_share(work):
    (work / "threads.py").write_text(THREADS)
    env = {k: v for k, v in ENV.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, str(work / "threads.py")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    reports = [json.loads((work / f"report-{rank}.json").read_text()) for rank in (0, 1)]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    share = max(1, (os.cpu_count() or 1) // 2)  # 1 on the 2-core CI machine
    for report in reports:
        assert report["local"] == 2 and report["threads"] == share, report
        assert report["blas"] in (None, share), report
        assert f"{share} thread(s)" in report["repr"]
        if share == 1:
            assert report["kernels"] in (0, 1), report  # no helper thread
