"""Serving a trained model: ``predict`` on 10,000 samples in dendrite against the same model
exported with ``model.export(format="onnx")`` and run in ONNX Runtime (issue 14), for the
document's MLP and the Fashion-MNIST CNN. It prints both times and their ratio, and the
largest difference between the two outputs.

Needs the ``onnx`` extra (``pip install 'dendrite[onnx]'``). Run on a quiet machine:

    python benchmarks/onnx_serving.py [--samples 10000] [--batch 256] [--repeats 3]

The models are untrained (speed does not depend on the weights); the inputs are random
images shaped like Fashion-MNIST's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mlp():
    import dendrite as keras

    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def cnn():
    import dendrite as keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(name: str, model, x: np.ndarray, batch: int, repeats: int) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.onnx"
        model.export(path, format="onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed_name = session.get_inputs()[0].name

        def run_onnx() -> np.ndarray:
            parts = [
                session.run(None, {feed_name: x[i : i + batch]})[0] for i in range(0, len(x), batch)
            ]
            return np.concatenate(parts)

        expected = model.predict(x, batch_size=batch, verbose=0)
        difference = float(np.max(np.abs(run_onnx() - expected)))
        dendrite_s = best_of(repeats, lambda: model.predict(x, batch_size=batch, verbose=0))
        onnx_s = best_of(repeats, run_onnx)
    return {"model": name, "dendrite_s": dendrite_s, "onnx_s": onnx_s, "max_diff": difference}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.random((args.samples, 28, 28, 1), dtype=np.float32)
    results = [
        compare("mlp", mlp(), images.reshape(args.samples, 784), args.batch, args.repeats),
        compare("cnn", cnn(), images, args.batch, args.repeats),
    ]
    print(f"{'model':6} {'dendrite':>10} {'onnxruntime':>12} {'ratio':>7} {'max diff':>10}")
    for r in results:
        ratio = r["dendrite_s"] / r["onnx_s"]
        print(
            f"{r['model']:6} {r['dendrite_s']:9.3f}s {r['onnx_s']:11.3f}s {ratio:6.2f}x "
            f"{r['max_diff']:10.2e}"
        )
    return results


if __name__ == "__main__":
    main()
