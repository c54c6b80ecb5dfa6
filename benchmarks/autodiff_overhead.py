"""Forward + backward time of a small graph, dendrite against PyTorch eager, as a ratio.

The graph is a 2-layer MLP (784-128-10, batch 32) written with raw ops, the same ops on
both sides:

    h = relu(x @ W1 + b1); z = h @ W2 + b2
    loss = -mean(sum(onehot(y) * log_softmax(z), axis=-1)); loss.backward()

A "tiny" variant (8-16-4, batch 4) has almost no arithmetic, so it measures the pure
per-op cost of recording the graph and walking it back. The same step written by hand in
NumPy (no graph; softmax and cross-entropy differentiated together, p - onehot) is shown
as the floor. The runs alternate (dendrite, PyTorch, NumPy, dendrite, ...) so that a noisy
machine hurts all alike; the headline figure is the median over the repeats of the mean
time per step. The fastest single step of each side is printed too: on a shared, busy
machine (where a BLAS or PyTorch worker thread can wait a whole scheduler slice) it is the
steadier comparison. A ratio below 1 means dendrite is faster.

    python benchmarks/autodiff_overhead.py [--repeats 9] [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from dendrite import ops
from dendrite.core import Tensor, Variable


def make_problem(batch: int, sizes: tuple[int, int, int], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    return {
        "x": rng.standard_normal((batch, n_in)).astype(np.float32),
        "onehot": np.eye(n_out, dtype=np.float32)[rng.integers(0, n_out, batch)],
        "w1": (rng.standard_normal((n_in, n_hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
        "b1": np.zeros(n_hidden, np.float32),
        "w2": (rng.standard_normal((n_hidden, n_out)) * np.sqrt(1 / n_hidden)).astype(np.float32),
        "b2": np.zeros(n_out, np.float32),
    }


def dendrite_step(problem: dict) -> Callable[[], float]:
    x, onehot = Tensor(problem["x"]), Tensor(problem["onehot"])
    params = [Variable(problem[k]) for k in ("w1", "b1", "w2", "b2")]
    w1, b1, w2, b2 = params

    def step() -> float:
        for p in params:
            p.grad = None
        h = ops.relu(ops.add(ops.matmul(x, w1), b1))
        z = ops.add(ops.matmul(h, w2), b2)
        loss = ops.negative(ops.mean(ops.sum(ops.multiply(onehot, ops.log_softmax(z)), axis=-1)))
        loss.backward()
        return float(loss.data)

    return step


def torch_step(problem: dict) -> Callable[[], float] | None:
    try:
        import torch
    except ImportError:
        return None
    x, onehot = torch.from_numpy(problem["x"]), torch.from_numpy(problem["onehot"])
    params = [torch.tensor(problem[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")]
    w1, b1, w2, b2 = params

    def step() -> float:
        for p in params:
            p.grad = None
        h = torch.relu(torch.add(torch.matmul(x, w1), b1))
        z = torch.add(torch.matmul(h, w2), b2)
        loss = torch.neg(torch.mean(torch.sum(torch.mul(onehot, torch.log_softmax(z, -1)), -1)))
        loss.backward()
        return float(loss.detach())

    return step


def numpy_step(problem: dict) -> Callable[[], float]:
    """The same step written by hand in NumPy: the floor no framework on NumPy can beat."""
    x, onehot = problem["x"], problem["onehot"]
    w1, b1, w2, b2 = (problem[k].copy() for k in ("w1", "b1", "w2", "b2"))
    batch = x.shape[0]

    def step() -> float:
        h = x @ w1
        h += b1
        np.maximum(h, 0, out=h)
        z = h @ w2
        z += b2
        shifted = z - z.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        loss = -(onehot * log_p).sum() / batch
        g_z = (np.exp(log_p) * onehot.sum(axis=-1, keepdims=True) - onehot) / batch
        grads = [None, g_z.sum(axis=0), h.T @ g_z, None]
        g_h = g_z @ w2.T
        g_h *= h > 0
        grads[0], grads[1] = x.T @ g_h, g_h.sum(axis=0)
        return float(loss)

    return step


def time_steps(step: Callable[[], float], steps: int) -> tuple[float, float]:
    """(mean, fastest) seconds per step over ``steps`` consecutive steps."""
    clock = time.perf_counter
    fastest = float("inf")
    start = clock()
    for _ in range(steps):
        before = clock()
        step()
        fastest = min(fastest, clock() - before)
    return (clock() - start) / steps, fastest


def compare(name: str, problem: dict, repeats: int, steps: int) -> float | None:
    """Print the medians (and the fastest single steps); return the median ratio."""
    sides = {"dendrite": dendrite_step(problem), "PyTorch": torch_step(problem)}
    sides["NumPy"] = numpy_step(problem)
    sides = {k: fn for k, fn in sides.items() if fn is not None}
    losses = [fn() for fn in sides.values()]
    np.testing.assert_allclose(losses, losses[0], rtol=1e-4)  # the same maths on every side
    for fn in sides.values():  # warm up
        time_steps(fn, max(steps // 10, 1))
    means: dict[str, list[float]] = {k: [] for k in sides}
    fastest = dict.fromkeys(sides, float("inf"))
    for _ in range(repeats):  # alternate, so that a noisy machine hurts every side alike
        for key, fn in sides.items():
            # Let the other side's idle worker threads (OpenBLAS, PyTorch's OpenMP pool) stop
            # spinning first: on 2 cores their busy-wait would be charged to this side.
            time.sleep(0.05)
            mean, best = time_steps(fn, steps)
            means[key].append(mean)
            fastest[key] = min(fastest[key], best)
    median = {k: statistics.median(v) * 1e6 for k, v in means.items()}
    fastest = {k: v * 1e6 for k, v in fastest.items()}
    print(f"{name}:")
    for label, figures in (("median", median), ("fastest step", fastest)):
        line = "  " + ", ".join(f"{k} {v:7.1f} us" for k, v in figures.items())
        if "PyTorch" in figures:
            line += f"; ratio dendrite/PyTorch {figures['dendrite'] / figures['PyTorch']:.3f}"
        print(f"{line}  ({label})")
    if "PyTorch" not in sides:
        print("  (PyTorch not installed)")
        return None
    return median["dendrite"] / median["PyTorch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    try:
        import torch

        threads = torch.get_num_threads()
        print(f"PyTorch {torch.__version__} ({threads} threads), NumPy {np.__version__}")
    except ImportError:
        pass
    compare("MLP 784-128-10, batch 32", make_problem(32, (784, 128, 10)), args.repeats, args.steps)
    compare("tiny 8-16-4, batch 4", make_problem(4, (8, 16, 4)), args.repeats, args.steps)


if __name__ == "__main__":
    main()
