"""``keras.utils.text_dataset_from_directory``: a folder of ``.txt`` files as a dataset.

Returns a ``FileDataset`` (a ``PyDataset``; see ``dendrite.utils.dataset_utils``) whose
batches are ``(texts, labels)``: ``texts`` a 1-D NumPy array of ``str`` (``TextVectorization``
takes it), read as UTF-8 when ``fit`` asks for the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.utils import dataset_utils

__all__ = ["text_dataset_from_directory"]


class TextLoader:
    """Reads text files into one array of strings (picklable for process workers)."""

    def __init__(self, max_length: int | None) -> None:
        self.max_length = max_length

    def __call__(self, paths: list[str]) -> np.ndarray:
        texts = []
        for path in paths:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"Cannot read the text file {path}: {error}") from None
            if self.max_length is not None:
                text = text[: self.max_length]
            texts.append(text)
        return np.asarray(texts, dtype=str)


def text_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: list[str] | None = None,
    batch_size: int | None = 32,
    max_length: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> Any:
    """A dataset of the ``.txt`` files under ``directory`` (Keras 3's arguments).

    Returns:
        A ``FileDataset`` of ``(texts, labels)`` batches (texts alone without labels), with
        ``class_names`` and ``file_paths``; with ``subset="both"``, a list of two.
    """
    labels, label_mode = dataset_utils.check_label_arguments(
        labels, label_mode, class_names, "text"
    )
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1_000_000)
    paths, encoded, class_names = dataset_utils.index_labeled_files(
        directory, labels, label_mode, class_names, (".txt",), shuffle, seed,
        follow_links, verbose,
    )  # fmt: skip
    loader = TextLoader(max_length)

    return dataset_utils.datasets_for_subset(
        paths, encoded, loader, subset, validation_split, batch_size, shuffle, seed,
        class_names, verbose,
        lambda which: ValueError(
            f"No {which}text files found in directory {directory}. Allowed format: .txt"
        ),
    )  # fmt: skip
