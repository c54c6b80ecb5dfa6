"""An LSTM over Fashion-MNIST rows (28 steps of 28 pixels): dendrite vs PyTorch.

Two measurements, each framework in its own process, timed in turn (A B A B ...) so that
both see the same machine load, reported as medians and the ratio dendrite / PyTorch:

1. one training epoch of examples/sequence_lstm.py: LSTM(128) -> Dense(10, softmax), Adam,
   sparse categorical cross-entropy, batch 32 (1875 steps), against nn.LSTM(batch_first)
   -> nn.Linear with the same optimizer; ``--steps N`` times the first N batches and
   scales to 1875;
2. the LSTM layer alone, forward + backward of one batch (no optimizer, no loss).

Run: python benchmarks/lstm.py [--steps 300] [--rounds 3] [--threads 2] [--batch 32]

Note: OpenBLAS' threads hurt the small per-step products (batch x 128 by 128 x 512) on a
busy 2-core machine; compare with ``OPENBLAS_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Run as a script, the package that holds the worker processes' entry points is one up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNITS = 128


def load_data(limit: int) -> tuple[np.ndarray, np.ndarray]:
    import dendrite

    (x, y), _ = dendrite.datasets.fashion_mnist.load_data()
    return x[:limit].astype("float32") / 255.0, y[:limit].astype("int64")


def dendrite_epoch(x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], float]:
    import dendrite as tf
    from dendrite.layers.recurrent import LSTM

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input(shape=(28, 28)), LSTM(UNITS), tf.keras.layers.Dense(10, "softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[: 4 * batch], y[: 4 * batch], batch_size=batch, epochs=1, verbose=0)

    def run() -> float:
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        return time.perf_counter() - start

    return run


def torch_epoch(x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], float]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(28, UNITS, batch_first=True)
            self.head = nn.Linear(UNITS, 10)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(inputs)[0][:, -1])

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    sequences, labels = torch.from_numpy(x), torch.from_numpy(y)

    def epoch(count: int) -> None:
        order = torch.randperm(count)
        correct = 0
        for start in range(0, count, batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            logits = model(sequences[index])
            loss_fn(logits, labels[index]).backward()
            optimizer.step()
            correct += int((logits.argmax(1) == labels[index]).sum())

    epoch(4 * batch)

    def run() -> float:
        start = time.perf_counter()
        epoch(len(x))
        return time.perf_counter() - start

    return run


def dendrite_layer(x: np.ndarray, repeats: int) -> Callable[[], float]:
    from dendrite.core import Tensor
    from dendrite.layers.recurrent import LSTM

    layer = LSTM(UNITS)
    layer(x)
    upstream = np.ones((x.shape[0], UNITS), dtype="float32")

    def run() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            out = layer(Tensor(x, requires_grad=True))
            out.backward(upstream)
        return (time.perf_counter() - start) / repeats

    return run


def torch_layer(x: np.ndarray, repeats: int) -> Callable[[], float]:
    import torch

    layer = torch.nn.LSTM(28, UNITS, batch_first=True)
    inputs = torch.from_numpy(x)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            sequence = inputs.clone().requires_grad_(True)
            layer(sequence)[0][:, -1].sum().backward()
        return (time.perf_counter() - start) / repeats

    return run


def report(title: str, times: dict[str, list[float]], unit: str, scale: float) -> dict:
    print(title)
    medians = {name: statistics.median(values) * scale for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{v * scale:.2f}" for v in values)
        print(f"  {name:9s} median {medians[name]:8.2f} {unit}   (runs: {runs})")
    if "pytorch" in medians:
        print(f"  ratio dendrite / pytorch = {medians['dendrite'] / medians['pytorch']:.2f}")
    return medians


def worker(name: str, steps: int, batch: int, threads: int) -> tuple[Callable, Callable]:
    """(epoch, layer) runners of ``name``, built inside its own benchmark process (see
    isolated.py)."""
    x, y = load_data(steps * batch)
    if name == "pytorch":
        import torch

        torch.set_num_threads(threads)
        return torch_epoch(x, y, batch), torch_layer(x[:batch], 50)
    return dendrite_epoch(x, y, batch), dendrite_layer(x[:batch], 50)


def main(argv: list[str] | None = None) -> dict:
    from benchmarks import isolated

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="batches timed per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per framework")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    full_steps = math.ceil(60000 / args.batch)
    steps = max(1, min(args.steps, full_steps))
    print(
        f"cpu count {os.cpu_count()}, Python {sys.version.split()[0]}, NumPy {np.__version__}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"PyTorch threads {args.threads}"
    )
    specs = {
        name: ("benchmarks.lstm", "worker", (name, steps, args.batch, args.threads))
        for name in ("dendrite", "pytorch")
    }
    workers, missing = isolated.start(specs)
    try:
        epochs = isolated.alternate(workers, args.rounds, index=0)
        layers = isolated.alternate(workers, max(args.rounds, 5), index=1)
    finally:
        isolated.close(workers)
    scale = full_steps / steps
    medians = report(
        f"LSTM({UNITS}) epoch on Fashion-MNIST rows (batch {args.batch}, {steps}/{full_steps} "
        f"steps timed, x{scale:.2f}), {args.rounds} rounds",
        epochs,
        "s/epoch",
        scale,
    )
    report(f"LSTM({UNITS}) layer forward + backward, one batch of {args.batch}", layers, "ms", 1e3)
    for name in missing:
        print(f"  {name:9s} missing (not importable)")
    return medians


if __name__ == "__main__":
    main()
