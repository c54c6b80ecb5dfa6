"""What the ``*_dataset_from_directory`` functions share, and ``split_dataset``.

dendrite has no ``tf.data``: where Keras returns a ``tf.data.Dataset``, these functions
return a ``FileDataset``, a ``PyDataset`` that ``fit``/``evaluate``/``predict`` accept
as ``x``. Iterating over it gives the batches (``(x, y)``, or ``x`` alone without labels);
``len()`` is the number of batches; ``class_names`` and ``file_paths`` are set as Keras sets
them. Files are read lazily, batch by batch, in the dataset's workers (``workers=2`` by
default here, threads, so decoding overlaps the training step); ``shuffle=True`` draws a
new order of the files at each epoch from ``seed``, as Keras' shuffle buffer does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dendrite.utils.py_dataset import PyDataset

__all__ = [
    "FileDataset",
    "check_validation_split_arg",
    "get_training_or_validation_split",
    "index_directory",
    "labels_to_array",
    "split_dataset",
]


class FileDataset(PyDataset):
    """Batches read from files: ``load(paths) -> x`` per batch, with labels alongside.

    Args:
        paths: the file of each sample, in order.
        load: reads a list of paths into one batch array (raises naming the file).
        labels: an array of labels (one row per sample, encoded) or None.
        batch_size: samples per batch; None yields single samples, unbatched.
        shuffle: a new order of the samples at each epoch.
        seed: the seed of that order.
        class_names: the class names, kept as an attribute.
        workers, use_multiprocessing, max_queue_size: as ``PyDataset``.
    """

    def __init__(
        self,
        paths: Sequence[str],
        load: Callable[[list[str]], Any],
        labels: np.ndarray | None = None,
        batch_size: int | None = 32,
        shuffle: bool = False,
        seed: int | None = None,
        class_names: list[str] | None = None,
        workers: int = 2,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(workers, use_multiprocessing, max_queue_size)
        self.file_paths = list(paths)
        self.load = load
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.class_names = class_names
        self._rng = np.random.default_rng(seed)
        # The first epoch follows file_paths (already shuffled with the seed); each later
        # one draws a new order.
        self._order = np.arange(len(self.file_paths))

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.file_paths)
        return math.ceil(len(self.file_paths) / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        if self.batch_size is None:
            rows = self._order[index : index + 1]
        else:
            rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.load([self.file_paths[i] for i in rows])
        if self.batch_size is None:
            x = x[0]
        if self.labels is None:
            return x
        y = self.labels[rows]
        return x, (y[0] if self.batch_size is None else y)

    def __iter__(self) -> Any:
        for index in range(len(self)):
            yield self[index]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {len(self.file_paths)} files in {len(self)} batches, "
            f"class_names={self.class_names}>"
        )


def check_validation_split_arg(
    validation_split: float | None, subset: str | None, shuffle: bool, seed: Any
) -> None:
    """Keras' checks of ``validation_split`` / ``subset`` / ``seed``."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be between 0 and 1, received: {validation_split}"
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(
            f'`subset` must be either "training", "validation" or "both", received: {subset}'
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "argument, to make sure that there is no overlap between the training and "
            "validation subset."
        )


def get_training_or_validation_split(
    samples: list,
    labels: Any,
    validation_split: float | None,
    subset: str | None,
    verbose: bool = True,
) -> tuple[list, Any]:
    """The last ``validation_split`` of the samples for "validation", the rest for
    "training" (Keras' cut)."""
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        if verbose:
            print(f"Using {len(samples) - num_val} files for training.")
        cut = slice(0, len(samples) - num_val)
    elif subset == "validation":
        if verbose:
            print(f"Using {num_val} files for validation.")
        cut = slice(len(samples) - num_val, len(samples))
    else:
        raise ValueError(f'`subset` must be either "training" or "validation", received: {subset}')
    return samples[cut], (None if labels is None else labels[cut])


def check_label_arguments(
    labels: Any, label_mode: str | None, class_names: Any, files: str
) -> tuple[Any, str | None]:
    """Keras' checks of ``labels``, ``label_mode`` and ``class_names`` for the
    ``*_dataset_from_directory`` loaders (``files``: "image", "text", "audio"); returns
    ``(labels, label_mode)``, both None when either asks for no labels."""
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                f"`labels` argument should be a list/tuple of integer labels, of the same "
                f"size as the number of {files} files in the target directory. If you wish "
                f"to infer the labels from the subdirectory names in the target directory, "
                f'pass `labels="inferred"`. If you wish to get a dataset that only contains '
                f"{files} samples (no labels), pass `labels=None`. Received: labels={labels}"
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
        return None, None
    return labels, label_mode


def index_labeled_files(
    directory: Any,
    labels: Any,
    label_mode: str | None,
    class_names: Any,
    formats: tuple[str, ...],
    shuffle: bool,
    seed: int,
    follow_links: bool,
    verbose: bool,
) -> tuple[list[str], Any, list[str]]:
    """``(paths, encoded labels, class_names)`` of the files under ``directory`` (see
    ``index_directory``), labels encoded for ``label_mode``."""
    paths, found, class_names = index_directory(
        directory,
        labels,
        formats=formats,
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
    return paths, labels_to_array(found, label_mode, len(class_names)), class_names


def datasets_for_subset(
    paths: list[str],
    labels: Any,
    loader: Any,
    subset: str | None,
    validation_split: float | None,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    class_names: list[str],
    verbose: bool,
    nothing_found: Any,
) -> Any:
    """The ``FileDataset`` of ``subset`` ("training", "validation", None), or both as a
    list for "both" (the training part shuffled each epoch, the validation part not).
    ``nothing_found(which)`` is the error for an empty part (``which``: "training ",
    "validation " when both are asked for, else "")."""

    def make(name: str | None, is_training: bool) -> FileDataset:
        part_paths, part_labels = get_training_or_validation_split(
            paths, labels, validation_split, name, verbose
        )
        if not part_paths:
            which = {"training": "training ", "validation": "validation "}
            raise nothing_found(which.get(name, "") if subset == "both" else "")
        return FileDataset(
            part_paths,
            loader,
            part_labels,
            batch_size=batch_size,
            shuffle=shuffle and is_training,
            seed=seed,
            class_names=class_names,
        )

    if subset == "both":
        return [make("training", True), make("validation", False)]
    return make(subset, True)


def _walk(directory: str, formats: tuple[str, ...], follow_links: bool) -> list[str]:
    """Every file under ``directory`` whose name ends in one of ``formats``, in
    alphanumeric order of the paths (directories sorted, then file names)."""
    found = []
    walk = sorted(os.walk(directory, followlinks=follow_links), key=lambda entry: entry[0])
    for root, _, files in walk:
        for name in sorted(files):
            if name.lower().endswith(formats):
                found.append(os.path.join(root, name))
    return found


def index_directory(
    directory: Any,
    labels: Any,
    formats: tuple[str, ...],
    class_names: Sequence[str] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> tuple[list[str], np.ndarray | None, list[str]]:
    """``(file_paths, labels, class_names)`` of the files under ``directory``.

    With ``labels="inferred"`` each sub-folder is a class (alphanumeric order, or the order
    of ``class_names``); files at the top are not used. Otherwise every file under the
    directory is, in alphanumeric order of the paths, and ``labels`` (a list) gives one
    label per file in that order. ``shuffle`` shuffles files and labels together with
    ``seed`` (Keras' RandomState draw).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"The directory {directory!r} does not exist or is not a directory.")
    if labels == "inferred":
        subdirs = sorted(
            name for name in os.listdir(directory) if os.path.isdir(os.path.join(directory, name))
        )
        if class_names:
            if sorted(class_names) != sorted(subdirs):
                raise ValueError(
                    "The `class_names` passed did not match the names of the subdirectories "
                    f"of the target directory. Expected: {subdirs} (or a subset of it), but "
                    f"received: class_names={list(class_names)}"
                )
            subdirs = list(class_names)
        paths: list[str] = []
        found_labels: list[int] = []
        for index, name in enumerate(subdirs):
            files = _walk(os.path.join(directory, name), formats, follow_links)
            paths += files
            found_labels += [index] * len(files)
        class_names = list(subdirs)
        label_array: np.ndarray | None = np.asarray(found_labels, dtype="int32")
    else:
        paths = _walk(directory, formats, follow_links)
        class_names = list(class_names or [])
        label_array = None
        if labels is not None:
            if len(labels) != len(paths):
                raise ValueError(
                    "Expected the lengths of `labels` to match the number of files in the "
                    f"target directory. len(labels) is {len(labels)} while we found "
                    f"{len(paths)} files in directory {directory}."
                )
            label_array = np.asarray(labels)
            class_names = [str(c) for c in sorted(set(label_array.tolist()))]
    if verbose:
        if labels is None:
            print(f"Found {len(paths)} files.")
        else:
            print(f"Found {len(paths)} files belonging to {len(class_names)} classes.")
    if shuffle:
        if seed is None:
            seed = np.random.randint(1_000_000)
        order = np.arange(len(paths))
        np.random.RandomState(seed).shuffle(order)
        paths = [paths[i] for i in order]
        if label_array is not None:
            label_array = label_array[order]
    return paths, label_array, class_names


def labels_to_array(labels: np.ndarray, label_mode: str | None, num_classes: int) -> Any:
    """Labels encoded as Keras encodes them: "int" int32 (n,), "binary" float32 (n, 1),
    "categorical" float32 one-hot (n, num_classes)."""
    if label_mode is None or labels is None:
        return None
    labels = np.asarray(labels)
    if label_mode == "int":
        return labels.astype("int32")
    if label_mode == "binary":
        return labels.astype("float32").reshape(-1, 1)
    out = np.zeros((len(labels), num_classes), dtype="float32")
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return out


def _split_sizes(total: int, left_size: Any, right_size: Any) -> tuple[int, int]:
    def count(size: Any, name: str) -> int | None:
        if size is None:
            return None
        if isinstance(size, float):
            if not 0 < size < 1:
                raise ValueError(
                    f"`{name}` should be either a positive integer smaller than {total}, or a "
                    f"float within the range `[0, 1]`. Received: {name}={size}"
                )
            return int(round(size * total))
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            if not 0 <= size <= total:
                raise ValueError(
                    f"`{name}` should be smaller than the total number of samples ({total}). "
                    f"Received: {name}={size}"
                )
            return int(size)
        raise TypeError(
            f"Invalid `{name}` value type. Expected either a float or an int. "
            f"Received: {name}={size} (of type {type(size)})"
        )

    if left_size is None and right_size is None:
        raise ValueError(
            "At least one of the `left_size` or `right_size` must be specified. "
            "Received: left_size=None and right_size=None"
        )
    left, right = count(left_size, "left_size"), count(right_size, "right_size")
    if left is None:
        left = total - right
    elif right is None:
        right = total - left
    if left + right > total:
        raise ValueError(
            f"The sum of `left_size` and `right_size` should be smaller than the total number "
            f"of samples ({total}). Received: left_size + right_size = {left + right}"
        )
    if left == 0 or right == 0:
        raise ValueError(
            f"Both `left_size` and `right_size` should be non-zero. Received: left "
            f"{left}, right {right} samples out of {total}."
        )
    return left, right


def split_dataset(
    dataset: Any,
    left_size: Any = None,
    right_size: Any = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[Any, Any]:
    """Split arrays (or a tuple / dict of arrays with one length) into two parts.

    Keras returns two ``tf.data.Dataset`` of samples; dendrite, which has no ``tf.data``,
    returns the two parts in the structure given (arrays, tuples or dicts of arrays), ready
    for ``fit(x, y)``. ``left_size`` / ``right_size``: a fraction in (0, 1) or a count.
    """

    def leaves(data: Any) -> list:
        if isinstance(data, dict):
            return [leaf for v in data.values() for leaf in leaves(v)]
        if isinstance(data, (tuple, list)) and data and not np.isscalar(data[0]):
            if all(hasattr(v, "__len__") for v in data):
                return [leaf for v in data for leaf in leaves(v)]
        return [np.asarray(data)]

    def take(data: Any, rows: np.ndarray) -> Any:
        if isinstance(data, dict):
            return {k: take(v, rows) for k, v in data.items()}
        if isinstance(data, (tuple, list)) and data and not np.isscalar(data[0]):
            if all(hasattr(v, "__len__") for v in data):
                return type(data)(take(v, rows) for v in data)
        return np.asarray(data)[rows]

    sizes = {len(leaf) for leaf in leaves(dataset)}
    if len(sizes) != 1:
        raise ValueError(f"split_dataset: the arrays have different lengths: {sorted(sizes)}")
    total = sizes.pop()
    left, right = _split_sizes(total, left_size, right_size)
    order = np.arange(total)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1_000_000)
        np.random.RandomState(seed).shuffle(order)
    return take(dataset, order[:left]), take(dataset, order[left : left + right])
