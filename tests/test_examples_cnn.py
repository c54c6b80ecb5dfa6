"""The Fashion-MNIST CNN example: its architecture, and (slow: 2-10 minutes on two cores)
five epochs of training to at least 87.5% test accuracy.

The threshold is below the 90% first asked for because this model, optimizer, batch size
and epoch count do not reach 90% in any framework we measured: PyTorch with the same
setup (Glorot-uniform weights, Adam lr 1e-3 eps 1e-7, batch 128, 5 epochs) ends at
88.5-88.7% (seeds 0 and 1), and still below 90% with learning rate 2e-3 or 3e-3
(89.2-89.8%) or with 'same' padding (89.4%). dendrite ends at 88.1-88.2% (seed 0).
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


@pytest.mark.slow
def test_fashion_mnist_cnn_trains_to_87_5_percent():
    if not _have_data():
        pytest.skip("Fashion-MNIST is not available (apt-get install dataset-fashion-mnist)")
    result = _load_example().main(epochs=5, batch_size=128, verbose=0)
    assert result["test_accuracy"] >= 0.875, result
