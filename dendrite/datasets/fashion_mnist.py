"""Fashion-MNIST: 70,000 28x28 grayscale images of clothing in 10 classes (Zalando, MIT).

``load_data()`` finds the four IDX files (see ``dendrite.datasets._fetch`` for where it looks;
on Debian, ``apt-get install dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``), verifies them, and returns them as Keras does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dendrite.datasets._fetch import DatasetSpec, RemoteFile
from dendrite.datasets._mnist_like import load

__all__ = ["SPEC", "class_names", "load_data"]

#: Label i is the garment ``class_names[i]``.
class_names: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Sizes and hashes of the files as zalandoresearch publishes them (MD5s in its README:
# 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...). Debian ships the same content
# recompressed, so its .gz differ; content_sha256 is that of the uncompressed IDX bytes.
SPEC = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    n_train=60000,
    n_test=10000,
    how_to_get=("on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist;",),
)


def load_data(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: a directory holding the four files (``.gz`` or uncompressed). Unlike Keras,
            whose ``path`` is a file name inside its cache, this is where to read from, and
            when it is given nothing else is searched. By default the files are looked for
            in ``$DENDRITE_DATA``, ``/usr/share/datasets/fashion-mnist`` and the cache, and
            downloaded into the cache (SHA-256 verified) as a last resort.

    Returns:
        Fresh uint8 arrays: ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test``
        (10000, 28, 28), ``y_test`` (10000,); labels in 0..9 index ``class_names``.

    Raises:
        DatasetNotFoundError: the files are nowhere and cannot be downloaded; the message says
            where it looked and how to get them.
        DatasetChecksumError: a file is not the published one.
        IDXFormatError: a file is damaged or has the wrong shape.
    """
    return load(SPEC, path)
