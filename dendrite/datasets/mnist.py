"""MNIST: 70,000 28x28 grayscale images of handwritten digits 0-9 (LeCun, Cortes, Burges).

``load_data()`` finds the four IDX files (see ``dendrite.datasets._fetch`` for where it looks),
verifies them, and returns them as Keras does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dendrite.datasets._fetch import DatasetSpec, RemoteFile
from dendrite.datasets._mnist_like import load

__all__ = ["SPEC", "load_data"]

# Sizes and hashes of the four standard files as the mirrors serve them; content_sha256 is
# that of the uncompressed IDX bytes.
SPEC = DatasetSpec(
    name="mnist",
    title="MNIST",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    system_dirs=(Path("/usr/share/datasets/mnist"),),
    n_train=60000,
    n_test=10000,
)


def load_data(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: a directory holding the four files (``.gz`` or uncompressed). Unlike Keras,
            whose ``path`` is a file name inside its cache, this is where to read from, and
            when it is given nothing else is searched. By default the files are looked for
            in ``$DENDRITE_DATA``, ``/usr/share/datasets/mnist`` and the cache, and
            downloaded into the cache (SHA-256 verified) as a last resort.

    Returns:
        Fresh uint8 arrays: ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test``
        (10000, 28, 28), ``y_test`` (10000,); labels are the digits 0..9.

    Raises:
        DatasetNotFoundError: the files are nowhere and cannot be downloaded; the message says
            where it looked and how to get them.
        DatasetChecksumError: a file is not the published one.
        IDXFormatError: a file is damaged or has the wrong shape.
    """
    return load(SPEC, path)
