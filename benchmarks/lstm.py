"""An LSTM (or GRU, SimpleRNN) over Fashion-MNIST rows (28 steps of 28 pixels): dendrite vs
PyTorch and Keras/TensorFlow.

Two measurements, each framework in its own process, timed in turn (A B C A B C ...) so
that all see the same machine load, reported as medians and the ratios dendrite / PyTorch
and dendrite / Keras:

1. one training epoch of examples/sequence_lstm.py: LSTM(128) -> Dense(10, softmax), Adam,
   sparse categorical cross-entropy, batch 32 (1875 steps), against nn.LSTM(batch_first)
   -> nn.Linear with the same optimizer, and the same Keras model on TensorFlow
   (``KERAS_BACKEND=tensorflow``); ``--steps N`` times the first N batches and scales to
   1875; the last round's training accuracy is printed for dendrite and Keras;
2. the recurrent layer alone, forward + backward of one batch (no optimizer, no loss).

``--cell gru`` (Keras 3's reset_after=True, PyTorch's nn.GRU) or ``--cell rnn``
(SimpleRNN, nn.RNN with tanh) swap the layer.

Run: python benchmarks/lstm.py [--cell lstm] [--steps 300] [--rounds 3] [--threads 2]
[--batch 32] [--no-keras]

Note: with AVX2 and FMA, dendrite's LSTM runs its whole sequences and products in its own
kernels on its own two threads (csrc/recurrent_sequence.c, csrc/small_product.c); the GRU
and SimpleRNN, and the LSTM on other CPUs, hand each step's small product (batch x 128 by
128 x 384 or 512) to OpenBLAS, whose threads hurt on a busy 2-core machine (compare with
``OPENBLAS_NUM_THREADS=1``).
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

UNITS = 128
CELLS = {"lstm": ("LSTM", "LSTM"), "gru": ("GRU", "GRU"), "rnn": ("SimpleRNN", "RNN")}


def load_data(limit: int) -> tuple[np.ndarray, np.ndarray]:
    import dendrite

    (x, y), _ = dendrite.datasets.fashion_mnist.load_data()
    return x[:limit].astype("float32") / 255.0, y[:limit].astype("int64")


def keras_api_epoch(
    keras: Any, cell: str, x: np.ndarray, y: np.ndarray, batch: int
) -> tuple[Callable[[], float], Callable[[], float]]:
    """(epoch time, last epoch's training accuracy) of the model as a Keras program, run by
    ``keras``: dendrite's namespace or Keras 3's."""
    keras.utils.set_random_seed(0)
    layer = getattr(keras.layers, CELLS[cell][0])
    model = keras.Sequential(
        [keras.Input(shape=(28, 28)), layer(UNITS), keras.layers.Dense(10, "softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[: 4 * batch], y[: 4 * batch], batch_size=batch, epochs=1, verbose=0)
    last = {"accuracy": float("nan")}

    def run() -> float:
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        elapsed = time.perf_counter() - start
        last["accuracy"] = float(history.history["accuracy"][-1])
        return elapsed

    return run, lambda: last["accuracy"]


def dendrite_epoch(x: np.ndarray, y: np.ndarray, batch: int, cell: str = "lstm") -> tuple:
    import dendrite

    return keras_api_epoch(dendrite.keras, cell, x, y, batch)


def torch_epoch(x: np.ndarray, y: np.ndarray, batch: int, cell: str = "lstm") -> Callable:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = getattr(nn, CELLS[cell][1])(28, UNITS, batch_first=True)
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


def dendrite_layer(x: np.ndarray, repeats: int, cell: str = "lstm") -> Callable[[], float]:
    from dendrite.core import Tensor
    from dendrite.layers import recurrent

    layer = getattr(recurrent, CELLS[cell][0])(UNITS)
    layer(x)
    upstream = np.ones((x.shape[0], UNITS), dtype="float32")

    def run() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            out = layer(Tensor(x, requires_grad=True))
            out.backward(upstream)
        return (time.perf_counter() - start) / repeats

    return run


def torch_layer(x: np.ndarray, repeats: int, cell: str = "lstm") -> Callable[[], float]:
    import torch

    layer = getattr(torch.nn, CELLS[cell][1])(28, UNITS, batch_first=True)
    inputs = torch.from_numpy(x)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            sequence = inputs.clone().requires_grad_(True)
            layer(sequence)[0][:, -1].sum().backward()
        return (time.perf_counter() - start) / repeats

    return run


def keras_layer(x: np.ndarray, repeats: int, cell: str = "lstm") -> Callable[[], float]:
    import keras
    import tensorflow as tf

    layer = getattr(keras.layers, CELLS[cell][0])(UNITS)
    inputs = tf.constant(x)

    @tf.function
    def step(sequence: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(sequence)
            loss = tf.reduce_sum(layer(sequence))
        return tape.gradient(loss, [sequence, *layer.trainable_variables])

    step(inputs)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            step(inputs)
        return (time.perf_counter() - start) / repeats

    return run


def report(title: str, times: dict[str, list[float]], unit: str, scale: float) -> dict:
    print(title)
    medians = {name: statistics.median(values) * scale for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{v * scale:.2f}" for v in values)
        print(f"  {name:9s} median {medians[name]:8.2f} {unit}   (runs: {runs})")
    for other in ("pytorch", "keras"):
        if other in medians:
            print(f"  ratio dendrite / {other:7s} = {medians['dendrite'] / medians[other]:.2f}")
    return medians


def worker(name: str, steps: int, batch: int, threads: int, cell: str = "lstm") -> tuple:
    """(epoch, layer, accuracy) runners of ``name``, built inside its own benchmark process
    (see isolated.py)."""
    if name == "keras":  # before Keras is first imported, in this process only
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
    x, y = load_data(steps * batch)
    if name == "pytorch":
        import torch

        torch.set_num_threads(threads)
        epoch = torch_epoch(x, y, batch, cell)
        return epoch, torch_layer(x[:batch], 50, cell), lambda: float("nan")
    if name == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        epoch, accuracy = keras_api_epoch(keras, cell, x, y, batch)
        return epoch, keras_layer(x[:batch], 50, cell), accuracy
    epoch, accuracy = dendrite_epoch(x, y, batch, cell)
    return epoch, dendrite_layer(x[:batch], 50, cell), accuracy


def main(argv: list[str] | None = None) -> dict:
    from benchmarks import isolated

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="batches timed per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per framework")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's and TensorFlow's threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    parser.add_argument("--no-keras", action="store_true", help="leave Keras/TensorFlow out")
    args = parser.parse_args(argv)
    full_steps = math.ceil(60000 / args.batch)
    steps = max(1, min(args.steps, full_steps))
    print(
        f"cpu count {os.cpu_count()}, Python {sys.version.split()[0]}, NumPy {np.__version__}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"PyTorch and TensorFlow threads {args.threads}"
    )
    names = ("dendrite", "pytorch") if args.no_keras else ("dendrite", "pytorch", "keras")
    specs = {
        name: ("benchmarks.lstm", "worker", (name, steps, args.batch, args.threads, args.cell))
        for name in names
    }
    workers, missing = isolated.start(specs)
    try:
        epochs = isolated.alternate(workers, args.rounds, index=0)
        layers = isolated.alternate(workers, max(args.rounds, 5), index=1)
        accuracy = isolated.alternate(workers, 1, index=2)
    finally:
        isolated.close(workers)
    scale = full_steps / steps
    layer = CELLS[args.cell][0]
    medians = report(
        f"{layer}({UNITS}) epoch on Fashion-MNIST rows (batch {args.batch}, {steps}/{full_steps} "
        f"steps timed, x{scale:.2f}), {args.rounds} rounds",
        epochs,
        "s/epoch",
        scale,
    )
    for name, values in accuracy.items():
        if not math.isnan(values[0]):
            print(f"  {name:9s} training accuracy of its last epoch {values[0]:.4f}")
    report(
        f"{layer}({UNITS}) layer forward + backward, one batch of {args.batch}", layers, "ms", 1e3
    )
    for name in missing:
        print(f"  {name:9s} missing (not importable)")
    return medians


if __name__ == "__main__":
    main()
