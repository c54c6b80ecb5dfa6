"""Speed on a busy machine: each workload's epoch time beside a neighbour process that
multiplies matrices with two BLAS threads, once at ``nice -n 10`` and once at the same
priority, against its time on the quiet machine, for dendrite, PyTorch and Keras.

Targets (issue 19, this 2-core machine): with the niced neighbour every dendrite workload
at most 1.3x its quiet time; with the same-priority neighbour at most 2.2x (the neighbour
takes half the machine).

Run: python -m benchmarks.busy [--quick] [--repeats N] [--json PATH] [--only mlp cnn ...]

``--repeats N`` runs quiet, niced and same priority in turn N times and takes each
epoch's median: this machine's speed drifts by up to 2x over minutes, and a quiet epoch
timed minutes before the busy ones can put a ratio anywhere.

The quiet figures are only quiet if nothing else runs: check ``uptime`` first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import autoencoder, cnn, lstm, mlp  # noqa: E402

# The neighbour: float64 products of 1024 x 1024 matrices, forever, on two BLAS threads.
NEIGHBOUR = """
import numpy as np
a = np.random.default_rng(0).random((1024, 1024))
while True:
    a = a @ a
    a /= np.abs(a).max()
"""
CONDITIONS = {"quiet": None, "niced": 10, "same priority": 0}
TARGETS = {"niced": 1.3, "same priority": 2.2}


def start_neighbour(niceness: int) -> subprocess.Popen:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    process = subprocess.Popen(
        [sys.executable, "-c", NEIGHBOUR],
        env=env,
        preexec_fn=lambda: os.nice(niceness),  # noqa: PLW1509 (no threads yet here)
    )
    time.sleep(1.0)  # its BLAS threads running before anything is timed
    return process


def workloads(quick: bool, only: list[str]) -> dict:
    """name -> a function returning {framework: median seconds per epoch}."""
    rounds = 1 if quick else 3
    table = {
        "mlp_b32": lambda: {
            name: result["seconds_per_epoch"]
            for name, result in mlp.compare(32, rounds, limit=20000 if quick else None)[
                "results"
            ].items()
        },
        "cnn_b128": lambda: cnn.main(["--steps", "30" if quick else "60", "--rounds", str(rounds)]),
        "lstm_b32": lambda: lstm.main(
            ["--steps", "150" if quick else "300", "--rounds", str(rounds)]
        ),
        "autoencoder_b128": lambda: autoencoder.main(
            ["--steps", "15" if quick else "30", "--rounds", str(rounds)]
        ),
    }
    return {k: v for k, v in table.items() if not only or any(o in k for o in only)}


def _medians(runs: list[dict]) -> dict:
    """{framework: median seconds} over the repeats' {framework: seconds}."""
    frameworks = {name for run in runs for name in run}
    return {
        name: statistics.median(run[name] for run in runs if run.get(name))
        for name in sorted(frameworks)
        if any(run.get(name) for run in runs)
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    parser.add_argument("--only", nargs="*", default=[], help="workloads to run (substrings)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "busy.json"))
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the three conditions in turn this many times (medians of the epochs)",
    )
    args = parser.parse_args(argv)
    runs = workloads(args.quick, args.only)
    samples: dict[str, dict[str, list]] = {name: {c: [] for c in CONDITIONS} for name in runs}
    for repeat in range(args.repeats):
        for condition, niceness in CONDITIONS.items():
            print(f"\n=== {condition} ({repeat + 1}/{args.repeats}) ===", flush=True)
            neighbour = None if niceness is None else start_neighbour(niceness)
            try:
                for name, run in runs.items():
                    samples[name][condition].append(run())
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
    seconds = {
        name: {condition: _medians(epochs) for condition, epochs in by_condition.items()}
        for name, by_condition in samples.items()
    }
    print(f"\n{'workload':18s} {'framework':9s} {'quiet s':>8s} {'niced':>7s} {'same':>7s}")
    verdicts = []
    for name, by_condition in seconds.items():
        for framework, quiet in by_condition["quiet"].items():
            cells = []
            for condition in TARGETS:
                busy = by_condition[condition].get(framework)
                cells.append(f"{busy / quiet:6.2f}x" if busy and quiet else "     - ")
                if framework == "dendrite" and busy and quiet:
                    ok = busy / quiet <= TARGETS[condition]
                    verdicts.append(
                        f"{name} {condition}: {busy / quiet:.2f}x {'ok' if ok else 'MISSED'}"
                    )
            print(f"{name:18s} {framework:9s} {quiet:8.2f} {' '.join(cells)}")
    print("\ndendrite against the targets (niced <= 1.3x, same priority <= 2.2x):")
    for line in verdicts:
        print("  " + line)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"seconds": seconds, "runs": samples, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwritten to {path}")
    return result


if __name__ == "__main__":
    main()
