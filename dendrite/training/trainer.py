"""``Trainer``: compile / fit / evaluate / predict (the design document's 3.4 training loop).

Each step: forward the batch (3.1), compute the loss (2.4), back-propagate (3.2), and let
the optimizer update the weights (2.5, 4.3), repeated over shuffled batches for a number of
epochs, with callbacks deciding when to stop. The trainer uses the model only through
``model(x, training=)``, ``trainable_weights`` and ``losses``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from dendrite import metrics as metrics_module
from dendrite import optimizers as optimizers_module
from dendrite.core import Tensor, no_grad
from dendrite.core.backprop import backprop
from dendrite.training import data as data_utils
from dendrite.training.callbacks import Callback, CallbackList, History, ProgbarLogger
from dendrite.training.compile_utils import CompileLoss, CompileMetrics
from dendrite.training.custom_steps import (
    logs_to_python,
    overrides_with_data,
    pack_x_y_sample_weight,
)


def _verbosity(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}.")
    return int(verbose)


class Trainer:
    """Mixed into ``Model``: Keras' training API."""

    _compiled = False

    # --- compile --------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configure training: the optimizer, the loss (by name, object or function) and
        the metrics. ``jit_compile`` and ``steps_per_execution`` are accepted and ignored."""
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = loss
        self.compiled_loss = CompileLoss(loss, loss_weights) if loss is not None else None
        if loss is not None and not self.compiled_loss.built:
            # Resolve names now, so an unknown loss fails at compile as in Keras.
            _validate_loss_names(loss)
            self.compiled_loss.output_names = self._output_names
        self.compiled_metrics = CompileMetrics(metrics, loss, output_names=self._output_names)
        self.compiled_weighted_metrics = CompileMetrics(
            weighted_metrics,
            loss,
            name="weighted_compile_metrics",
            prefix="weighted_",
            output_names=self._output_names,
        )
        # Keras 3's loss tracker: the running mean of the loss, first in ``self.metrics``.
        self._loss_tracker = metrics_module.Mean(name="loss")
        if metrics is not None:
            _validate_metric_names(metrics)
        self._compiled = True
        self.stop_training = False

    def _assert_compiled(self, method: str) -> None:
        if not self._compiled:
            raise RuntimeError(
                f"You must call `compile()` before using the model: `{method}()` needs an "
                f"optimizer and a loss (e.g. model.compile(optimizer='adam', "
                f"loss='sparse_categorical_crossentropy'))."
            )

    @property
    def metrics(self) -> list:
        """As Keras 3: the loss tracker (a Mean named "loss") and the compiled metrics'
        container ("compile_metrics", whose result() is a dict), once compiled."""
        if getattr(self, "compiled_metrics", None) is None:
            return []
        found = [self._loss_tracker, self.compiled_metrics]
        if self.compiled_weighted_metrics.spec is not None:
            found.append(self.compiled_weighted_metrics)
        return found

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self._metric_results()]

    def _output_names(self, y_pred: Any) -> list[str]:
        names = getattr(self, "output_names", None)
        if isinstance(y_pred, dict):
            return list(y_pred)
        if isinstance(y_pred, (list, tuple)):
            if names and len(names) == len(y_pred):
                return list(names)
            return [f"output_{i}" for i in range(len(y_pred))]
        return list(names or ["output"])

    def _build_compiled(self, y: Any, y_pred: Any, sample_weight: Any = None) -> None:
        names = self._output_names(y_pred)
        if self.compiled_loss is not None and not self.compiled_loss.built:
            self.compiled_loss.build(y_pred, names)
        if not self.compiled_metrics.built:
            self.compiled_metrics.build(y, y_pred, names)
            self.compiled_weighted_metrics.build(y, y_pred, names)

    # --- one step -------------------------------------------------------------------------
    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Tensor:
        """The training objective: the compiled loss plus every penalty in ``self.losses``."""
        total, parts = None, {}
        if self.compiled_loss is not None:
            if not self.compiled_loss.built:
                self._build_compiled(y, y_pred, sample_weight)
            total, parts = self.compiled_loss.compute(y, y_pred, sample_weight)
        # Straight into __dict__: Layer's tracking __setattr__ is not needed for a dict.
        self.__dict__["_last_loss_parts"] = parts
        for penalty in self.losses:
            total = penalty if total is None else total + penalty
        if total is None:
            raise ValueError(
                "The model has no loss to optimise: compile it with loss=..., or add a loss "
                "in call() with self.add_loss(...)."
            )
        return total

    def train_step(self, x: Any, y: Any, sample_weight: Any = None) -> float:
        """Forward, loss, backward and update on one batch; returns the loss value."""
        y_pred = self(x, training=True)
        if not self.compiled_metrics.built:
            self._build_compiled(y, y_pred, sample_weight)
        loss = self.compute_loss(x, y, y_pred, sample_weight)
        # fit() looks the weights up once per epoch; other callers get them fresh.
        variables = self.__dict__.get("_epoch_variables") or self.trainable_weights
        if not self.optimizer.built:
            self.optimizer.build(variables)
        if loss.requires_grad:
            found = backprop(loss, np.ones(loss.data.shape, loss.data.dtype))
            pairs = [(found[id(v)][1], v) for v in variables if id(v) in found]
            if pairs:
                self.optimizer.apply_gradients(pairs)
        self._update_metrics(y, y_pred, sample_weight)
        return float(loss.data)

    def test_step(self, x: Any, y: Any, sample_weight: Any = None) -> float:
        with no_grad():
            y_pred = self(x, training=False)
            if not self.compiled_metrics.built:
                self._build_compiled(y, y_pred, sample_weight)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        self._update_metrics(y, y_pred, sample_weight)
        return float(loss.data)

    def predict_step(self, x: Any) -> Any:
        with no_grad():
            return self(x, training=False)

    def _update_metrics(self, y: Any, y_pred: Any, sample_weight: Any) -> None:
        self.compiled_metrics.update(y, y_pred)
        if sample_weight is not None:
            self.compiled_weighted_metrics.update(y, y_pred, sample_weight)

    def _metric_results(self) -> dict[str, Any]:
        results = {}
        if getattr(self, "compiled_metrics", None) is not None:
            results.update(self.compiled_metrics.results())
            results.update(
                {f"weighted_{k}": v for k, v in self.compiled_weighted_metrics.results().items()}
            )
        return results

    def reset_metrics(self) -> None:
        """Reset every metric in ``self.metrics`` (a subclass may list its own trackers)."""
        self.compiled_metrics.reset()
        self.compiled_weighted_metrics.reset()
        for metric in self.metrics:
            metric.reset_state()

    # --- checks before any weight changes -------------------------------------------------
    def _custom_step(self, name: str) -> bool:
        """Whether this model overrides ``name`` with Keras' one-argument ``(data)`` form."""
        return overrides_with_data(type(self), name, getattr(Trainer, name))

    def _prepare(self, x: Any, y: Any, sample_weight: Any, method: str) -> tuple:
        self._assert_compiled(method)
        x = data_utils.to_arrays(x, "x")
        y = data_utils.to_arrays(y, "y")
        sample_weight = data_utils.to_arrays(sample_weight, "sample_weight")
        step = "train_step" if method in ("fit", "train_on_batch") else "test_step"
        if self._custom_step(step):
            pass  # the step computes its own loss, with or without a compiled one
        elif y is not None and self.compiled_loss is None:
            raise ValueError(
                f"`{method}()` received targets y, but the model was compiled without a loss. "
                f"Pass loss= to compile()."
            )
        if y is None and self.compiled_loss is not None:
            raise ValueError(f"`{method}()` needs targets y for the compiled loss.")
        n = data_utils.num_samples(x, y, sample_weight)
        data_utils.check_finite(x, "x")
        return x, y, sample_weight, n

    def _dry_run(self, x: Any, y: Any) -> None:
        """Build the model and check shapes and labels on one sample before training."""
        one = data_utils.take(x, slice(0, 1))
        with no_grad(), _stateful_states_set_aside(self):
            y_pred = self(one, training=False)
        if not self.compiled_metrics.built:
            self._build_compiled(data_utils.take(y, slice(0, 1)), y_pred)
        if self.compiled_loss is not None and y is not None:
            self.compiled_loss.check_targets(y, y_pred)

    # --- fit / evaluate / predict ---------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: list[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        """Train for ``epochs`` epochs over shuffled batches (the last partial one included).

        Returns a ``History`` whose ``history`` maps each log name to its per-epoch values.
        """
        x, y, sample_weight, n = self._prepare(x, y, sample_weight, "fit")
        batch_size = _batch_size(batch_size, 32)
        verbose = _verbosity(verbose)
        if validation_data is not None:
            val = _unpack_validation(validation_data)
        elif validation_split:
            (x, y, sample_weight), val = data_utils.split_validation(
                x, y, sample_weight, validation_split
            )
            n = data_utils.num_samples(x, y, sample_weight)
        else:
            val = None
        if val is not None:
            # Checked once here; each epoch's validation reuses the checked arrays.
            val = self._prepare(*val, "fit")
        if class_weight is not None:
            if not isinstance(y, np.ndarray):
                raise ValueError("class_weight is only supported for models with one output.")
            weights = data_utils.class_weights_to_sample_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        if n == 0:
            raise ValueError("fit() received no samples (x has length 0).")
        self._dry_run(x, y)
        steps = math.ceil(n / batch_size)
        if steps_per_epoch is not None:
            steps = min(steps, int(steps_per_epoch))
        history = History()
        callback_list = self._callbacks(
            callbacks, history, verbose, epochs=epochs, steps=steps, batch_size=batch_size
        )
        self.stop_training = False
        self.history = history
        self._initial_epoch = None
        callback_list.on_train_begin()
        # A callback (BackupAndRestore) may resume from a later epoch, as in Keras.
        initial_epoch = self._initial_epoch or initial_epoch
        logs: dict[str, Any] = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            tracker = _LossTracker()
            want_logs = callback_list.wants_batch_logs("train")
            custom = self._custom_step("train_step")
            step_logs: dict[str, Any] = {}
            self._epoch_variables = self.trainable_weights
            for step, index in enumerate(data_utils.batch_indices(n, batch_size, shuffle, steps)):
                xb = data_utils.take(x, index)
                yb = data_utils.take(y, index)
                sw = data_utils.take(sample_weight, index)
                callback_list.on_train_batch_begin(step)
                if custom:
                    data = pack_x_y_sample_weight(xb, yb, sw)
                    step_logs = logs_to_python(self.train_step(data), "train_step")
                    if want_logs:
                        callback_list.on_train_batch_end(step, step_logs)
                else:
                    count = len(data_utils.leaves(xb)[0])
                    tracker.update(self.train_step(xb, yb, sw), self, count)
                    if want_logs:
                        logs = {**tracker.result(), **self._metric_results()}
                        callback_list.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            self._epoch_variables = None
            logs = dict(step_logs) if custom else self._epoch_logs(tracker)
            if val is not None and (epoch + 1) % validation_freq == 0:
                self._in_fit = True
                try:
                    val_logs = self._evaluate_checked(
                        *val,
                        batch_size=_batch_size(validation_batch_size, batch_size),
                        verbose=0,
                        steps=validation_steps,
                        callbacks=callback_list,
                    )
                finally:
                    self._in_fit = False
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        if epochs > 0 and hasattr(self.optimizer, "finalize_variable_values"):
            # As Keras: with use_ema, training ends on the weights' moving averages.
            self.optimizer.finalize_variable_values(self.trainable_weights)
        callback_list.on_train_end(logs)
        return history

    def _epoch_logs(self, tracker: _LossTracker) -> dict[str, Any]:
        metrics = self._metric_results()
        logs = {k: metrics[k] for k in sorted(metrics)}
        logs.update(tracker.result())
        # Keras' loss tracker (model.metrics[0]) holds the same batch-weighted mean, set
        # once here rather than updated at every step.
        self._loss_tracker.reset_state()
        if tracker.seen:
            self._loss_tracker.update_state(logs["loss"], sample_weight=tracker.seen)
        return logs

    def _callbacks(self, callbacks: Any, history: History | None, verbose: int, **params):
        given = list(callbacks or [])
        if isinstance(callbacks, CallbackList):
            given = list(callbacks.callbacks)
        extra: list[Callback] = []
        if history is not None:
            extra.append(history)
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in given):
            extra.append(ProgbarLogger())
        return CallbackList(given + extra, model=self, verbose=verbose, **params)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: list[Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """The loss (and metrics) on the given data: a scalar, a list, or a dict."""
        x, y, sample_weight, n = self._prepare(x, y, sample_weight, "evaluate")
        logs = self._evaluate_checked(
            x,
            y,
            sample_weight,
            n,
            _batch_size(batch_size, 32),
            _verbosity(verbose),
            steps,
            callbacks,
        )
        return _keras_result(logs, return_dict)

    def _evaluate_checked(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        n: int,
        batch_size: int,
        verbose: int,
        steps: int | None,
        callbacks: list[Callback] | None,
    ) -> dict[str, Any]:
        """evaluate() on data that ``_prepare`` has already converted and checked."""
        total = math.ceil(n / batch_size)
        steps = total if steps is None else min(int(steps), total)
        if getattr(self, "_in_fit", False) and isinstance(callbacks, CallbackList):
            # fit's validation runs its own callbacks' on_test_* hooks, as in Keras, without
            # replacing the parameters (steps, epochs) they were given for training.
            callback_list = callbacks
        else:
            callback_list = self._callbacks(callbacks, None, verbose, steps=steps)
        self.reset_metrics()
        callback_list.on_test_begin()
        tracker = _LossTracker()
        custom = self._custom_step("test_step")
        step_logs: dict[str, Any] = {}
        for step, index in enumerate(data_utils.batch_indices(n, batch_size, False, steps)):
            callback_list.on_test_batch_begin(step)
            xb = data_utils.take(x, index)
            yb, sw = data_utils.take(y, index), data_utils.take(sample_weight, index)
            if custom:
                data = pack_x_y_sample_weight(xb, yb, sw)
                step_logs = logs_to_python(self.test_step(data), "test_step")
                callback_list.on_test_batch_end(step, step_logs)
                continue
            count = len(data_utils.leaves(xb)[0])
            tracker.update(self.test_step(xb, yb, sw), self, count)
            callback_list.on_test_batch_end(step, tracker.result())
        logs = dict(step_logs) if custom else self._epoch_logs(tracker)
        callback_list.on_test_end(logs)
        return logs

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: list[Callback] | None = None,
    ) -> Any:
        """Model outputs for ``x`` as ndarrays, computed in batches without gradients."""
        x = data_utils.to_arrays(x, "x")
        n = data_utils.num_samples(x)
        batch_size = _batch_size(batch_size, 32)
        verbose = _verbosity(verbose)
        total = math.ceil(n / batch_size)
        steps = total if steps is None else min(int(steps), total)
        callback_list = self._callbacks(callbacks, None, verbose, steps=steps)
        callback_list.on_predict_begin()
        outputs: list = []
        for step, index in enumerate(data_utils.batch_indices(n, batch_size, False, steps)):
            callback_list.on_predict_batch_begin(step)
            out = self._predict_batch(data_utils.take(x, index))
            outputs.append(_to_numpy(out))
            callback_list.on_predict_batch_end(step)
        callback_list.on_predict_end()
        if not outputs:
            return self._empty_prediction(x)
        return _concatenate(outputs)

    def _predict_batch(self, x: Any) -> Any:
        if self._custom_step("predict_step"):
            return self.predict_step((x,))
        return self.predict_step(x)

    def _empty_prediction(self, x: Any) -> Any:
        return _to_numpy(self._predict_batch(x))

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One training step on exactly this batch; returns its loss (and metrics)."""
        x, y, sample_weight, _ = self._prepare(x, y, sample_weight, "train_on_batch")
        if class_weight is not None:
            weights = data_utils.class_weights_to_sample_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        self._dry_run(x, y)
        self.reset_metrics()
        if self._custom_step("train_step"):
            data = pack_x_y_sample_weight(x, y, sample_weight)
            logs = logs_to_python(self.train_step(data), "train_step")
            return _keras_result(logs, return_dict)
        loss = self.train_step(x, y, sample_weight)
        return self._batch_result(loss, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """The loss (and metrics) on exactly this batch, without training."""
        x, y, sample_weight, _ = self._prepare(x, y, sample_weight, "test_on_batch")
        self.reset_metrics()
        if self._custom_step("test_step"):
            data = pack_x_y_sample_weight(x, y, sample_weight)
            return _keras_result(logs_to_python(self.test_step(data), "test_step"), return_dict)
        loss = self.test_step(x, y, sample_weight)
        return self._batch_result(loss, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Model outputs for exactly this batch, as ndarrays."""
        return _to_numpy(self._predict_batch(data_utils.to_arrays(x, "x")))

    def _batch_result(self, loss: float, return_dict: bool) -> Any:
        tracker = _LossTracker()
        tracker.update(loss, self, 1)
        return _keras_result(self._epoch_logs(tracker), return_dict)


def _keras_result(logs: dict[str, Any], return_dict: bool) -> Any:
    """What evaluate / *_on_batch return: the logs dict, or the loss alone, or the list
    [loss, metric, ...] (Keras' order: the loss first)."""
    if return_dict:
        return logs
    ordered = [logs["loss"], *[v for k, v in logs.items() if k != "loss"]]
    return ordered[0] if len(ordered) == 1 else ordered


class _LossTracker:
    """Running means of the total loss and of each output's loss, weighted by batch size
    (what Keras logs as ``loss`` and ``<output>_loss``)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.parts: dict[str, float] = {}
        self.seen = 0

    def update(self, loss: float, model: Any, count: int) -> None:
        self.total += loss * count
        self.seen += count
        for name, value in getattr(model, "_last_loss_parts", {}).items():
            self.parts[name] = self.parts.get(name, 0.0) + float(value.data) * count

    def result(self) -> dict[str, float]:
        seen = max(self.seen, 1)
        return {"loss": self.total / seen, **{k: v / seen for k, v in self.parts.items()}}


def _batch_size(batch_size: Any, default: int) -> int:
    if batch_size is None:
        return default
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def _unpack_validation(validation_data: Any) -> tuple:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight)."
        )
    x, y, *rest = validation_data
    return x, y, rest[0] if rest else None


def _to_numpy(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.data
    if isinstance(out, dict):
        return {k: _to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [_to_numpy(v) for v in out]
    return np.asarray(out)


def _concatenate(batches: list) -> Any:
    first = batches[0]
    if isinstance(first, dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([b[i] for b in batches]) for i in range(len(first))]
    return np.concatenate(batches)


@contextlib.contextmanager
def _stateful_states_set_aside(model: Any) -> Iterator[None]:
    """Run a check call without touching stateful recurrent layers' kept states (the
    one-sample dry run must neither read nor replace them)."""
    layers = model._stateful_layers()
    kept = [layer._kept_states for layer in layers]
    for layer in layers:
        layer._kept_states = None
    try:
        yield
    finally:
        for layer, states in zip(layers, kept):
            layer._kept_states = states


def _validate_loss_names(loss: Any) -> None:
    from dendrite import losses as losses_module

    for item in (
        loss.values()
        if isinstance(loss, dict)
        else (loss if isinstance(loss, (list, tuple)) else [loss])
    ):
        if item is not None:
            losses_module.get(item)


def _validate_metric_names(metrics: Any) -> None:
    from dendrite import metrics as metrics_module

    items = metrics.values() if isinstance(metrics, dict) else metrics
    if not isinstance(items, (list, tuple)) and not hasattr(items, "__iter__"):
        items = [items]
    for item in items if not isinstance(items, str) else [items]:
        for each in item if isinstance(item, (list, tuple)) else [item]:
            if isinstance(each, str) and each not in ("accuracy", "acc"):
                metrics_module.get(each)
