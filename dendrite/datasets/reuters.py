"""Reuters newswires in 46 topics, as word-index sequences (``keras.datasets.reuters``)."""

from __future__ import annotations

import os

from dendrite.datasets import _keras_sets as sets

__all__ = ["get_label_names", "get_word_index", "load_data"]

# The topic of each label, in label order (Keras' get_label_names).
_LABEL_NAMES = tuple(
    (
        "cocoa grain veg-oil earn acq wheat copper housing money-supply coffee sugar trade "
        "reserves ship cotton carcass crude nat-gas cpi money-fx interest gnp meal-feed alum "
        "oilseed gold tin strategic-metal livestock retail ipi iron-steel rubber heat jobs lei "
        "bop zinc orange pet-chem dlr gas silver wpi hog lead"
    ).split()
)


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


def get_word_index(path: str | os.PathLike[str] | None = "reuters_word_index.json") -> dict:
    """The word -> index dict of the Reuters newswires (``load_data`` adds
    ``index_from=3`` to these indices: 0 is padding, 1 the start, 2 out-of-vocabulary).

    Only a local copy is read, never a download: Keras publishes only an MD5 for
    ``reuters_word_index.json``, and dendrite downloads only files it can check by SHA-256.
    Put the file in the cache (``datasets/reuters`` under ``$DENDRITE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/dendrite`` or ``~/.cache/dendrite``) or in ``$DENDRITE_DATA``, or
    pass its place.

    Args:
        path: Keras' argument, the file's name in the cache (``"reuters_word_index.json"``,
            searched in the usual places, as ``None`` is); or the path of the file itself,
            or of a directory holding ``reuters_word_index.json``.

    Raises:
        DatasetNotFoundError: the file is in none of those places; the message lists where
            it looked.
    """
    return sets.read_word_index("reuters", path)


def get_label_names() -> tuple[str, ...]:
    """The 46 topic names, in the order of ``load_data``'s labels (Keras' tuple)."""
    return _LABEL_NAMES
