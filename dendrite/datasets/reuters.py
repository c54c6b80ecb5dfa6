"""Reuters newswires in 46 topics, as word-index sequences (``keras.datasets.reuters``)."""

from __future__ import annotations

import os

from dendrite.datasets import _keras_sets as sets

__all__ = ["load_data"]


def load_data(
    path: str | os.PathLike[str] | None = None,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
):
    """``(x_train, y_train), (x_test, y_test)`` as Keras: object arrays of word-index lists,
    int topic labels, the last ``test_split`` of the shuffled newswires for testing."""
    import numpy as np

    arrays = sets.read_npz(sets.find(sets.REUTERS, path))
    xs, labels = arrays["x"], arrays["y"]
    rng = np.random.RandomState(seed)
    order = np.arange(len(xs))
    rng.shuffle(order)
    xs, labels = xs[order], labels[order]
    xs, labels = sets.sequences(
        xs, labels, num_words, skip_top, maxlen, start_char, oov_char, index_from
    )
    cut = int(len(xs) * (1 - test_split))
    return (sets.object_array(xs[:cut]), np.array(labels[:cut])), (
        sets.object_array(xs[cut:]),
        np.array(labels[cut:]),
    )
