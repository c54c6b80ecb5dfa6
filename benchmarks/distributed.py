"""Data parallelism over MPI: epoch time of the design document's MLP and of the
Fashion-MNIST CNN at 1 and 2 ranks (1 BLAS and kernel thread per rank), the share of
each step spent in the gradient allreduce, and the speed-up; plus the allreduce's own
latency and bandwidth on this machine (the figures docs/distributed.md's cost model uses).

Models: the MLP Dense(128, relu) on 784 inputs -> Dense(10, softmax), batch 32 (1875
steps an epoch); the CNN of examples/fashion_mnist_cnn.py (benchmarks/cnn.py), batch 128
(469 steps). Adam, sparse categorical cross-entropy, Fashion-MNIST. ``batch_size`` is the
global batch: 2 ranks take half of it each, so the two runs do the same arithmetic.

Each run is its own ``mpiexec -n R`` job (R = 1, 2), alternated (1 2 1 2 ...) so that
both see the same machine load; the medians are reported. The allreduce is timed inside
the step by the communicator's opt-in timer (``Communicator.time_allreduce``): it counts
the wait for the slower rank too, so on a busy machine it overstates the wire time.

Run: python benchmarks/distributed.py [--model mlp|cnn|both] [--steps N] [--rounds R]
     python benchmarks/distributed.py --allreduce   (latency and bandwidth, 2 ranks)
``--steps N`` times the first N batches of an epoch and scales to the whole epoch.
Needs mpi4py and mpiexec (pip install 'dendrite[mpi]').
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import cnn  # noqa: E402

MODELS = {"mlp": (32, 60000 // 32 + 1), "cnn": (128, 469)}  # global batch, steps an epoch
TARGET = 1.7  # CNN: 2 ranks at least this much faster than 1


def build(keras, kind: str):
    keras.utils.set_random_seed(0)
    if kind == "mlp":
        layers = [
            keras.Input(shape=(784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    else:
        layers = cnn.layers(keras)
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def worker(kind: str, steps: int) -> None:
    """One rank of an ``mpiexec`` job: fit ``steps`` global batches; rank 0 prints JSON."""
    import dendrite as keras
    from dendrite import distribution as D

    dist = D.DataParallel()
    comm = dist.communicator
    batch, _ = MODELS[kind]
    (x, y), _ = keras.datasets.fashion_mnist.load_data()
    x = x.astype("float32") / 255.0
    x = x.reshape(-1, 784) if kind == "mlp" else x.reshape(-1, 28, 28, 1)
    y = y.astype("int64")
    model = build(keras, kind)
    with dist.scope():
        model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)
        comm.time_allreduce()
        comm.allreduce_seconds = 0.0
        rows = steps * batch
        comm.comm.Barrier()
        start = time.perf_counter()
        model.fit(x[:rows], y[:rows], batch_size=batch, epochs=1, verbose=0, shuffle=True)
        wall = time.perf_counter() - start
    gradient_bytes = sum(int(w.data.nbytes) for w in model.trainable_weights)
    comm_seconds = comm.comm.gather(comm.allreduce_seconds, root=0)
    if comm.rank == 0:
        print(
            "RESULT "
            + json.dumps(
                {
                    "wall": wall,
                    "allreduce": statistics.mean(comm_seconds),
                    "gradient_bytes": gradient_bytes,
                    "threads": str(dist.threads),
                }
            ),
            flush=True,
        )


def allreduce_worker() -> None:
    """Median time of one in-place Allreduce(SUM) of float32 buffers of growing size."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = []
    for size in [2**k for k in range(0, 23, 2)]:  # 4 B .. 16 MiB
        buffer = np.ones(size, np.float32)
        repeats = max(5, min(200, 2_000_000 // size))
        times = []
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            times.append(time.perf_counter() - start)
        out.append((4 * size, statistics.median(times)))
    if comm.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


def launch(ranks: int, args: list[str], timeout: float = 1800) -> dict | list:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("needs mpiexec: pip install 'dendrite[mpi]'")
    env = {**os.environ, "DENDRITE_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    command = [mpiexec, "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def fit_allreduce() -> tuple[float, float]:
    """(latency seconds, bandwidth bytes/s) fitted to 2-rank allreduce times: at N = 2
    the model 2(N-1)/N x bytes / bandwidth + latency x log2 N is bytes / bw + latency."""
    points = launch(2, ["--worker-allreduce"])
    sizes = np.array([p[0] for p in points], float)
    times = np.array([p[1] for p in points], float)
    print(f"{'bytes':>10} {'allreduce us':>13}")
    for b, t in points:
        print(f"{b:>10} {t * 1e6:>13.1f}")
    latency = float(times[0])  # the smallest message: latency alone
    large = sizes >= 256 * 1024  # bandwidth from the large messages, robust to outliers
    bandwidth = float(np.median(sizes[large] / np.maximum(times[large] - latency, 1e-9)))
    print(f"fit: latency {latency * 1e6:.1f} us, bandwidth {bandwidth / 1e9:.2f} GB/s")
    return latency, bandwidth


def compare(kind: str, steps: int, rounds: int) -> None:
    batch, per_epoch = MODELS[kind]
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(rounds):
        for ranks in (1, 2):
            runs[ranks].append(launch(ranks, ["--worker", kind, "--steps", str(steps)]))
    print(f"\n{kind.upper()}: global batch {batch}, {steps} of {per_epoch} steps timed, x{rounds}")
    walls = {}
    for ranks, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        comm = statistics.median(r["allreduce"] for r in results)
        walls[ranks] = wall
        print(
            f"  {ranks} rank(s): {wall / steps * 1e3:7.2f} ms/step, "
            f"epoch {wall / steps * per_epoch:7.1f} s, "
            f"allreduce {comm / steps * 1e3:6.2f} ms/step ({100 * comm / wall:4.1f}% of the step); "
            f"{results[0]['threads']}"
        )
    print(f"  gradient: {runs[1][0]['gradient_bytes']:,} bytes")
    speedup = walls[1] / walls[2]
    note = ""
    if kind == "cnn":
        note = f" (target >= {TARGET}x: {'met' if speedup >= TARGET else 'NOT met'})"
    print(f"  speed-up 2 ranks vs 1: {speedup:.2f}x{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["mlp", "cnn", "both"], default="both")
    parser.add_argument("--steps", type=int, default=0, help="batches timed (0: a whole epoch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--allreduce", action="store_true", help="measure the allreduce only")
    parser.add_argument("--worker", choices=["mlp", "cnn"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-allreduce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    if args.worker_allreduce:
        allreduce_worker()
        return
    fit_allreduce()
    if args.allreduce:
        return
    for kind in ("mlp", "cnn") if args.model == "both" else (args.model,):
        steps = args.steps or MODELS[kind][1]
        compare(kind, min(steps, MODELS[kind][1]), args.rounds)


if __name__ == "__main__":
    main()
