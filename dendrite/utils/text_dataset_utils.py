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
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, of the same "
                "size as the number of text files in the target directory. If you wish to "
                "infer the labels from the subdirectory names in the target directory, pass "
                '`labels="inferred"`. If you wish to get a dataset that only contains text '
                f"(no labels), pass `labels=None`. Received: labels={labels}"
            )
        if class_names:
            raise ValueError(
                'You can only pass `class_names` if `labels="inferred"`. '
                f"Received: labels={labels}, and class_names={class_names}"
            )
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError(
            '`label_mode` argument must be one of "int", "categorical", "binary", '
            f"or None. Received: label_mode={label_mode}"
        )
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1_000_000)
    paths, found, class_names = dataset_utils.index_directory(
        directory,
        labels,
        formats=(".txt",),
        class_names=class_names,
        shuffle=shuffle,
        seed=seed,
        follow_links=follow_links,
        verbose=verbose,
    )
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={class_names}"
        )
    encoded = dataset_utils.labels_to_array(found, label_mode, len(class_names))
    loader = TextLoader(max_length)

    return dataset_utils.datasets_for_subset(
        paths, encoded, loader, subset, validation_split, batch_size, shuffle, seed,
        class_names, verbose,
        lambda which: ValueError(
            f"No {which}text files found in directory {directory}. Allowed format: .txt"
        ),
    )  # fmt: skip
