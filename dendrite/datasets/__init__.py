"""Datasets with the Keras API: ``dendrite.datasets.fashion_mnist.load_data()`` and ``mnist``.

Also the strict IDX reader they are built on, and the errors they raise.
"""

from dendrite.datasets import fashion_mnist, mnist
from dendrite.datasets._fetch import DatasetChecksumError, DatasetNotFoundError
from dendrite.datasets.idx import IDXFormatError, read_idx

__all__ = [
    "DatasetChecksumError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "fashion_mnist",
    "mnist",
    "read_idx",
]
