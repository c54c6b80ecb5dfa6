"""California housing prices (``keras.datasets.california_housing``): 20,640 districts."""

from __future__ import annotations

import os

from dendrite.datasets import _keras_sets as sets

__all__ = ["load_data"]


def load_data(
    version: str = "large",
    path: str | os.PathLike[str] | None = None,
    test_split: float = 0.2,
    seed: int = 113,
):
    """``(x_train, y_train), (x_test, y_test)``: (n, 8) features and (n,) prices; the
    "small" version keeps the first 600 samples, as Keras."""
    if not (0 <= test_split < 1):
        raise ValueError(
            f"Invalid `test_split` argument: {test_split}. "
            "It must be between 0 and 1 (exclusive of 1)."
        )
    arrays = sets.read_npz(sets.find(sets.CALIFORNIA, path))
    x, y = arrays["x"], arrays["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    elif version != "large":
        raise ValueError(
            f"Argument `version` must be one of 'small', 'large'. Received: version={version}"
        )
    return sets.shuffled_split(x, y, test_split, seed)
