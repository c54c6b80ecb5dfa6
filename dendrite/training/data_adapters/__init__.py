"""Data adapters beyond in-memory arrays: ``PyDataset`` (with background workers) and
Python generators or iterables of batches (Keras 3's ``trainers/data_adapters``).

Each adapter has the members the ``EpochIterator`` uses: ``num_batches`` (None when
unknown), ``batches(steps)`` (one epoch of packed batches, a generator the trainer closes,
which shuts its workers down) and ``first_batch()`` (a batch to build and check the model
on before any weight changes). ``ArrayDataAdapter`` lives in ``training.epoch_iterator``.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.training.data_adapters.generator_data_adapter import GeneratorDataAdapter
from dendrite.training.data_adapters.py_dataset_adapter import PyDatasetAdapter
from dendrite.utils.py_dataset import PyDataset

__all__ = [
    "GeneratorDataAdapter",
    "PyDatasetAdapter",
    "get_batched_adapter",
    "is_batched_data",
    "raise_unsupported_arg",
]


def is_batched_data(x: Any) -> bool:
    """Whether ``x`` yields whole batches (a PyDataset, a generator, an iterator or another
    iterable that is not an array, a list, a tuple, a dict or a string)."""
    if isinstance(x, PyDataset) or isinstance(x, types.GeneratorType):
        return True
    if isinstance(x, (np.ndarray, Tensor, list, tuple, dict, str, bytes)) or x is None:
        return False
    return isinstance(x, (Iterator, Iterable))


def raise_unsupported_arg(arg_name: str, arg_description: str, input_type: str) -> None:
    raise ValueError(
        f"When providing `x` as a {input_type}, `{arg_name}` should not be passed. Instead, "
        f"{arg_description} should be included as part of the {input_type}."
    )


def get_batched_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    shuffle: bool = False,
    class_weight: dict | None = None,
) -> PyDatasetAdapter | GeneratorDataAdapter:
    """The adapter for batched data ``x``, with Keras' errors for arguments it cannot use."""
    if isinstance(x, PyDataset):
        if y is not None:
            raise_unsupported_arg("y", "the targets", "PyDataset")
        if sample_weight is not None:
            raise_unsupported_arg("sample_weights", "the sample weights", "PyDataset")
        return PyDatasetAdapter(x, class_weight=class_weight, shuffle=shuffle)
    if y is not None:
        raise_unsupported_arg("y", "the targets", "PyDataset")
    if sample_weight is not None:
        raise_unsupported_arg("sample_weights", "the sample weights", "PyDataset")
    if class_weight is not None:
        raise ValueError(
            "Argument `class_weight` is not supported for Python generator inputs. "
            f"Received: class_weight={class_weight}"
        )
    return GeneratorDataAdapter(x)
