"""One epoch of the Fashion-MNIST CNN read from 60,000 PNG files with
``image_dataset_from_directory`` (2 worker threads) against the same epoch from in-memory
arrays. Target (issue 18): the file-based epoch at most 1.25x the in-memory one.

Run on a quiet machine (other processes on the cores make both figures meaningless):

    python benchmarks/image_folder.py [--dir /tmp/fmnist-png] [--steps N] [--workers 2]

The first run writes the PNGs into ``--dir`` (class sub-folders 0..9, about 20 s and
250 MB); later runs reuse them. ``--steps N`` times the first N batches of each epoch and
scales to a whole epoch (469 batches of 128). It prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 128


def write_pngs(x: np.ndarray, y: np.ndarray, root: Path) -> None:
    from PIL import Image

    if (root / "9").is_dir() and sum(1 for _ in root.rglob("*.png")) == len(x):
        return
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(x, y)):
        Image.fromarray(image).save(root / str(int(label)) / f"{i:05d}.png")


def model():
    import dendrite as keras

    layers = keras.layers
    net = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    net.compile("adam", "sparse_categorical_crossentropy")
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/dendrite-fmnist-png")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import dendrite as keras

    (x, y), _ = keras.datasets.fashion_mnist.load_data()
    root = Path(args.dir)
    write_pngs(x, y, root)
    steps = args.steps
    scale = 1.0 if steps is None else (len(x) / BATCH) / steps

    keras.utils.set_random_seed(0)
    arrays = (x[..., None].astype("float32") / 255.0, y)
    net = model()
    start = time.perf_counter()
    net.fit(*arrays, batch_size=BATCH, epochs=1, steps_per_epoch=steps, verbose=0)
    in_memory = (time.perf_counter() - start) * scale

    files = keras.utils.image_dataset_from_directory(
        root,
        color_mode="grayscale",
        image_size=(28, 28),
        batch_size=BATCH,
        seed=0,
        verbose=False,
    )
    files.workers = args.workers
    keras.utils.set_random_seed(0)
    net = model()
    start = time.perf_counter()
    net.fit(_Scaled(files), epochs=1, steps_per_epoch=steps, verbose=0)
    from_files = (time.perf_counter() - start) * scale
    print(f"in-memory epoch: {in_memory:.1f} s")
    print(f"PNG files, {args.workers} workers: {from_files:.1f} s")
    print(f"ratio: {from_files / in_memory:.2f}x (target <= 1.25x)")


class _Scaled(__import__("dendrite").utils.PyDataset):
    """The folder's batches scaled to [0, 1] in the workers, as the arrays are."""

    def __init__(self, files):
        super().__init__(workers=files.workers, max_queue_size=10)
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        images, labels = self.files[index]
        return images / 255.0, labels

    def on_epoch_end(self):
        self.files.on_epoch_end()


if __name__ == "__main__":
    main()
