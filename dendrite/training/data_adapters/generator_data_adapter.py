"""``GeneratorDataAdapter``: batches from a Python generator, iterator or iterable.

A generator is read in the main thread, as in Keras. Its first batch is read once to build
and check the model, then handed to the first step, so nothing is lost. A generator can be
read once: when it runs out before ``steps_per_epoch * epochs`` batches, training stops
with Keras' warning. An iterable that is not an iterator (a ``list`` subclass aside, any
object with ``__iter__``) is iterated afresh at each epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from dendrite.training.data_adapters._batch import standardize_batch

__all__ = ["GeneratorDataAdapter"]

OUT_OF_DATA = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or "
    "generator can generate at least `steps_per_epoch * epochs` batches. You may need to "
    "use the `.repeat()` function when building your dataset."
)


class GeneratorDataAdapter:
    """One epoch of a generator's (or an iterable's) batches, with no known length."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.reiterable = not isinstance(source, Iterator)
        self.iterator: Iterator | None = None
        self.peeked: list = []
        self.num_batches = len(source) if hasattr(source, "__len__") else None
        self.num_samples = None
        self.ran_out = False
        self.what = f"the {type(source).__name__} given as x"
        self.seen = 0

    def _iterator(self) -> Iterator:
        if self.iterator is None:
            self.iterator = iter(self.source)
        return self.iterator

    def first_batch(self) -> tuple:
        """The first batch, kept to be handed to the first step."""
        if not self.peeked:
            try:
                self.peeked.append(next(self._iterator()))
            except StopIteration:
                raise ValueError(f"{self.what} yielded no batch.") from None
        return standardize_batch(self.peeked[0], 0, self.what)

    def batches(self, steps: int | None = None) -> Iterator[tuple]:
        """The packed batches of one epoch: ``steps`` of them, or until the source ends."""
        iterator = self._iterator()
        count = 0
        while steps is None or count < steps:
            if self.peeked:
                item = self.peeked.pop()
            else:
                try:
                    item = next(iterator)
                except StopIteration:
                    if steps is not None or count == 0:
                        self.ran_out = True
                        warnings.warn(OUT_OF_DATA, stacklevel=2)
                    break
            yield standardize_batch(item, count, self.what)
            count += 1
        if self.reiterable and (steps is None or self.ran_out):
            self.iterator = None  # the next epoch starts the iterable again
            self.ran_out = False if steps is None and count else self.ran_out
