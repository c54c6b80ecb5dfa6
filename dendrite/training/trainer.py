"""``Trainer``: compile / fit / evaluate / predict (the design document's 3.4 training loop).

The loops are short because everything they touch has one shape: an ``EpochIterator``
gives numbered batches packed as ``(x, y, sample_weight)``, a step (``train_step(data)``,
see ``training.step``) turns one batch into logs, and callbacks see those logs and decide
when to stop. The trainer uses the model only through ``model(x, training=)``,
``trainable_weights`` and ``losses``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from dendrite import _settings, cpu_threads, memory_reuse
from dendrite import metrics as metrics_module
from dendrite import optimizers as optimizers_module
from dendrite.core import no_grad
from dendrite.distribution import distribution_lib
from dendrite.training import data as data_utils
from dendrite.training import logs as logs_utils
from dendrite.training.callbacks import Callback, CallbackList, History, ProgbarLogger
from dendrite.training.compile_utils import CompileLoss, CompileMetrics
from dendrite.training.data_adapters import get_batched_adapter, is_batched_data
from dendrite.training.epoch_iterator import EpochIterator
from dendrite.training.step import StepMixin
from dendrite.utils import pack_x_y_sample_weight, unpack_x_y_sample_weight


class Trainer(StepMixin):
    """Mixed into ``Model``: Keras' training API."""

    _compiled = False
    # Keras' compile settings, readable before compile too; dendrite always runs eagerly
    # and compiles nothing, so they only report what was asked.
    run_eagerly = False
    jit_compile = False
    steps_per_execution = 1

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called."""
        return self._compiled

    # --- compile settings as a config (Keras 3's saving protocol) -----------------------
    def get_compile_config(self) -> dict[str, Any] | None:
        """The arguments of the last ``compile`` as JSON values (None before compiling).
        A model whose ``compile`` takes other arguments overrides this and
        ``compile_from_config``; model files then store and replay its own config."""
        from dendrite.saving import compile_config

        return compile_config.encode_compile(self)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """``compile`` again from ``get_compile_config()``'s output (custom objects are
        found by registration or in the current ``custom_object_scope``)."""
        from dendrite.registry import custom_objects as registration
        from dendrite.saving import compile_config

        arguments = compile_config.decode_compile(
            config, registration.all_custom_objects(), "compile_from_config"
        )
        self.compile(**arguments)

    get_compile_config.keras_default = True  # type: ignore[attr-defined]
    compile_from_config.keras_default = True  # type: ignore[attr-defined]

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
        if loss is not None:
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
        self.run_eagerly = bool(run_eagerly)
        self.jit_compile = jit_compile
        self.steps_per_execution = steps_per_execution

    def _assert_compiled(self, method: str) -> None:
        if not self._compiled:
            raise RuntimeError(
                f"You must call `compile()` before using the model: `{method}()` needs an "
                f"optimizer and a loss (e.g. model.compile(optimizer='adam', "
                f"loss='sparse_categorical_crossentropy'))."
            )

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *[k for k in self.get_metrics_result() if k != "loss"]]

    def _log_order(self) -> list[str]:
        """Log names in Keras 3's order (``evaluate``'s list): each metric of ``self.metrics``
        in turn, a container's (the compiled metrics') by its members' own names; results
        under other names (a multi-output model's ``<output>_<metric>``) last, sorted, as
        Keras appends them. So a model's per-output losses come before those metrics."""
        order, later = [], []
        for metric in self.metrics:
            result = metric.result()
            if not isinstance(result, dict):
                order.append(metric.name)
                continue
            own = {getattr(m, "name", None) for m in getattr(metric, "metrics", [])}
            for key in result:
                (order if key in own else later).append(key)
        return order + sorted(later)

    # --- checks before any weight changes -------------------------------------------------
    def _prepare(self, x: Any, y: Any, sample_weight: Any, method: str) -> tuple:
        """The data as checked arrays, and a clear error for anything that cannot train."""
        self._assert_compiled(method)
        if x is None:
            raise ValueError(f"`{method}()` received x=None: pass the input data as x.")
        x = data_utils.to_arrays(x, "x")
        y = data_utils.to_arrays(y, "y")
        sample_weight = data_utils.to_arrays(sample_weight, "sample_weight")
        # As Keras, targets without a compiled loss are no error: a model may take its loss
        # from add_loss, its own compute_loss or its own step (compute_loss raises Keras'
        # "No loss to compute" when nothing gives one). Without targets, the compiled loss
        # cannot run, unless a step or compute_loss of the model's own handles them.
        step = "train_step" if method in ("fit", "train_on_batch") else "test_step"
        if y is None and self.compiled_loss is not None and self._default_loss_path(step):
            raise ValueError(f"`{method}()` needs targets y for the compiled loss.")
        data_utils.num_samples(x, y, sample_weight)
        data_utils.check_batch_axis(x, "x")
        data_utils.check_finite(x, "x")
        data_utils.check_finite(y, "y")
        data_utils.check_finite(sample_weight, "sample_weight")
        return x, y, sample_weight

    def _check_first_sample(self, x: Any, y: Any) -> None:
        """Build the model on one sample, and check the labels of ``y`` against its
        outputs, before any weight changes."""
        first = slice(0, 1)
        with no_grad(), _stateful_states_set_aside(self):
            y_pred = self(data_utils.take(x, first), training=False)
        if not self.compiled_metrics.built:
            self._build_compiled(data_utils.take(y, first), y_pred)
        if self.compiled_loss is not None and y is not None:
            self.compiled_loss.check_targets(y, y_pred)

    def _batched_iterator(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        method: str,
        steps: int | None,
        shuffle: bool = False,
        class_weight: dict | None = None,
    ) -> EpochIterator:
        """The iterator of a PyDataset, generator or iterable of batches; for ``fit``, the
        model is built and checked on its first batch before any weight changes."""
        if method != "predict":
            self._assert_compiled(method)
        adapter = get_batched_adapter(x, y, sample_weight, shuffle, class_weight)
        iterator = EpochIterator(None, adapter=adapter, steps_per_epoch=steps)
        if method == "fit":
            first_x, first_y, _ = unpack_x_y_sample_weight(adapter.first_batch())
            if first_y is None and self.compiled_loss is not None:
                if self._default_loss_path("train_step"):
                    raise ValueError(
                        "`fit()` needs targets y for the compiled loss: the batches of "
                        f"{type(x).__name__} hold only x (yield (x, y) tuples)."
                    )
            self._check_first_sample(first_x, first_y)
        return iterator

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
        validation_freq: Any = 1,
    ) -> History:
        """Train for ``epochs`` epochs over shuffled batches (the last partial one included).

        Returns a ``History`` whose ``history`` maps each log name to its per-epoch values.
        """
        cap = _settings.max_epochs()  # Keras' debugging cap (keras.config.set_max_epochs)
        if cap and cap < epochs:
            warnings.warn(f"Limiting epochs to {cap}", stacklevel=2)
            epochs = cap
        batched = is_batched_data(x)
        if batched:
            if validation_split and validation_data is None:
                raise ValueError(
                    "`validation_split` is only supported for Tensors or NumPy arrays. "
                    f"Found incompatible type in the input: {type(x)}"
                )
            iterator = self._batched_iterator(
                x, y, sample_weight, "fit", steps_per_epoch, shuffle, class_weight
            )
        else:
            x, y, sample_weight = self._prepare(x, y, sample_weight, "fit")
        batch_size = logs_utils.batch_size_or(batch_size, 32)
        verbose = logs_utils.verbosity(verbose)
        val = None
        if validation_data is not None and is_batched_data(validation_data):
            val = self._batched_iterator(validation_data, None, None, "fit_val", validation_steps)
        elif validation_data is not None:
            val = logs_utils.unpack_validation(validation_data)
        elif validation_split:
            (x, y, sample_weight), val = data_utils.split_validation(
                x, y, sample_weight, validation_split
            )
        if val is not None and not isinstance(val, EpochIterator):
            # Checked once here; each epoch's validation reuses the iterator.
            val = EpochIterator(
                *self._prepare(*val, "fit"),
                batch_size=logs_utils.batch_size_or(validation_batch_size, batch_size),
                steps_per_epoch=validation_steps,
            )
        if not batched:
            if class_weight is not None:
                sample_weight = _with_class_weight(y, sample_weight, class_weight)
            iterator = EpochIterator(x, y, sample_weight, batch_size, steps_per_epoch, shuffle)
            if iterator.adapter.num_samples == 0:
                raise ValueError("fit() received no samples (x has length 0).")
            self._check_first_sample(x, y)
        dist = distribution_lib.distribution()
        if dist is not None:  # each rank reads its shard of every batch
            iterator = dist.distribute_iterator(iterator)
            val = dist.distribute_iterator(val) if val is not None else None
        _settings.keep_freed_memory()
        history = History()
        callback_list = self._callbacks(
            callbacks,
            history,
            verbose,
            epochs=epochs,
            steps=iterator.num_batches,
        )
        self.stop_training = False
        self.history = history
        self._initial_epoch = None
        callback_list.on_train_begin({})
        # A callback (BackupAndRestore) may resume from a later epoch, as in Keras.
        initial_epoch = self._initial_epoch or initial_epoch
        if dist is not None:  # same model everywhere; rank 0's state and epoch
            initial_epoch = dist.begin_fit(self, initial_epoch)
        logs: dict[str, Any] = {}
        try:
            for epoch in range(initial_epoch, epochs):
                self.reset_metrics()
                callback_list.on_epoch_begin(epoch, {})
                self._epoch_variables = self.trainable_weights
                try:
                    logs = self._run_epoch(iterator, callback_list, "train")
                finally:
                    self._epoch_variables = None
                if dist is not None:  # the metrics' states summed over the ranks
                    logs = dist.reduce_logs(self, logs)
                if iterator.ran_out:  # a generator ran out of batches: stop, as Keras
                    self.stop_training = True
                    if not logs:
                        break
                if val is not None and _validates_at(epoch + 1, validation_freq):
                    val_logs = self._run_test(val, callback_list)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                callback_list.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            if dist is not None:
                dist.end_fit(self)
        if epochs > 0 and hasattr(self.optimizer, "finalize_variable_values"):
            # As Keras: with use_ema, training ends on the weights' moving averages.
            self.optimizer.finalize_variable_values(self.trainable_weights)
        callback_list.on_train_end(logs)
        return history

    def _run_epoch(self, iterator: EpochIterator, callbacks: CallbackList, kind: str) -> dict:
        """One pass of ``train_step`` or ``test_step`` over the iterator; the last step's
        logs (running means over the epoch)."""
        step_function = self.train_step if kind == "train" else self.test_step
        dist = distribution_lib.distribution()
        if dist is not None:  # per epoch: the step as run on this rank's shard
            step_function = dist.wrap_step(step_function, kind, self)
        name = f"{kind}_step"
        begin = getattr(callbacks, f"on_{kind}_batch_begin")
        end = getattr(callbacks, f"on_{kind}_batch_end")
        logs: dict[str, Any] = {}
        governor = self._thread_governor(kind, dist)
        with _loop_scope(governor), iterator.enumerate_epoch() as epoch:
            for step, data in epoch:
                begin(step)
                started = governor.begin()
                outputs = step_function(data)
                governor.end(started)
                logs = logs_utils.logs_to_python(outputs, name)
                end(step, logs)
                if kind == "train" and self.stop_training:
                    break
        return dict(logs)

    def _thread_governor(self, kind: str, dist: Any = None) -> cpu_threads.ThreadGovernor:
        """This model's governor of threads for ``kind`` steps ("train", "test",
        "predict"): each kind has its own step time, kept across epochs and calls. Under a
        distribution, one that times nothing (see ``cpu_threads``)."""
        if dist is not None:
            return cpu_threads.ThreadGovernor(passive=True)
        governors = self.__dict__.setdefault("_thread_governors", {})
        if kind not in governors:
            governors[kind] = cpu_threads.ThreadGovernor()
        return governors[kind]

    def _run_test(self, iterator: EpochIterator, callbacks: CallbackList) -> dict[str, Any]:
        """evaluate() over an iterator of checked data, with ``callbacks``' test hooks."""
        self.reset_metrics()
        callbacks.on_test_begin({})
        logs = self._run_epoch(iterator, callbacks, "test")
        if not logs:
            logs = logs_utils.logs_to_python(self.get_metrics_result(), "test_step")
        dist = distribution_lib.distribution()
        if dist is not None:  # the metrics' states summed over the ranks
            logs = dist.reduce_logs(self, logs)
        callbacks.on_test_end(logs)
        return logs

    def _callbacks(self, callbacks: Any, history: History | None, verbose: int, **params):
        given = list(callbacks or [])
        if isinstance(callbacks, CallbackList):
            given = list(callbacks.callbacks)
        extra: list[Callback] = []
        if history is not None:
            extra.append(history)
        if (
            verbose
            and not any(isinstance(cb, ProgbarLogger) for cb in given)
            and distribution_lib.is_writer()  # under data parallelism, rank 0 only
        ):
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
        if is_batched_data(x):
            iterator = self._batched_iterator(x, y, sample_weight, "evaluate", steps)
        else:
            x, y, sample_weight = self._prepare(x, y, sample_weight, "evaluate")
            iterator = EpochIterator(
                x, y, sample_weight, logs_utils.batch_size_or(batch_size, 32), steps
            )
            if iterator.adapter.num_samples == 0:
                raise ValueError("evaluate() received no samples (x has length 0).")
        dist = distribution_lib.distribution()
        if dist is not None:
            iterator = dist.distribute_iterator(iterator)
        verbose = logs_utils.verbosity(verbose)
        callback_list = self._callbacks(
            callbacks, None, verbose, epochs=1, steps=iterator.num_batches
        )
        logs = self._run_test(iterator, callback_list)
        return logs_utils.keras_result(logs, return_dict, self._log_order())

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: list[Callback] | None = None,
    ) -> Any:
        """Model outputs for ``x`` as ndarrays, computed in batches without gradients."""
        batched = is_batched_data(x)
        if batched:
            iterator = self._batched_iterator(x, None, None, "predict", steps)
        else:
            x = data_utils.to_arrays(x, "x")
            batch_size = logs_utils.batch_size_or(batch_size, 32)
            iterator = EpochIterator(x, batch_size=batch_size, steps_per_epoch=steps)
        dist = distribution_lib.distribution()
        if dist is not None:
            iterator = dist.distribute_iterator(iterator)
        verbose = logs_utils.verbosity(verbose)
        callback_list = self._callbacks(
            callbacks, None, verbose, epochs=1, steps=iterator.num_batches
        )
        callback_list.on_predict_begin({})
        outputs: list = []
        governor = self._thread_governor("predict", dist)
        with _loop_scope(governor), iterator.enumerate_epoch() as epoch:
            for step, data in epoch:
                callback_list.on_predict_batch_begin(step)
                started = governor.begin()
                batch_outputs = self.predict_step(data)
                governor.end(started)
                batch_outputs = logs_utils.to_numpy(batch_outputs)
                outputs.append(batch_outputs)
                # As Keras: the batch's predictions, under "outputs".
                callback_list.on_predict_batch_end(step, {"outputs": batch_outputs})
        callback_list.on_predict_end({})
        if dist is not None:  # every rank's shards, in order, on every rank
            outputs = dist.gather_predictions(outputs)
        if not outputs and batched:
            raise ValueError(f"predict() received no batches from {type(x).__name__}.")
        if not outputs:  # no samples: the outputs' shapes from an empty batch
            return logs_utils.to_numpy(self.predict_step((x,)))
        return logs_utils.concatenate(outputs)

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One training step on exactly this batch; returns its loss (and metrics).
        Refused under a distribution (see ``_refuse_under_distribution``)."""
        _refuse_under_distribution("train_on_batch")
        x, y, sample_weight = self._prepare(x, y, sample_weight, "train_on_batch")
        if class_weight is not None:
            sample_weight = _with_class_weight(y, sample_weight, class_weight)
        self._check_first_sample(x, y)
        _settings.keep_freed_memory()
        self.reset_metrics()
        data = pack_x_y_sample_weight(x, y, sample_weight)
        logs = logs_utils.logs_to_python(self.train_step(data), "train_step")
        return logs_utils.keras_result(logs, return_dict, self._log_order())

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """The loss (and metrics) on exactly this batch, without training. Refused under a
        distribution (see ``_refuse_under_distribution``)."""
        _refuse_under_distribution("test_on_batch")
        x, y, sample_weight = self._prepare(x, y, sample_weight, "test_on_batch")
        self.reset_metrics()
        logs = logs_utils.logs_to_python(
            self.test_step(pack_x_y_sample_weight(x, y, sample_weight)), "test_step"
        )
        return logs_utils.keras_result(logs, return_dict, self._log_order())

    def predict_on_batch(self, x: Any) -> Any:
        """Model outputs for exactly this batch, as ndarrays."""
        return logs_utils.to_numpy(self.predict_step((data_utils.to_arrays(x, "x"),)))


def _refuse_under_distribution(name: str) -> None:
    """``train_on_batch`` / ``test_on_batch`` run one process's step on the batch they are
    given; under data parallelism that would silently train each rank apart (or report one
    rank's loss), so they refuse and say what to use instead."""
    dist = distribution_lib.distribution()
    if dist is None:
        return
    raise RuntimeError(
        f"{name}() is not supported under a distribution ({dist!r}): each rank would "
        "train or evaluate on its own batch alone. Use fit() / evaluate() with "
        "batch_size as the global batch (e.g. fit(x, y, batch_size=len(x), epochs=1, "
        "shuffle=False) for one step), or a custom loop calling "
        "dendrite.distribution.average_gradients, or set_distribution(None) first."
    )


def _with_class_weight(y: Any, sample_weight: Any, class_weight: dict) -> Any:
    """Keras' ``class_weight``: each sample weighted by its class (one output only)."""
    if not hasattr(y, "ndim"):
        raise ValueError("class_weight is only supported for models with one output.")
    if sample_weight is not None:  # Keras refuses the pair (its words)
        raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
    return data_utils.class_weights_to_sample_weights(y, class_weight)


@contextlib.contextmanager
def _loop_scope(governor: cpu_threads.ThreadGovernor) -> Iterator[None]:
    """What every fit/evaluate/predict loop runs inside: its governor of threads, and
    NumPy's allocator that reuses the steps' large blocks (``memory_reuse``)."""
    with governor.loop(), memory_reuse.reusing():
        yield


@contextlib.contextmanager
def _stateful_states_set_aside(model: Any) -> Iterator[None]:
    """Run a check call without touching stateful recurrent layers' kept states (the
    one-sample check must neither read nor replace them)."""
    layers = model._stateful_layers()
    kept = [layer.states for layer in layers]
    for layer in layers:
        layer.reset_states()
    try:
        yield
    finally:
        for layer, states in zip(layers, kept):
            layer.reset_states(states)


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
    items = metrics.values() if isinstance(metrics, dict) else metrics
    if not isinstance(items, (list, tuple)) and not hasattr(items, "__iter__"):
        items = [items]
    for item in items if not isinstance(items, str) else [items]:
        for each in item if isinstance(item, (list, tuple)) else [item]:
            if isinstance(each, str) and each not in ("accuracy", "acc"):
                metrics_module.get(each)


def _validates_at(epoch: int, validation_freq: Any) -> bool:
    """Whether fit validates after ``epoch`` (1-based): every ``validation_freq`` epochs for
    an int, at the listed epochs for a list (Keras' two forms)."""
    if isinstance(validation_freq, int) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"fit: validation_freq must be >= 1; received {validation_freq}.")
        return epoch % validation_freq == 0
    if isinstance(validation_freq, (list, tuple, set, range)):
        return epoch in validation_freq
    raise ValueError(
        f"fit: validation_freq must be an int or a list of epochs; received {validation_freq!r}."
    )
