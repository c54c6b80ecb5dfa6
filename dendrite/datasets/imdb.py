"""IMDB movie reviews, as word-index sequences labelled by sentiment (``keras.datasets.imdb``)."""

from __future__ import annotations

import os

import numpy as np

from dendrite.datasets import _keras_sets as sets

__all__ = ["get_word_index", "load_data"]


def load_data(
    path: str | os.PathLike[str] | None = None,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    **kwargs,
):
    """``(x_train, y_train), (x_test, y_test)``: object arrays of word-index lists and int
    labels (1 positive), preprocessed exactly as Keras does. ``path``: a directory holding
    ``imdb.npz`` (unlike Keras' file name in its cache)."""
    arrays = sets.read_npz(sets.find(sets.IMDB, path))
    x_train, labels_train = arrays["x_train"], arrays["y_train"]
    x_test, labels_test = arrays["x_test"], arrays["y_test"]
    rng = np.random.RandomState(seed)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, labels_train = x_train[order], labels_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, labels_test = x_test[order], labels_test[order]
    n_train = len(x_train)
    if maxlen:
        train = sets.sequences(x_train, labels_train, 0, 0, maxlen, start_char, None, index_from)
        test = sets.sequences(x_test, labels_test, 0, 0, maxlen, start_char, None, index_from)
        if not train[0] or not test[0]:
            raise ValueError(
                f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was "
                "kept. Increase maxlen."
            )
        xs, labels = train[0] + test[0], np.concatenate([train[1], test[1]])
        n_train = len(train[0])
        xs, labels = sets.sequences(xs, labels, num_words, skip_top, None, None, oov_char, 0)
    else:
        xs, labels = sets.sequences(
            list(x_train) + list(x_test),
            np.concatenate([labels_train, labels_test]),
            num_words,
            skip_top,
            None,
            start_char,
            oov_char,
            index_from,
        )
    return (sets.object_array(xs[:n_train]), labels[:n_train]), (
        sets.object_array(xs[n_train:]),
        labels[n_train:],
    )


def get_word_index(path: str | os.PathLike[str] | None = "imdb_word_index.json") -> dict:
    """The word -> index dict of the reviews (``load_data`` adds ``index_from=3``), read
    only from a local copy (no download: Keras publishes no SHA-256 for it). ``path``, as
    Keras': the file's name in the cache (searched in the usual places, as ``None`` is),
    or the file itself, or a directory holding ``imdb_word_index.json``."""
    return sets.read_word_index("imdb", path)
