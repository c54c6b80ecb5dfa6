"""``History`` (what ``fit`` returns) and ``ProgbarLogger`` (the progress output)."""

from __future__ import annotations

from typing import Any

from dendrite.registry import register
from dendrite.training.callbacks.base import Callback
from dendrite.utils.progbar import Progbar


@register("callback")
class History(Callback):
    """Records the logs of every epoch: ``history.history['loss'][epoch]``, ``history.epoch``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


@register("callback")
class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and Keras' progress bar (verbose=1) or one line (verbose=2)."""

    def __init__(self) -> None:
        super().__init__()
        self.progbar: Progbar | None = None
        self.seen = 0

    def _verbose(self) -> int:
        return int(self.params.get("verbose", 1))

    def _start(self, target: Any) -> None:
        self.seen = 0
        # fit's logs are running means already: shown as they come.
        self.progbar = Progbar(target, verbose=self._verbose(), stateless_metrics=())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._verbose():
            epochs = self.params.get("epochs")
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self._start(self.params.get("steps"))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen = batch + 1
        if self.progbar is not None and self.progbar.dynamic:
            self.progbar.update(self.seen, _numbers(logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progbar is not None:
            self.progbar.update(self.params.get("steps") or self.seen, _numbers(logs), True)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self.model is not None and getattr(self.model, "_in_fit", False):
            return
        self._start(self.params.get("steps"))

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.model is not None and getattr(self.model, "_in_fit", False):
            return
        self.seen = batch + 1
        if self.progbar is not None and self.progbar.dynamic:
            self.progbar.update(self.seen, _numbers(logs))

    def on_test_end(self, logs: dict | None = None) -> None:
        if self.model is not None and getattr(self.model, "_in_fit", False):
            return
        if self.progbar is not None:
            self.progbar.update(self.params.get("steps") or self.seen, _numbers(logs), True)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._start(self.params.get("steps"))

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen = batch + 1
        if self.progbar is not None and self.progbar.dynamic:
            self.progbar.update(self.seen)

    def on_predict_end(self, logs: dict | None = None) -> None:
        if self.progbar is not None:
            self.progbar.update(self.params.get("steps") or self.seen, None, True)


def _numbers(logs: dict | None) -> dict:
    return {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
