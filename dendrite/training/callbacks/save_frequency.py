"""Keras' ``save_freq=N`` rule, shared by ModelCheckpoint and BackupAndRestore."""

from __future__ import annotations


class SaveFrequency:
    """Mixin: counts batches across epochs and says when ``save_freq`` of them have passed.

    The host sets ``save_freq`` ('epoch' or a positive int), ``_last_batch_seen`` and
    ``_batches_seen_since_last_saving`` (both 0) in its ``__init__``.
    """

    save_freq: int | str
    _last_batch_seen: int
    _batches_seen_since_last_saving: int

    def _should_save_on_batch(self, batch: int) -> bool:
        if self.save_freq == "epoch":
            return False
        if batch <= self._last_batch_seen:  # a new epoch
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False
