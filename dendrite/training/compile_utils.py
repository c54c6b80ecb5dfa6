"""What ``compile`` resolves: the loss (per output, weighted) and the metrics (per output).

A model's outputs may be one tensor, a list or a dict (functional models with several
heads); ``loss``, ``loss_weights`` and ``metrics`` then follow the same structure, as in
Keras. Logs are named ``loss``, ``<output>_loss``, ``<metric>`` or ``<output>_<metric>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import losses as losses_module
from dendrite import metrics as metrics_module


def _as_loss(identifier: Any) -> Any:
    if identifier is None:
        return None
    loss = losses_module.get(identifier)
    if isinstance(loss, losses_module.Loss):
        return loss
    return losses_module.LossFunctionWrapper(loss, name=getattr(loss, "__name__", "loss"))


def loss_name(loss: Any) -> str:
    """A lower-case name of a loss object or function (for matching and messages)."""
    fn = getattr(loss, "fn", None)
    name = getattr(fn, "__name__", None) or getattr(loss, "name", None) or type(loss).__name__
    return str(name).lower()


def _structure_keys(outputs: Any, output_names: list[str]) -> list:
    if isinstance(outputs, dict):
        return list(outputs)
    if isinstance(outputs, (list, tuple)):
        return list(range(len(outputs)))
    return [None]


def _pick(structure: Any, key: Any, index: int, output_names: list[str], what: str) -> Any:
    """The entry of a per-output argument for one output (by name, position or shared)."""
    if isinstance(structure, dict):
        name = key if isinstance(key, str) else output_names[index]
        if name not in structure:
            return None
        return structure[name]
    if isinstance(structure, (list, tuple)) and key is not None:
        if len(structure) != len(output_names):
            raise ValueError(
                f"compile: {what} is a list of {len(structure)} entries but the model has "
                f"{len(output_names)} outputs ({', '.join(output_names)})."
            )
        return structure[index]
    return structure


class CompileLoss:
    """The total training loss: weighted sum of per-output losses (plus regularisation,
    added by the trainer)."""

    def __init__(self, loss: Any, loss_weights: Any = None) -> None:
        self.spec = loss
        self.loss_weights = loss_weights
        self.built = False
        self.entries: list[tuple[Any, str | None, Any, float]] = []
        # One running mean per named output ("<output>_loss"), as Keras 3 logs them.
        self.metrics: list[Any] = []

    def build(self, y_pred: Any, output_names: list[str]) -> None:
        keys = _structure_keys(y_pred, output_names)
        if isinstance(self.spec, dict):
            unknown = set(self.spec) - set(output_names) - set(keys)
            if unknown:
                raise ValueError(
                    f"compile: loss given for unknown outputs {sorted(unknown)}; the model's "
                    f"outputs are {output_names}."
                )
        for index, key in enumerate(keys):
            identifier = _pick(self.spec, key, index, output_names, "loss")
            weight = _pick(self.loss_weights, key, index, output_names, "loss_weights")
            loss = _as_loss(identifier)
            name = None if key is None else (key if isinstance(key, str) else output_names[index])
            self.entries.append((key, name, loss, 1.0 if weight is None else float(weight)))
            if name is not None and loss is not None:
                self.metrics.append(metrics_module.Mean(name=f"{name}_loss"))
        self.built = True

    def __call__(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
        regularization_losses: Any = None,
    ) -> Any:
        """The total loss Tensor of one batch, plus ``regularization_losses`` (TF-Keras 2's
        ``self.compiled_loss(y, y_pred, regularization_losses=self.losses)`` in a custom
        ``train_step``)."""
        if not self.built:
            self.build(y_pred, self.output_names(y_pred) if self.output_names else ["output"])
        total = self.compute(y_true, y_pred, sample_weight)
        for penalty in regularization_losses or ():
            total = total + penalty
        return total

    # Set by the trainer: the model's output names for a prediction (to build lazily).
    output_names: Any = None

    def compute(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The total loss Tensor of one batch; each named output's loss also updates its
        running mean in ``self.metrics`` (weighted by the batch size)."""
        total = None
        trackers = iter(self.metrics)
        for key, name, loss, weight in self.entries:
            if loss is None:
                continue
            true = y_true if key is None else _select(y_true, key, name)
            if true is None:
                raise ValueError(
                    f"The output {name or 'output'!r} has a loss ({_loss_name(loss)}) but its "
                    f"target is None: pass its target, or compile it with loss None."
                )
            pred = y_pred if key is None else y_pred[key]
            sw = sample_weight if key is None else _select_optional(sample_weight, key, name)
            value = loss(true, pred, sample_weight=sw)
            if name is not None:
                pred_size = pred.shape[0] if pred.ndim else 1
                next(trackers).update_state(float(value.data), sample_weight=pred_size)
            value = value * weight if weight != 1.0 else value
            total = value if total is None else total + value
        if total is None:
            raise ValueError("The model was compiled without any loss for its outputs.")
        return total

    def check_targets(self, y_true: Any, y_pred: Any) -> None:
        """Validate labels against the output shapes before training (sparse label range)."""
        for key, name, loss, _ in self.entries:
            if loss is None:
                continue
            true = y_true if key is None else _select(y_true, key, name)
            pred = y_pred if key is None else y_pred[key]
            if "sparse" in loss_name(loss) and true is not None:
                labels = np.asarray(true)
                classes = pred.shape[-1]
                if labels.size and labels.dtype.kind in "iuf":
                    low, high = labels.min(), labels.max()
                    if low < 0 or high >= classes:
                        bad = low if low < 0 else high
                        raise ValueError(
                            f"Received a label value of {bad} which is outside the valid range "
                            f"of [0, {classes}) for the output '{name or 'output'}' "
                            f"(sparse_categorical_crossentropy expects integer class indices "
                            f"smaller than the number of units of the last layer)."
                        )


def _select(data: Any, key: Any, name: str | None) -> Any:
    if isinstance(data, dict):
        if name in data:
            return data[name]
        if key in data:
            return data[key]
        raise ValueError(f"No target given for output {name!r}; got keys {sorted(data)}.")
    if isinstance(data, (list, tuple)):
        return data[key if isinstance(key, int) else 0]
    return data


def _select_optional(data: Any, key: Any, name: str | None) -> Any:
    if data is None or isinstance(data, np.ndarray):
        return data
    return _select(data, key, name)


class CompileMetrics:
    """The compiled metrics, resolved per output once the outputs are known."""

    def __init__(
        self,
        metrics: Any,
        loss_spec: Any,
        name: str = "compile_metrics",
        prefix: str = "",
        output_names: Any = None,
    ) -> None:
        self.spec = metrics
        self.loss_spec = loss_spec
        self.entries: list[tuple[Any, str | None, Any]] = []
        self.built = False
        # Keras 3 keeps the compiled metrics in one metric-like container, which a custom
        # train_step updates (update_state) and reads (result) like any metric.
        self.name = name
        self.prefix = prefix
        self.output_names = output_names

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Update every compiled metric (building them on the first batch)."""
        if not self.built:
            names = self.output_names(y_pred) if self.output_names else ["output"]
            self.build(y_true, y_pred, names)
        self.update(y_true, y_pred, sample_weight)

    def result(self) -> dict[str, Any]:
        """{log name: value} of every compiled metric."""
        if not self.prefix:
            return self.results()
        return {f"{self.prefix}{k}": v for k, v in self.results().items()}

    def reset_state(self) -> None:
        self.reset()

    def build(self, y_true: Any, y_pred: Any, output_names: list[str]) -> None:
        keys = _structure_keys(y_pred, output_names)
        for index, key in enumerate(keys):
            wanted = _pick(self.spec, key, index, output_names, "metrics")
            if wanted is None:
                continue
            if isinstance(wanted, (str, dict)) or not isinstance(wanted, (list, tuple)):
                wanted = [wanted]
            loss = _pick(self.loss_spec, key, index, output_names, "loss")
            name = None if key is None else (key if isinstance(key, str) else output_names[index])
            true = y_true if key is None else _select(y_true, key, name)
            pred = y_pred if key is None else y_pred[key]
            for identifier in wanted:
                metric = self._resolve(identifier, loss, true, pred)
                self.entries.append((key, name, metric))
        self.built = True

    @staticmethod
    def _resolve(identifier: Any, loss: Any, y_true: Any, y_pred: Any) -> Any:
        if isinstance(identifier, str) and identifier in ("accuracy", "acc"):
            shapes = (
                None if y_true is None else np.shape(y_true),
                tuple(y_pred.shape),
            )
            metric = metrics_module.resolve_accuracy(identifier, loss, *shapes)
            if metric is None:
                metric = metrics_module.get("accuracy")
            metric.name = identifier
            return metric
        metric = metrics_module.get(identifier)
        if isinstance(identifier, str):
            # Keras' compile names a metric after the string the user gave ("mse").
            metric.name = identifier
        return metric

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        for key, name, metric in self.entries:
            true = y_true if key is None else _select(y_true, key, name)
            pred = y_pred if key is None else y_pred[key]
            sw = sample_weight if key is None else _select_optional(sample_weight, key, name)
            metric.update_state(true, pred, sw)

    def results(self) -> dict[str, Any]:
        out = {}
        for _, name, metric in self.entries:
            value = metric.result()
            if type(value) is not float:
                value = float(value) if np.ndim(value) == 0 else np.asarray(value)
            out[metric.name if name is None else f"{name}_{metric.name}"] = value
        return out

    def reset(self) -> None:
        for _, _, metric in self.entries:
            metric.reset_state()

    @property
    def metrics(self) -> list:
        return [metric for _, _, metric in self.entries]


def _loss_name(loss: Any) -> str:
    return getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
