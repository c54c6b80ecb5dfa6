"""The Fashion-MNIST CNN example: its architecture, and (slow: 2-10 minutes on two cores)
five epochs of training to at least 90% test accuracy.

The example standardises the inputs and runs Adam at 3e-3 with a cosine decay and a
moving average of the weights (see its docstring). Measured on the project's machine:
90.19% at seed 0 (the example's seed; 89.97% at seed 1), and 90.08% at seed 0 once the
convolution's gradients were summed by one GEMM and a matrix-vector product (the same
values up to rounding, which training amplifies); Keras 3.15 with the same recipe
89.70%; with [0, 1] inputs and Adam's defaults, dendrite 88.1%, Keras 88.2%, PyTorch
88.5-88.7%. Training is deterministic for a given machine and BLAS (same seed, same
result), so the margin above 90% is the seed-0 run's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist_cnn.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("fashion_mnist_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _have_data() -> bool:
    import dendrite

    try:
        dendrite.datasets.fashion_mnist.load_data()
    except Exception:
        return False
    return True


def test_cnn_model_shapes_and_parameters():
    example = _load_example()
    model = example.build_model()
    shapes = [tuple(w.shape) for w in model.weights]
    assert shapes == [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (1600, 10), (10,)]
    assert model.count_params() == 34826


def test_cnn_optimizer_recipe():
    import dendrite as tf

    example = _load_example()
    optimizer = example.build_optimizer(total_steps=2345)
    schedule = optimizer._learning_rate  # the schedule itself (learning_rate is its value)
    assert isinstance(optimizer, tf.keras.optimizers.Adam) and optimizer.use_ema
    assert isinstance(schedule, tf.keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(3e-3)
    assert float(schedule(2345)) == pytest.approx(0.0, abs=1e-12)
    plain = example.build_optimizer(total_steps=2345, plain=True)
    assert not plain.use_ema and plain.learning_rate == pytest.approx(1e-3)


@pytest.mark.slow
def test_fashion_mnist_cnn_trains_to_90_percent():
    if not _have_data():
        pytest.skip("Fashion-MNIST is not available (apt-get install dataset-fashion-mnist)")
    result = _load_example().main(epochs=5, batch_size=128, verbose=0)
    assert result["test_accuracy"] >= 0.90, result
