"""One epoch of the Fashion-MNIST CNN read from 60,000 PNG files with
``image_dataset_from_directory`` (2 worker threads) against the same epoch from in-memory
arrays. Target (issue 18): the file-based epoch at most 1.25x the in-memory one.

Run on a quiet machine (other processes on the cores make both figures meaningless):

    python benchmarks/image_folder.py [--dir /tmp/fmnist-png] [--steps N] [--workers 2]
        [--processes] [--queue 10]

The first run writes the PNGs into ``--dir`` (class sub-folders 0..9, about 20 s and
250 MB); later runs reuse them. ``--steps N`` times the first N batches of each epoch and
scales to a whole epoch (469 batches of 128): the start of the epoch (the workers
starting, the queue filling) is scaled with it, so a whole epoch is the fairer figure.
``--processes`` prepares batches in worker processes (``use_multiprocessing=True``)
instead of threads; ``--queue`` is ``max_queue_size``.

It prints both times and their ratio and, for each run, the time between one step's end
and the next one's begin (what the loop waits for its next batch once the queue is warm;
the first 5 steps are left out, and the wait for the first batch is shown apart) and the
CPU seconds of the main thread, the other threads and the worker processes.
"""

from __future__ import annotations

import argparse
import resource
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


class StepWait:
    """Times the gap between one training step's end and the next one's begin: what the
    loop spends getting the next batch (waiting for the workers, when they fall behind).
    The first ``skip`` gaps (the pool starting, the queue filling) are not counted."""

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.gaps: list[float] = []
        self._end: float | None = None
        self._start = 0.0
        self.first = 0.0

    def callback(self):
        import dendrite as keras

        def train_begin(logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def begin(batch: int, logs: dict | None = None) -> None:
            if batch == 0:
                self.first = time.perf_counter() - self._start
            elif self._end is not None and batch >= self.skip:
                self.gaps.append(time.perf_counter() - self._end)

        def end(batch: int, logs: dict | None = None) -> None:
            self._end = time.perf_counter()

        return keras.callbacks.LambdaCallback(
            on_train_begin=train_begin, on_train_batch_begin=begin, on_train_batch_end=end
        )

    def summary(self) -> str:
        if not self.gaps:
            return "no steps timed"
        gaps = np.asarray(self.gaps) * 1e3
        return (
            f"mean {gaps.mean():.2f} ms, max {gaps.max():.1f} ms, "
            f"{int((gaps > 2).sum())} of {len(gaps)} over 2 ms; first batch after "
            f"{self.first * 1e3:.0f} ms"
        )


class CpuUse:
    """CPU seconds spent between ``start()`` and ``stop()``: by the main thread, by this
    process's other threads (worker threads, BLAS and kernel helpers), and by child
    processes (worker processes, counted once they have exited). On a busy machine these
    grow too (threads that wait for each other spin), but less than wall time."""

    def start(self) -> None:
        self._at = self._now()

    def stop(self) -> None:
        self.main, self.threads, self.children = (b - a for a, b in zip(self._at, self._now()))

    @staticmethod
    def _now() -> tuple[float, float, float]:
        main = time.thread_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return main, time.process_time() - main, children.ru_utime + children.ru_stime

    def summary(self, scale: float) -> str:
        return (
            f"CPU {self.main * scale:.1f} s main thread, {self.threads * scale:.1f} s other "
            f"threads, {self.children * scale:.1f} s worker processes"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/dendrite-fmnist-png")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--processes",
        action="store_true",
        help="worker processes (use_multiprocessing=True) instead of threads",
    )
    parser.add_argument("--queue", type=int, default=10, help="max_queue_size (10)")
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
    memory_wait, memory_cpu = StepWait(), CpuUse()
    memory_cpu.start()
    start = time.perf_counter()
    net.fit(
        *arrays,
        batch_size=BATCH,
        epochs=1,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[memory_wait.callback()],
    )
    in_memory = (time.perf_counter() - start) * scale
    memory_cpu.stop()

    files = keras.utils.image_dataset_from_directory(
        root,
        color_mode="grayscale",
        image_size=(28, 28),
        batch_size=BATCH,
        seed=0,
        verbose=False,
    )
    processes = args.processes
    keras.utils.set_random_seed(0)
    net = model()
    files_wait, files_cpu = StepWait(), CpuUse()
    files_cpu.start()
    start = time.perf_counter()
    net.fit(
        _Scaled(files, args.workers, processes, args.queue),
        epochs=1,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[files_wait.callback()],
    )
    from_files = (time.perf_counter() - start) * scale
    files_cpu.stop()
    kind = "processes" if processes else "threads"
    print(f"in-memory epoch: {in_memory:.1f} s")
    print(f"  between steps: {memory_wait.summary()}")
    print(f"  {memory_cpu.summary(scale)}")
    print(
        f"PNG files, {args.workers} worker {kind}, max_queue_size {args.queue}: {from_files:.1f} s"
    )
    print(f"  between steps: {files_wait.summary()}")
    print(f"  {files_cpu.summary(scale)}")
    print(f"ratio: {from_files / in_memory:.2f}x (target <= 1.25x)")


class _Scaled(__import__("dendrite").utils.PyDataset):
    """The folder's batches scaled to [0, 1] in the workers, as the arrays are."""

    def __init__(self, files, workers: int, processes: bool, queue: int) -> None:
        super().__init__(workers=workers, use_multiprocessing=processes, max_queue_size=queue)
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        images, labels = self.files[index]
        return images / np.float32(255.0), labels

    def on_epoch_end(self):
        self.files.on_epoch_end()


if __name__ == "__main__":
    main()
