"""``Callback`` (Keras' hooks into fit/evaluate/predict) and ``CallbackList``."""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class: override the hooks you need. ``self.model`` and ``self.params`` are set
    by the training loop before ``on_train_begin``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


class CallbackList(Callback):
    """Calls each hook on every callback, in order. Batch hooks that no callback overrides
    are skipped entirely, so an empty list costs nothing per step."""

    def __init__(self, callbacks: list[Callback] | None = None, model: Any = None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for hook in _HOOKS:
            implementers = [
                getattr(cb, hook)
                for cb in self.callbacks
                if getattr(type(cb), hook, None) is not getattr(Callback, hook)
                or isinstance(cb, CallbackList)
            ]
            setattr(self, hook, _fan_out(implementers))
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_model(self, model: Any) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def append(self, callback: Callback) -> None:
        self.__init__([*self.callbacks, callback], model=self.model, **self.params)

    def __iter__(self):
        return iter(self.callbacks)


def _fan_out(methods: list) -> Any:
    if not methods:
        return _nothing
    if len(methods) == 1:
        return methods[0]

    def call_all(*args: Any, **kwargs: Any) -> None:
        for method in methods:
            method(*args, **kwargs)

    return call_all


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None
