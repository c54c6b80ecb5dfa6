"""All of dendrite's speed targets in one run: each workload in dendrite, PyTorch and (when
installed) Keras/TensorFlow, one after another in the same invocation (A B A B), as ratios;
each framework runs in its own process (benchmarks/isolated.py).

Run: python -m benchmarks.run [--quick] [--json PATH]     (or python benchmarks/run.py)

Per workload it prints the median epoch time of each framework, dendrite/PyTorch and
dendrite/Keras, the ratio to the matrix-multiply floor (numpy's own GEMM rate measured on
the spot), and test accuracy where the workload has one; then `import` time and peak RSS
of training the MLP, each measured in a fresh subprocess. Missing competitors are listed
as missing. Results are also written as JSON (default benchmarks/results/latest.json) so
commits can be compared.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cnn, lstm, mlp  # noqa: E402

FRAMEWORKS = {"dendrite": "dendrite", "pytorch": "torch", "keras": "keras"}


def gemm_seconds(shapes: list[tuple[int, int, int]], repeats: int = 200) -> float:
    """Median seconds numpy's float32 GEMM takes for one pass over ``shapes`` (m, k, n)."""
    rng = np.random.default_rng(0)
    pairs = [
        (rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32))
        for m, k, n in shapes
    ]
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for a, b in pairs:
            a @ b
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def mlp_floor(batch: int) -> float:
    """Seconds per epoch the MLP's matrix multiplies need at numpy's GEMM speed: forward
    x W1, h W2; backward g2 W2^T, h^T g2, x^T g1 (no input gradient)."""
    steps = -(-60000 // batch)
    shapes = [
        (batch, 784, 128),
        (batch, 128, 10),
        (batch, 10, 128),
        (128, batch, 10),
        (784, batch, 128),
    ]
    return gemm_seconds(shapes) * steps


def cnn_floor() -> float:
    """The CNN's ~855 GFLOP per epoch (docs/performance.md#reference-figures) at numpy's
    peak GEMM rate (2048^3)."""
    seconds = gemm_seconds([(2048, 2048, 2048)], repeats=5)
    rate = 2 * 2048**3 / seconds
    return 855e9 / rate


def compile_bytecode(module: str) -> None:
    """Write the package's .pyc files, as a (non-editable) pip install does, so that the
    import timing does not include compiling the sources: an editable install under
    PYTHONDONTWRITEBYTECODE=1 (this machine's default) would otherwise recompile every
    module on every import, which no installed competitor has to do."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            compileall.compile_dir(location, quiet=1)


def import_seconds(module: str, repeats: int = 5) -> float | None:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    if module == "dendrite":  # installed competitors were byte-compiled by pip
        compile_bytecode(module)
    samples = []
    for _ in range(repeats):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if result.returncode != 0:
            return None
        samples.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


# The peak is read from /proc/self/status (VmHWM, this process's own high-water mark):
# getrusage's ru_maxrss would report the benchmark's own (larger) footprint, which a child
# inherits across fork and exec on Linux.
_RSS_CODE = """
import resource, sys
sys.path.insert(0, {root!r})
from benchmarks import mlp
x, y, xt, yt = mlp.load_data()
epoch, _ = mlp.RUNNERS[{name!r}](x, y, xt, yt, 32)
epoch()
try:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(kb / 1024)
"""


def peak_rss_mb(name: str) -> float | None:
    """Peak resident memory (MB) of a fresh process that trains the MLP for one epoch."""
    code = _RSS_CODE.format(root=str(ROOT), name=name)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return float(result.stdout.strip().splitlines()[-1])


def predict_workload(rounds: int) -> dict:
    """``predict`` on the 10,000 test images with the document's MLP (batch 32, Keras'
    default), untrained weights: only the inference path is timed. Each framework in its
    own process, taking turns."""
    from benchmarks import isolated

    specs = {name: ("benchmarks.run", "predictor", (name,)) for name in FRAMEWORKS}
    workers, _ = isolated.start(specs)
    try:
        times = isolated.alternate(workers, rounds)
    finally:
        isolated.close(workers)
    return {name: statistics.median(v) for name, v in times.items()}


def predictor(name: str):  # noqa: ANN201
    """A timed ``predict`` of ``name`` on the test images (built in its worker process)."""
    _, _, xt, _ = mlp.load_data(limit=32)
    run = _predictor(name, xt)

    def timed() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return timed


def _predictor(name: str, xt: np.ndarray):  # noqa: ANN202
    if name == "pytorch":
        import torch

        net = torch.nn.Sequential(
            torch.nn.Linear(784, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
            torch.nn.Softmax(1),
        )
        data = torch.from_numpy(xt)

        def run() -> None:
            with torch.no_grad():
                for i in range(0, len(data), 32):
                    net(data[i : i + 32])

        return run
    module = __import__("keras" if name == "keras" else "dendrite")
    net = module.Sequential(
        [
            module.layers.Input((784,)),
            module.layers.Dense(128, activation="relu"),
            module.layers.Dense(10, activation="softmax"),
        ]
    )
    return lambda: net.predict(xt, verbose=0)


def ratio(a: float | None, b: float | None) -> str:
    return "   -  " if not a or not b else f"{a / b:6.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and timed steps")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    parser.add_argument("--skip", nargs="*", default=[], help="workloads to leave out")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 3
    present = {}
    for name, module in FRAMEWORKS.items():
        present[name] = import_seconds(module, repeats=3 if args.quick else 5)
    print(
        "import time (s): "
        + ", ".join(f"{k} {'missing' if v is None else f'{v:.3f}'}" for k, v in present.items())
    )

    rows: dict[str, dict] = {}
    for batch in (32, 256):
        key = f"mlp_b{batch}"
        if key in args.skip:
            continue
        # Epochs of the MLP are short and noisy here: more of them for the median.
        summary = mlp.compare(batch, rounds + 2, limit=20000 if args.quick else None)
        mlp.report(summary)
        rows[key] = {
            "seconds": {k: v["seconds_per_epoch"] for k, v in summary["results"].items()},
            "accuracy": {k: v["test_accuracy"] for k, v in summary["results"].items()},
            "floor": mlp_floor(batch),
        }
    if "cnn" not in args.skip:
        steps = ["--steps", "60" if args.quick else "469", "--rounds", str(rounds)]
        rows["cnn_b128"] = {"seconds": cnn.main(steps), "floor": cnn_floor()}
    if "lstm" not in args.skip:
        steps = ["--steps", "100" if args.quick else "300", "--rounds", str(rounds)]
        rows["lstm_b32"] = {"seconds": lstm.main(steps)}
    if "predict" not in args.skip:
        rows["predict_10k"] = {"seconds": predict_workload(rounds)}

    rss = {name: peak_rss_mb(name) for name in mlp.RUNNERS if present.get(name) is not None}
    print()
    print(
        f"{'workload':14s} {'dendrite':>9s} {'pytorch':>9s} {'keras':>9s} "
        f"{'d/torch':>7s} {'d/keras':>7s} {'d/floor':>7s}  accuracy (d, torch, keras)"
    )
    for key, row in rows.items():
        s = row["seconds"]
        cells = [f"{s[k]:9.3f}" if s.get(k) else "  missing" for k in FRAMEWORKS]
        acc = row.get("accuracy", {})
        accuracy = ", ".join(f"{acc[k]:.4f}" for k in FRAMEWORKS if k in acc)
        print(
            f"{key:14s} {' '.join(cells)} {ratio(s.get('dendrite'), s.get('pytorch')):>7s} "
            f"{ratio(s.get('dendrite'), s.get('keras')):>7s} "
            f"{ratio(s.get('dendrite'), row.get('floor')):>7s}  {accuracy}"
        )
    print(
        f"{'import (s)':14s} "
        + " ".join(f"{present[k]:9.3f}" if present[k] else "  missing" for k in FRAMEWORKS)
        + f" {ratio(present['dendrite'], present['pytorch']):>7s}"
        + f" {ratio(present['dendrite'], present['keras']):>7s}"
    )
    print(
        f"{'peak RSS (MB)':14s} "
        + " ".join(f"{rss[k]:9.0f}" if rss.get(k) else "  missing" for k in FRAMEWORKS)
        + f" {ratio(rss.get('dendrite'), rss.get('pytorch')):>7s}"
        + f" {ratio(rss.get('dendrite'), rss.get('keras')):>7s}"
    )
    result = {
        "workloads": rows,
        "import_seconds": present,
        "peak_rss_mb": rss,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwritten to {path}")
    return result


if __name__ == "__main__":
    main()
