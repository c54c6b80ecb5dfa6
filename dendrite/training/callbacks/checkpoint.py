"""``ModelCheckpoint``: save the model (or its weights) every epoch or every N batches,
optionally only when the monitored quantity improves."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from dendrite.distribution.distribution_lib import is_writer
from dendrite.registry import register
from dendrite.training.callbacks.base import Callback
from dendrite.training.callbacks.monitor import check_mode, direction
from dendrite.training.callbacks.save_frequency import SaveFrequency

MODEL_SUFFIXES = (".dendrite", ".keras")
WEIGHTS_SUFFIXES = (".weights.safetensors", ".weights.h5")


@register("callback")
class ModelCheckpoint(SaveFrequency, Callback):
    """Save ``model.save(path)`` (or ``model.save_weights(path)``) during training (Keras).

    Args:
        filepath: where to save; may hold ``str.format`` fields filled with ``epoch``
            (from 1), ``batch`` and the logs, e.g. ``"ckpt/{epoch:02d}-{val_loss:.2f}.dendrite"``.
            Must end in ``.dendrite`` or ``.keras`` (whole model) or, with
            ``save_weights_only``, in ``.weights.safetensors`` (or ``.weights.h5``).
        monitor: the log that decides "best" for ``save_best_only``.
        verbose: 1 prints each save.
        save_best_only: save only when ``monitor`` improves on the best so far.
        save_weights_only: save only the weights.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        save_freq: ``"epoch"`` or a number of batches.
        initial_value_threshold: the "best" value to beat at first (save_best_only).
    """

    def __init__(
        self,
        filepath: Any,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: Any = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.mode = check_mode(mode, "ModelCheckpoint")
        self.best = initial_value_threshold
        self.monitor_op: Any = None
        self.min_delta = 0.0
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool)):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or "
                f"integer values"
            )
        if save_weights_only:
            if not self.filepath.endswith(WEIGHTS_SUFFIXES):
                raise ValueError(
                    f"When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    f"provided must end in `.weights.safetensors` (dendrite weights format) "
                    f"or `.weights.h5` (HDF5, needs h5py). Received: filepath={self.filepath}"
                )
        elif not self.filepath.endswith(MODEL_SUFFIXES):
            raise ValueError(
                f"The filepath provided must end in `.dendrite` or `.keras` (dendrite model "
                f"format). Received: filepath={self.filepath}"
            )

    def _set_monitor_op(self) -> None:
        if direction(self.model, self.monitor, self.mode, "ModelCheckpoint") == "min":
            self.monitor_op = np.less
            if self.best is None:
                self.best = np.inf
        else:
            self.monitor_op = np.greater
            if self.best is None:
                self.best = -np.inf

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_model(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: "
                f"{current}. Falling back to `save_best_only=False`.",
                stacklevel=3,
            )
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self.monitor_op(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise OSError(
                f"Please specify a non-directory filepath for ModelCheckpoint. Filepath used "
                f"is an existing directory: {filepath}"
            )
        if not self._should_save_model(epoch, logs, filepath):
            return
        if not is_writer():  # under data parallelism, rank 0 alone writes
            return
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)

    def _get_file_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as error:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {error}'
            ) from None
