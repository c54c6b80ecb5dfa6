"""Boston housing prices (``keras.datasets.boston_housing``): 506 samples, 13 features."""

from __future__ import annotations

import os

from dendrite.datasets import _keras_sets as sets

__all__ = ["load_data"]


def load_data(path: str | os.PathLike[str] | None = None, test_split: float = 0.2, seed: int = 113):
    """``(x_train, y_train), (x_test, y_test)``: float64 (n, 13) and (n,), as Keras."""
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1), got {test_split}")
    arrays = sets.read_npz(sets.find(sets.BOSTON, path))
    return sets.shuffled_split(arrays["x"], arrays["y"], test_split, seed)
