"""Small callbacks: ``TerminateOnNaN``, ``LambdaCallback`` and ``PlotHistory`` (the
training-curve picture, rewritten at the end of every epoch)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from dendrite.registry import register
from dendrite.training.callbacks.base import Callback


@register("callback")
class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


_LAMBDA_HOOKS = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_begin",
    "on_train_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


@register("callback")
class LambdaCallback(Callback):
    """A callback from plain functions (Keras's signatures): ``on_epoch_begin(epoch,
    logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``, and the
    test/predict hooks as keyword arguments (``on_batch_begin``/``on_batch_end`` mean the
    training batch hooks)."""

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_train_batch_begin: Callable | None = None,
        on_train_batch_end: Callable | None = None,
        **kwargs: Callable,
    ) -> None:
        super().__init__()
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin or kwargs.pop("on_batch_begin", None),
            "on_train_batch_end": on_train_batch_end or kwargs.pop("on_batch_end", None),
        }
        for name in list(kwargs):
            if name not in _LAMBDA_HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}.")
            given[name] = kwargs.pop(name)
        self._hooks = {name: fn for name, fn in given.items() if fn is not None}
        # Only the hooks given are overridden, so CallbackList skips the others entirely.
        overrides = {name: _dispatch(name) for name in self._hooks}
        self.__class__ = type("LambdaCallback", (LambdaCallback,), overrides)


def _dispatch(name: str) -> Callable:
    # Keras passes (epoch or batch, logs) or (logs); logs is a dict ({} when empty).
    arity = (
        1
        if name.endswith(
            (
                "_train_begin",
                "_train_end",
                "_test_begin",
                "_test_end",
                "_predict_begin",
                "_predict_end",
            )
        )
        else 2
    )

    def hook(self: LambdaCallback, *args: Any, **kwargs: Any) -> None:
        values = list(args) + [kwargs.get("logs")] * (arity - len(args))
        self._hooks[name](*values[:arity])

    hook.__name__ = name
    return hook


@register("callback")
class PlotHistory(Callback):
    """Redraw the training curves (loss and each metric, train and validation) to
    ``filepath`` (PNG) at the end of every epoch. Needs matplotlib; without it, warns once
    and draws nothing.

    Args:
        filepath: the picture's path.
        title: an optional title.
    """

    def __init__(self, filepath: Any = "training_curve.png", title: str | None = None) -> None:
        super().__init__()
        self.filepath = filepath
        self.title = title
        self.history: dict[str, list] = {}
        self._warned = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from dendrite.training.plotting import plot_history

        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if not self.history:
            return
        if not plot_history(self.history, self.filepath, title=self.title) and not self._warned:
            self._warned = True
            warnings.warn(
                "PlotHistory draws nothing: matplotlib is not installed (pip install "
                "'dendrite[plot]').",
                stacklevel=2,
            )
