"""Forward + backward time of a small graph, dendrite against PyTorch eager, as a ratio.

The graph is a 2-layer MLP (784-128-10, batch 32) written with raw ops, the same ops on
both sides:

    h = relu(x @ W1 + b1); z = h @ W2 + b2
    loss = -mean(sum(onehot(y) * log_softmax(z), axis=-1)); loss.backward()

A "tiny" variant (8-16-4, batch 4) has almost no arithmetic, so it measures the pure
per-op cost of recording the graph and walking it back. The same step written by hand in
NumPy (no graph, fused softmax/cross-entropy gradient) is shown as the floor. The runs
alternate (dendrite, PyTorch, NumPy, dendrite, ...) so that a noisy machine hurts all alike;
each figure is the median over the repeats of the mean time per step. A ratio below 1 means
dendrite is faster.

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


def time_per_step(step: Callable[[], float], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def compare(name: str, problem: dict, repeats: int, steps: int) -> float | None:
    ours, theirs, floor = dendrite_step(problem), torch_step(problem), numpy_step(problem)
    loss = ours()
    np.testing.assert_allclose(loss, floor(), rtol=1e-4)  # the same maths on every side
    if theirs is not None:
        np.testing.assert_allclose(loss, theirs(), rtol=1e-4)
    for fn in (ours, theirs, floor):  # warm up
        if fn is not None:
            time_per_step(fn, max(steps // 10, 1))
    times: dict[str, list[float]] = {"dendrite": [], "PyTorch": [], "NumPy": []}
    for _ in range(repeats):  # alternate, so that a noisy machine hurts every side alike
        times["dendrite"].append(time_per_step(ours, steps))
        if theirs is not None:
            times["PyTorch"].append(time_per_step(theirs, steps))
        times["NumPy"].append(time_per_step(floor, steps))
    median = {k: statistics.median(v) * 1e6 for k, v in times.items() if v}
    line = f"{name}: dendrite {median['dendrite']:7.1f} us/step"
    if theirs is not None:
        line += f", PyTorch {median['PyTorch']:7.1f}"
    line += f", hand-written NumPy {median['NumPy']:7.1f}"
    ratio = None
    if theirs is not None:
        ratio = median["dendrite"] / median["PyTorch"]
        line += f"; ratio dendrite/PyTorch {ratio:.3f}"
    else:
        line += " (PyTorch not installed)"
    print(line)
    return ratio


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
    compare("tiny 8-16-4, batch 4    ", make_problem(4, (8, 16, 4)), args.repeats, args.steps)


if __name__ == "__main__":
    main()
