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

    # Every hook receives ``logs``, a dict: ``{}`` where Keras passes nothing (the
    # ``*_begin`` hooks), the step's logs at ``*_batch_end``, the epoch's at
    # ``on_epoch_end``, ``{"outputs": ...}`` at ``on_predict_batch_end``.
    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # As Keras: the older on_batch_begin still hears the training batches.
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]
# A callback that overrides only the older hook still needs the newer one called.
_ALSO_IMPLEMENTED_BY = {
    "on_train_batch_begin": "on_batch_begin",
    "on_train_batch_end": "on_batch_end",
}


def _implements(callback: Callback, hook: str) -> bool:
    if isinstance(callback, CallbackList):
        return True
    cls = type(callback)
    if getattr(cls, hook, None) is not getattr(Callback, hook):
        return True
    older = _ALSO_IMPLEMENTED_BY.get(hook)
    return older is not None and getattr(cls, older, None) is not getattr(Callback, older)


class CallbackList(Callback):
    """Calls each hook on every callback, in order. Batch hooks that no callback overrides
    are skipped entirely, so an empty list costs nothing per step."""

    def __init__(self, callbacks: list[Callback] | None = None, model: Any = None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for hook in _HOOKS:
            implementers = [getattr(cb, hook) for cb in self.callbacks if _implements(cb, hook)]
            setattr(self, hook, _fan_out(hook, implementers))
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


def _fan_out(hook: str, methods: list) -> Any:
    """One dispatcher for ``hook``: each implementer called as Keras' CallbackList calls it
    (``logs`` always a dict; by keyword at the batch hooks, by position elsewhere)."""
    if not methods:
        return _nothing
    if "batch" in hook:

        def call_batch(batch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            for method in methods:
                method(batch, logs=logs)

        return call_batch
    if hook.startswith("on_epoch"):

        def call_epoch(epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            for method in methods:
                method(epoch, logs)

        return call_epoch

    def call(logs: dict | None = None) -> None:
        logs = logs or {}
        for method in methods:
            method(logs)

    return call


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None
