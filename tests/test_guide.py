"""Every program of the guide through the design document (docs/guide.md,
examples/guide_design_document.py) runs and its checks hold; the pictures it draws are
the guide's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import guide_design_document as guide  # noqa: E402

FAST = [
    guide.section_neuron_and_activations,
    guide.section_loss_surface,
    guide.section_backprop_by_hand,
    guide.section_sequences_and_text,
]
DATA = [
    guide.section_training_loop,
    guide.section_document_program,
    guide.section_overfitting,
    guide.section_learning_rate,
    guide.section_explain_cnn,
]


@pytest.mark.parametrize("section", FAST, ids=lambda f: f.__name__)
def test_fast_sections(section, tmp_path):
    section(tmp_path)
    assert list(tmp_path.glob("*.png")) or section is guide.section_backprop_by_hand


@pytest.mark.slow
@pytest.mark.parametrize("section", DATA, ids=lambda f: f.__name__)
def test_fashion_mnist_sections(section, tmp_path):
    try:
        guide._fashion(10)
    except Exception as error:
        pytest.skip(f"Fashion-MNIST is not available: {error}")
    section(tmp_path)
    assert list(tmp_path.glob("*.png"))
