"""CIFAR-10: 60,000 32x32 colour images in 10 classes (``keras.datasets.cifar10``)."""

from __future__ import annotations

import os

import numpy as np

from dendrite.datasets import _keras_sets as sets

__all__ = ["load_data"]


def load_data(path: str | os.PathLike[str] | None = None):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (50000, 32, 32, 3) and
    (10000, 32, 32, 3) (channels last, whatever image_data_format says), uint8 labels (n, 1).

    ``path``: a directory holding ``cifar-10-python.tar.gz`` (else the usual places, then
    a verified download). The archive's pickles are read by the restricted reader."""
    file = sets.find(sets.CIFAR10, path)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = sets.read_tar_pickles(file, names)
    parts = []
    for group in (names[:5], names[5:]):
        x = np.concatenate([sets.cifar_images(batches[n], file) for n in group])
        y = np.concatenate([sets.cifar_labels(batches[n], "labels", file) for n in group])
        x = x.transpose(0, 2, 3, 1)  # channels last (datasets import nothing above them)
        parts.append((np.ascontiguousarray(x), y.reshape(-1, 1)))
    return parts[0], parts[1]
