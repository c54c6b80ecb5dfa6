"""One training epoch of a convolutional autoencoder on Fashion-MNIST, with the layers
image generation and segmentation use: transposed convolution, upsampling, depthwise and
separable convolutions. dendrite vs PyTorch (and Keras/TensorFlow when installed), each in
its own process, timed in turn, as median seconds per epoch and ratios (as cnn.py).

Model (28x28x1 -> 28x28x1, every convolution 'same'):
Conv2D(16, 3, relu) -> MaxPool 2 -> SeparableConv2D(32, 3, relu) -> MaxPool 2 ->
Conv2DTranspose(32, 3, strides 2, relu) -> UpSampling2D(2) -> DepthwiseConv2D(3, relu) ->
Conv2D(1, 3, sigmoid); Adam (lr 1e-3), binary cross-entropy against the input, batch 128.
PyTorch runs the same layers (a separable convolution is a depthwise convolution without
bias followed by a pointwise one, as Keras' is).

Run: python benchmarks/autoencoder.py [--steps N] [--rounds R] [--threads T]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import cnn  # noqa: E402

BATCH = cnn.BATCH


def keras_api_runner(keras: Any, x: np.ndarray) -> Callable[[], float]:
    """The autoencoder as a Keras program, run by dendrite's namespace or TensorFlow's."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.SeparableConv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
            layers.UpSampling2D(2),
            layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x[: 2 * BATCH], x[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)

    def run() -> float:
        start = time.perf_counter()
        model.fit(x, x, batch_size=BATCH, epochs=1, verbose=0)
        return time.perf_counter() - start

    return run


def torch_runner(x: np.ndarray, threads: int) -> Callable[[], float] | None:
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
        nn.Conv2d(16, 32, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(32, 32, 3, padding=1, groups=32),
        nn.ReLU(),
        nn.Conv2d(32, 1, 3, padding=1),
        nn.Sigmoid(),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCELoss()
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def epoch(count: int) -> None:
        model.train()
        order = torch.randperm(count)
        for start in range(0, count, BATCH):
            batch = images[order[start : start + BATCH]]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch), batch)
            loss.backward()
            optimizer.step()

    epoch(2 * BATCH)  # warm-up

    def run() -> float:
        start = time.perf_counter()
        epoch(len(x))
        return time.perf_counter() - start

    return run


def worker(name: str, steps: int, threads: int) -> Callable[[], float] | None:
    """Build ``name``'s runner on the first ``steps`` batches, in its own process."""
    x, _ = cnn.load_data(steps * BATCH)
    if name == "pytorch":
        return torch_runner(x, threads)
    if name == "keras":
        try:
            import tensorflow as tf
        except ImportError:
            return None
        return keras_api_runner(tf.keras, x)
    import dendrite

    return keras_api_runner(dendrite.keras, x)


def main(argv: list[str] | None = None) -> dict:
    args = cnn.arguments(argv, __doc__.splitlines()[0])
    return cnn.compare(
        "benchmarks.autoencoder", "Autoencoder", args.steps, args.rounds, args.threads
    )


if __name__ == "__main__":
    main()
