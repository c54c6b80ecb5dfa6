"""One epoch of the design document's MLP on Fashion-MNIST: dendrite vs PyTorch (and
Keras/TensorFlow when installed), each in its own process, timed in turn (A B A B ...) so
that each sees the same machine load; prints median seconds per epoch and the ratios.

Model: Dense(128, relu) on 784 inputs -> Dense(10, softmax); Adam (lr 1e-3, epsilon 1e-7,
Keras' default, also given to PyTorch); sparse categorical cross-entropy; batches sliced
from one shuffled index per epoch. PyTorch is run as docs/performance.md#reference-figures
describes: ``nn.Sequential(Linear, ReLU, Linear)`` with ``CrossEntropyLoss`` on logits.

Run: python benchmarks/mlp.py [--batch-size 32] [--rounds 3] [--limit N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, the package that holds the worker processes' entry points is one up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_data(limit: int | None = None) -> tuple:
    import dendrite

    (x, y), (xt, yt) = dendrite.datasets.fashion_mnist.load_data()
    # Scaled in place: one float32 copy of the data, whatever the framework.
    x = x.reshape(-1, 784).astype("float32")
    x /= 255.0
    xt = xt.reshape(-1, 784).astype("float32")
    xt /= 255.0
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y.astype("int64"), xt, yt.astype("int64")


def keras_api_runner(keras: Any, x, y, xt, yt, batch: int) -> tuple[Callable[[], float], Callable]:
    """The document's program, run by ``keras``: dendrite's namespace or Keras' (the same
    code for both, as ``import dendrite as tf`` promises)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def epoch() -> float:
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        return time.perf_counter() - start

    def accuracy() -> float:
        return float(model.evaluate(xt, yt, verbose=0)[1])

    return epoch, accuracy


def dendrite_runner(x, y, xt, yt, batch: int) -> tuple[Callable[[], float], Callable]:
    import dendrite

    return keras_api_runner(dendrite.keras, x, y, xt, yt, batch)


def torch_runner(x, y, xt, yt, batch: int) -> tuple[Callable[[], float], Callable]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    n = len(tx)

    def epoch() -> float:
        start = time.perf_counter()
        order = torch.randperm(n)
        for i in range(0, n, batch):
            index = order[i : i + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(tx[index]), ty[index])
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    def accuracy() -> float:
        with torch.no_grad():
            predicted = model(torch.from_numpy(xt)).argmax(1).numpy()
        return float((predicted == yt).mean())

    return epoch, accuracy


def keras_runner(x, y, xt, yt, batch: int) -> tuple[Callable[[], float], Callable]:
    import keras

    return keras_api_runner(keras, x, y, xt, yt, batch)


RUNNERS = {"dendrite": dendrite_runner, "pytorch": torch_runner, "keras": keras_runner}


def worker(name: str, batch: int, limit: int | None) -> tuple[Callable, Callable]:
    """Build ``name``'s runner inside its own benchmark process (see isolated.py)."""
    x, y, xt, yt = load_data(limit)
    return RUNNERS[name](x, y, xt, yt, batch)


def compare(batch: int, rounds: int, limit: int | None = None) -> dict:
    """Median epoch seconds and final test accuracy of each available framework, each in
    its own process, taking turns."""
    from benchmarks import isolated

    specs = {name: ("benchmarks.mlp", "worker", (name, batch, limit)) for name in RUNNERS}
    workers, missing = isolated.start(specs)
    try:
        times = isolated.alternate(workers, rounds)
        accuracy = {name: worker.call(1) for name, worker in workers.items()}
    finally:
        isolated.close(workers)
    scale = 60000 / min(limit or 60000, 60000)
    result = {
        name: {
            "seconds_per_epoch": statistics.median(values) * scale,
            "test_accuracy": accuracy[name],
        }
        for name, values in times.items()
    }
    return {"batch_size": batch, "rounds": rounds, "results": result, "missing": missing}


def report(summary: dict) -> None:
    results = summary["results"]
    print(f"document's MLP, batch {summary['batch_size']}, median of {summary['rounds']} epochs")
    for name, row in results.items():
        print(
            f"  {name:9s} {row['seconds_per_epoch']:7.3f} s/epoch  "
            f"test accuracy {row['test_accuracy']:.4f}"
        )
    for name in summary["missing"]:
        print(f"  {name:9s} missing (not installed)")
    ours = results["dendrite"]["seconds_per_epoch"]
    for name, row in results.items():
        if name != "dendrite" and math.isfinite(row["seconds_per_epoch"]):
            print(f"  ratio dendrite/{name}: {ours / row['seconds_per_epoch']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N samples")
    args = parser.parse_args()
    report(compare(args.batch_size, args.rounds, args.limit))


if __name__ == "__main__":
    main()
