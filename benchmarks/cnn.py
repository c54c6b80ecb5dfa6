"""One training epoch of the Fashion-MNIST CNN: dendrite vs PyTorch (and Keras/TensorFlow
when it is installed), each in its own process, timed in turn (A B A B ...) so that all see
the same machine load, and reported as median seconds per epoch and the ratios.

Model (examples/fashion_mnist_cnn.py): Conv2D(32, 3x3, relu) -> MaxPool 2x2 ->
Conv2D(64, 3x3, relu) -> MaxPool 2x2 -> Flatten -> Dropout(0.5) -> Dense(10, softmax);
Adam (lr 1e-3), sparse categorical cross-entropy, batch 128 (469 steps an epoch).

Run: python benchmarks/cnn.py [--steps N] [--rounds R] [--threads T]
``--steps N`` times the first N batches of an epoch and scales the time to 469 batches.
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
from typing import Any

import numpy as np

# Run as a script, the package that holds the worker processes' entry points is one up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 128


def load_data(limit: int) -> tuple[np.ndarray, np.ndarray]:
    import dendrite

    (x, y), _ = dendrite.datasets.fashion_mnist.load_data()
    x = x[:limit].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    return x, y[:limit].astype("int64")


def layers(keras: Any) -> list:
    """The CNN's input and layers in ``keras`` (dendrite's namespace or TensorFlow's)."""
    return [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ]


def keras_api_runner(keras: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """The CNN as a Keras program, run by ``keras``: dendrite's namespace or TensorFlow's
    (the same code for both, as ``import dendrite as tf`` promises)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(layers(keras))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)  # warm-up

    def run() -> float:
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return time.perf_counter() - start

    return run


def dendrite_runner(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    import dendrite

    return keras_api_runner(dendrite.keras, x, y)


def torch_runner(x: np.ndarray, y: np.ndarray, threads: int) -> Callable[[], float] | None:
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(64 * 5 * 5, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()  # softmax + cross-entropy, as the Keras model's
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y)

    def epoch(count: int) -> None:
        model.train()
        order = torch.randperm(count)
        correct = 0
        for start in range(0, count, BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            logits = model(images[index])
            loss = loss_fn(logits, labels[index])
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == labels[index]).sum())  # the accuracy metric

    epoch(2 * BATCH)  # warm-up

    def run() -> float:
        start = time.perf_counter()
        epoch(len(x))
        return time.perf_counter() - start

    return run


def keras_runner(x: np.ndarray, y: np.ndarray) -> Callable[[], float] | None:
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return keras_api_runner(tf.keras, x, y)


RUNNERS = {"dendrite": "dendrite_runner", "pytorch": "torch_runner", "keras": "keras_runner"}


def worker(name: str, steps: int, threads: int) -> Callable[[], float] | None:
    """Build ``name``'s runner on the first ``steps`` batches, inside its own benchmark
    process (see isolated.py)."""
    x, y = load_data(steps * BATCH)
    if name == "pytorch":
        return torch_runner(x, y, threads)
    return globals()[RUNNERS[name]](x, y)


def compare(module: str, title: str, steps: int, rounds: int, threads: int) -> dict:
    """Median seconds per epoch of each framework's ``worker`` in ``module`` (each in its
    own process, in turn), timed on ``steps`` batches and scaled to an epoch; printed
    with the ratios."""
    from benchmarks import isolated

    full_steps = math.ceil(60000 / BATCH)
    steps = max(1, min(steps, full_steps))
    scale = full_steps / steps
    specs = {name: (module, "worker", (name, steps, threads)) for name in RUNNERS}
    workers, missing = isolated.start(specs)
    try:
        raw = isolated.alternate(workers, rounds)
    finally:
        isolated.close(workers)
    times = {name: [t * scale for t in values] for name, values in raw.items()}
    print(
        f"{title} epoch (batch {BATCH}, {steps}/{full_steps} steps timed, x{scale:.2f}), "
        f"{rounds} rounds, cpu count {os.cpu_count()}, Python {sys.version.split()[0]}"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:9s} median {medians[name]:7.2f} s/epoch   (runs: {runs})")
    for name in missing:
        print(f"  {name:9s} missing (not importable)")
    if "pytorch" in medians:
        print(f"  ratio dendrite / pytorch = {medians['dendrite'] / medians['pytorch']:.2f}")
    if "keras" in medians:
        print(f"  ratio dendrite / keras   = {medians['dendrite'] / medians['keras']:.2f}")
    return medians


def arguments(argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=469, help="batches timed per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per framework")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = arguments(argv, __doc__.splitlines()[0])
    return compare("benchmarks.cnn", "CNN", args.steps, args.rounds, args.threads)


if __name__ == "__main__":
    main()
