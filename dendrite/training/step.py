"""One step protocol (Keras 3's): ``train_step(data)``, ``test_step(data)`` and
``predict_step(data)``, and what a step uses: ``compute_loss``, ``compute_metrics``,
``metrics``, ``get_metrics_result``.

``data`` is one batch packed as Keras packs it, ``(x,)``, ``(x, y)`` or ``(x, y,
sample_weight)``. A training step is the design document's 3.4 in one batch: forward
(3.1), loss (2.4), backward by the chain rule (3.2), update ``w <- w - lr dL/dw`` (2.5,
4.3). A step returns its logs: the running result of every metric since the last reset,
the loss first. A model customises training by overriding a step, exactly as in Keras.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from dendrite import metrics as metrics_module
from dendrite import ops
from dendrite.core import Tensor, no_grad
from dendrite.core.backprop import backprop
from dendrite.training import data as data_utils
from dendrite.utils import unpack_x_y_sample_weight


class StepMixin:
    """The steps and their metrics; mixed into ``Trainer`` (see the module docstring)."""

    compiled_loss: Any = None
    compiled_metrics: Any = None

    # --- metrics kept as attributes -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        """As Keras, a metric (or a list of metrics) set as an attribute of the model, such
        as ``self.loss_tracker = keras.metrics.Mean(name="loss")`` in ``__init__``, is
        tracked: it appears in ``self.metrics``, so it is reset at each epoch and reported
        in the logs."""
        if name not in _UNTRACKED:
            tracked = self.__dict__.get("_tracked_metrics")
            if _is_metrics(value):
                if tracked is None:
                    tracked = {}
                    object.__setattr__(self, "_tracked_metrics", tracked)
                tracked[name] = value
            elif tracked and name in tracked:
                del tracked[name]
        super().__setattr__(name, value)

    # --- the steps ------------------------------------------------------------------------
    def train_step(self, data: Any) -> dict[str, Any]:
        """Forward, loss, backward and update on one batch; returns the logs."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        loss = self._compute_loss(x, y, y_pred, sample_weight, training=True)
        self._loss_tracker.update_state(float(loss.data), sample_weight=_batch_length(x))
        # fit() looks the weights up once per epoch; other callers get them fresh.
        variables = self.__dict__.get("_epoch_variables") or self.trainable_weights
        if not self.optimizer.built:
            self.optimizer.build(variables)
        if loss.requires_grad:
            # Keras scales the loss before differentiating (LossScaleOptimizer,
            # loss_scale_factor); the optimizer divides the gradients back
            loss = self.optimizer.scale_loss(loss)
            found = backprop(loss, np.ones(loss.data.shape, loss.data.dtype))
            pairs = [(found[id(v)][1], v) for v in variables if id(v) in found]
            if pairs:
                self.optimizer.apply_gradients(pairs)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data: Any) -> dict[str, Any]:
        """Forward and loss on one batch, without gradients; returns the logs."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        with no_grad():
            y_pred = self(x, training=False)
            loss = self._compute_loss(x, y, y_pred, sample_weight, training=False)
        self._loss_tracker.update_state(float(loss.data), sample_weight=_batch_length(x))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data: Any) -> Any:
        """The model's outputs for one batch, without gradients."""
        x, _, _ = unpack_x_y_sample_weight(data)
        with no_grad():
            return self(x, training=False)

    # --- what a step uses -----------------------------------------------------------------
    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Tensor:
        """The training objective: the compiled loss plus every penalty in ``self.losses``
        (each summed to a scalar). ``x`` and ``training`` are unused here; a subclass may
        override this with Keras 3's signature, or the older one without ``training``."""
        total = None
        if self.compiled_loss is not None:
            if not self.compiled_loss.built:
                self._build_compiled(y, y_pred)
            total = self.compiled_loss.compute(y, y_pred, sample_weight)
        for penalty in self.losses:
            if penalty.data.ndim:
                penalty = ops.sum(penalty)
            total = penalty if total is None else total + penalty
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
        return total

    def _compute_loss(
        self, x: Any, y: Any, y_pred: Any, sample_weight: Any, training: bool
    ) -> Tensor:
        """``compute_loss``, called with ``training`` only when its signature takes it (an
        override written before Keras 3.3 has ``(x, y, y_pred, sample_weight)``)."""
        cls = type(self)
        takes_training = _TAKES_TRAINING.get(cls)
        if takes_training is None:
            takes_training = "training" in inspect.signature(self.compute_loss).parameters
            _TAKES_TRAINING[cls] = takes_training
        if takes_training:
            return self.compute_loss(x, y, y_pred, sample_weight, training=training)
        return self.compute_loss(x, y, y_pred, sample_weight)

    def _default_loss_path(self, step: str) -> bool:
        """Whether ``step`` is the built-in one computing the built-in loss (so it needs
        the targets for the compiled loss)."""
        cls = type(self)
        return getattr(cls, step) is getattr(StepMixin, step) and (
            cls.compute_loss is StepMixin.compute_loss
        )

    def compute_metrics(
        self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None
    ) -> dict[str, Any]:
        """Update the compiled metrics with one batch and return every metric's result."""
        if not self.compiled_metrics.built:
            self._build_compiled(y, y_pred)
        self.compiled_metrics.update(y, y_pred)
        if sample_weight is not None:
            self.compiled_weighted_metrics.update(y, y_pred, sample_weight)
        return self.get_metrics_result()

    @property
    def metrics(self) -> list:
        """As Keras 3: once compiled, the loss tracker (a Mean named "loss"), the compiled
        metrics' container ("compile_metrics", whose result() is a dict) when metrics were
        given, the weighted ones when given, each named output's loss ("<output>_loss");
        then the metrics kept as attributes of the model, in the order they were set. A
        subclass may override this property to list its own trackers."""
        found = []
        if self.compiled_metrics is not None:
            found.append(self._loss_tracker)
            if self.compiled_metrics.spec is not None:
                found.append(self.compiled_metrics)
            if self.compiled_weighted_metrics.spec is not None:
                found.append(self.compiled_weighted_metrics)
            if self.compiled_loss is not None:
                found += self.compiled_loss.metrics
        tracked = self.__dict__.get("_tracked_metrics")
        if tracked:
            for value in tracked.values():
                found += value if isinstance(value, (list, tuple)) else [value]
        return found

    def get_metrics_result(self) -> dict[str, Any]:
        """{name: result} of every metric in ``self.metrics`` (dict results flattened)."""
        logs: dict[str, Any] = {}
        for metric in self.metrics:
            result = metric.result()
            if isinstance(result, dict):
                logs.update(result)
            else:
                logs[metric.name] = result
        return logs

    def reset_metrics(self) -> None:
        """Reset every metric in ``self.metrics`` (a subclass may list its own trackers)."""
        for metric in self.metrics:
            metric.reset_state()

    def _build_compiled(self, y: Any, y_pred: Any) -> None:
        """Resolve the compiled loss and metrics per output, once the outputs are known."""
        names = self._output_names(y_pred)
        if self.compiled_loss is not None and not self.compiled_loss.built:
            self.compiled_loss.build(y_pred, names)
        if not self.compiled_metrics.built:
            self.compiled_metrics.build(y, y_pred, names)
            self.compiled_weighted_metrics.build(y, y_pred, names)

    def _output_names(self, y_pred: Any) -> list[str]:
        names = getattr(self, "output_names", None)
        if isinstance(y_pred, dict):
            return list(y_pred)
        if isinstance(y_pred, (list, tuple)):
            if names and len(names) == len(y_pred):
                return list(names)
            return [f"output_{i}" for i in range(len(y_pred))]
        return list(names or ["output"])


# compute_loss takes ``training``, per model class (Keras reads the signature once).
_TAKES_TRAINING: dict[type, bool] = {}

# Attributes that hold the compiled state, never tracked as the model's own metrics.
_UNTRACKED = frozenset({"_loss_tracker", "_tracked_metrics"})


def _is_metrics(value: Any) -> bool:
    """A metric, or a non-empty list / tuple of metrics."""
    if isinstance(value, metrics_module.Metric):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(item, metrics_module.Metric) for item in value)
    )


def _batch_length(x: Any) -> int:
    """The number of samples in a batch (the first input's length; 1 for a scalar)."""
    first = x if type(x) is np.ndarray else data_utils.leaves(x)[0]
    return len(first) if np.ndim(first) else 1
