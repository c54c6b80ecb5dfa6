"""``BackupAndRestore``: resume an interrupted ``fit`` where it stopped, bit for bit.

At the end of each epoch (or every ``save_freq`` batches) one checkpoint file is written
atomically: weights, optimizer variables, the epoch and the state of every random
generator. When ``fit`` starts again with the same callback, the checkpoint is checked
against the model, restored, and training continues from the next epoch: with epoch
checkpoints, the resumed run ends with the same weights as one that never stopped.
A process killed while the checkpoint is being written leaves the previous one intact.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from dendrite._atomic import remove_stale_temporaries
from dendrite.distribution.distribution_lib import is_writer
from dendrite.saving.checkpoint import restore_for_backup, write_checkpoint
from dendrite.training.callbacks.base import Callback
from dendrite.training.callbacks.save_frequency import SaveFrequency

CHECKPOINT = "latest.checkpoint"


class BackupAndRestore(SaveFrequency, Callback):
    """Back up the training state to ``backup_dir`` and restore it when ``fit`` restarts.

    Args:
        backup_dir: a directory used only by this callback.
        save_freq: ``"epoch"`` (bit-identical resume from the last finished epoch) or a
            number of batches (as Keras: the interrupted epoch restarts from its beginning
            with the weights saved mid-epoch, so that run is not bit-identical).
        delete_checkpoint: remove ``backup_dir`` when training finishes.
    """

    def __init__(self, backup_dir: Any, save_freq: Any = "epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1
        ):
            raise ValueError(
                f"Invalid value for argument `save_freq`. Received: save_freq={save_freq}. "
                f"Expected either 'epoch' or an integer value."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._checkpoint_path = os.path.join(self.backup_dir, CHECKPOINT)
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.model.built:
            raise ValueError(
                f"To use the BackupAndRestore callback, your model must be built before you "
                f"call `fit()`. Model {self.model.name} is unbuilt: call it on a batch of data."
            )
        remove_stale_temporaries(self._checkpoint_path)
        self._current_epoch = 0
        if os.path.exists(self._checkpoint_path):
            epoch = restore_for_backup(self.model, self._checkpoint_path)["epoch"]
            self._current_epoch = epoch
            self.model._initial_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model()

    def _save_model(self) -> None:
        if not is_writer():  # under data parallelism, rank 0 alone writes
            return
        state = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        write_checkpoint(self.model, self._checkpoint_path, state)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint and is_writer() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)
