"""``EarlyStopping``: stop when a monitored quantity stops improving (the design
document's 9.3 over-fitting remedy), optionally restoring the best epoch's weights."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite.registry import register
from dendrite.training.callbacks.base import Callback
from dendrite.training.callbacks.monitor import check_mode, direction


@register("callback")
class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras).

    Args:
        monitor: the log to watch (``"val_loss"``, ``"accuracy"``, ...).
        min_delta: a change smaller than this does not count as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1 prints when stopping and restoring.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (inferred from the name).
        baseline: training stops unless the quantity beats this within ``patience`` epochs.
        restore_best_weights: at the end, set the weights of the best epoch (the best of
            those seen, even when none beats ``baseline``).
        start_from_epoch: epochs to wait before monitoring (warm-up).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights: list | None = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch
        self.mode = check_mode(mode, "EarlyStopping")
        self.monitor_op: Any = None
        self.best = np.inf

    def _set_monitor_op(self) -> None:
        if direction(self.model, self.monitor, self.mode, "EarlyStopping") == "min":
            self.monitor_op = np.less
            self.min_delta *= -1
            self.best = np.inf
        else:
            self.monitor_op = np.greater
            self.best = -np.inf

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict | None) -> Any:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(list(logs.keys()))}",
                stacklevel=2,
            )
        return value

    def _is_improvement(self, value: Any, reference: Any) -> bool:
        return bool(self.monitor_op(value - self.min_delta, reference))
