"""Datasets with the Keras API: ``dendrite.datasets.fashion_mnist.load_data()``, ``mnist``,
``cifar10``, ``cifar100``, ``imdb``, ``reuters``, ``boston_housing``, ``california_housing``.

Also the strict IDX reader they are built on, and the errors they raise.
"""

from dendrite.datasets import (
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
)
from dendrite.datasets._fetch import DatasetChecksumError, DatasetNotFoundError
from dendrite.datasets.idx import IDXFormatError, read_idx

__all__ = [
    "boston_housing",
    "california_housing",
    "cifar10",
    "cifar100",
    "imdb",
    "reuters",
    "DatasetChecksumError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "fashion_mnist",
    "mnist",
    "read_idx",
]
