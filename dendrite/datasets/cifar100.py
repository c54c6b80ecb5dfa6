"""CIFAR-100: 60,000 32x32 colour images in 100 classes (``keras.datasets.cifar100``)."""

from __future__ import annotations

import os

import numpy as np

from dendrite.datasets import _keras_sets as sets

__all__ = ["load_data"]


def load_data(label_mode: str = "fine", path: str | os.PathLike[str] | None = None):
    """``(x_train, y_train), (x_test, y_test)`` as ``cifar10``, labels of ``label_mode``
    "fine" (100 classes) or "coarse" (20 super-classes)."""
    if label_mode not in ["fine", "coarse"]:
        raise ValueError(
            f'`label_mode` must be one of `"fine"`, `"coarse"`. Received: label_mode={label_mode}.'
        )
    file = sets.find(sets.CIFAR100, path)
    batches = sets.read_tar_pickles(file, ["train", "test"])
    parts = []
    for name in ("train", "test"):
        x = sets.cifar_images(batches[name], file)
        y = sets.cifar_labels(batches[name], f"{label_mode}_labels", file)
        x = x.transpose(0, 2, 3, 1)  # channels last (datasets import nothing above them)
        parts.append((np.ascontiguousarray(x), y.reshape(-1, 1)))
    return parts[0], parts[1]
