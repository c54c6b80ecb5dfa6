"""``SwapEMAWeights``: evaluate (and optionally checkpoint) with the optimizer's moving
averages of the weights.

With ``use_ema=True`` the optimizer keeps ``a <- m a + (1 - m) w`` for every trainable
weight ``w`` (Polyak averaging). Before evaluation and prediction this callback swaps each
weight with its average, and swaps them back after, so validation metrics are those of
the averaged model while training continues on the raw weights. With
``swap_on_epoch=True`` the averages are also in the model between ``on_epoch_end`` and the
next ``on_epoch_begin`` (for callbacks placed after it, such as ``ModelCheckpoint``); after
the last epoch the averages are restored so that ``fit``'s final
``finalize_variable_values`` writes the averages into the model, as in Keras.

Swaps are in place (``w`` and ``a`` exchange their values through one copy per weight).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.registry import register
from dendrite.training.callbacks.base import Callback


def _ema_optimizers(model: Any) -> list[Any]:
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    inner = getattr(optimizer, "optimizers", None)
    if inner is not None:
        chosen = [opt for opt in inner if getattr(opt, "use_ema", False)]
        if not chosen:
            raise ValueError(
                "SwapEMAWeights must be used when at least one inner optimizer has "
                "`use_ema=True` set."
            )
        return chosen
    if not getattr(optimizer, "use_ema", False):
        raise ValueError(
            "SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. "
            f"Received: use_ema={getattr(optimizer, 'use_ema', None)}"
        )
    return [optimizer]


def _pairs(optimizer: Any) -> list[tuple[Any, Any]]:
    averages = getattr(optimizer, "_averages", None)
    if averages is None:
        raise ValueError(
            "SwapEMAWeights: the optimizer has no moving averages yet; it makes them when it "
            "is built (at the first training step)."
        )
    return list(zip(optimizer._trainable_variables, averages))


@register("callback")
class SwapEMAWeights(Callback):
    """Swap the model's weights with the optimizer's moving averages for evaluation (see
    the module docstring). Use with an optimizer made with ``use_ema=True``.

    Args:
        swap_on_epoch: also hold the averages in the model from ``on_epoch_end`` to the next
            ``on_epoch_begin`` (False).
    """

    def __init__(self, swap_on_epoch: bool = False) -> None:
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _swap_variables(self) -> None:
        for optimizer in _ema_optimizers(self.model):
            for variable, average in _pairs(optimizer):
                held = np.array(variable.data, copy=True)
                variable.data[...] = average.data
                average.data[...] = held

    def _finalize_ema_values(self) -> None:
        for optimizer in _ema_optimizers(self.model):
            for variable, average in _pairs(optimizer):
                average.data[...] = variable.data

    def _to_ema(self) -> None:
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def _to_raw(self) -> None:
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch:
            self._to_raw()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._to_ema()
            if epoch == self.params.get("epochs", 0) - 1:
                # fit writes the averages into the model after the last epoch: give them
                # back their values (the model holds them now).
                self._finalize_ema_values()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._to_ema()

    def on_test_end(self, logs: dict | None = None) -> None:
        self._to_raw()

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._to_ema()

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._to_raw()
