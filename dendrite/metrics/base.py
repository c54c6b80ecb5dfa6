"""Metric base class and the reducing metrics: Mean, Sum, MeanMetricWrapper.

Metrics are stateful accumulators over plain NumPy arrays: no autodiff graph is built,
Tensors are read through ``.data``. Running totals are Python floats (float64), so a
long epoch's mean does not drift in float32.

Weighting follows Keras: a per-sample value ``v_i`` with weight ``w_i`` contributes
``w_i v_i`` to ``total`` and ``w_i`` to ``count``; ``result = total / count`` (0 when
``count`` is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor, Variable, no_grad
from dendrite.registry import register
from dendrite.registry.naming import snake_case


def to_array(value: Any) -> np.ndarray:
    """``value`` as an ndarray: Tensors give their ``.data``, lists become arrays."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(value)


def squeeze_or_expand(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True) -> tuple:
    """Keras's rank alignment: when ranks differ by one and the longer one ends in a
    size-1 axis, squeeze it (or expand a rank-1 partner instead)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[:, None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[:, None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def masked_weight(y_pred: Any, sample_weight: Any) -> Any:
    """``sample_weight`` times the ``_keras_mask`` a masking layer attached to ``y_pred``
    (masked entries weigh 0); ``sample_weight`` itself when there is no mask."""
    mask = getattr(y_pred, "_keras_mask", None)
    if mask is None:
        return sample_weight
    mask = np.asarray(to_array(mask), dtype=np.float64)
    if sample_weight is None:
        return mask
    mask, weight = squeeze_or_expand(mask, np.asarray(to_array(sample_weight), np.float64))
    return weight * mask


class Metric:
    """Base class: accumulate with ``update_state``, read with ``result``, clear with
    ``reset_state``.

    Args:
        name: the metric's name (the key in training logs); defaults to the snake-cased
            class name.
        dtype: the dtype reported in the config (results are Python floats or float64
            arrays).
    """

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or snake_case(type(self).__name__)
        self.dtype = str(np.dtype(dtype or _settings.floatx()))

    # --- state variables (Keras 3's add_variable, for user metrics) -----------------------
    def add_variable(
        self,
        shape: Any,
        initializer: Any = "zeros",
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> Variable:
        """A non-trainable state variable of this metric, set from ``initializer`` and reset
        to it by the default ``reset_state``. ``aggregation`` is how Keras merges it across
        replicas ("sum", "mean", "only_first_replica", "none"); kept for the config."""
        from dendrite.layers import initializers

        if aggregation not in ("sum", "mean", "only_first_replica", "none", None):
            raise ValueError(
                f"Invalid value for argument `aggregation`: {aggregation!r}. Expected one of "
                f"'sum', 'mean', 'only_first_replica', 'none'."
            )
        shape = tuple(int(s) for s in (shape or ()))
        init = initializers.get(initializer)
        dtype = np.dtype(dtype or self.dtype)
        value = np.asarray(init(shape, dtype=dtype), dtype=dtype)
        variable = Variable(value, trainable=False, name=name or f"variable_{len(self.variables)}")
        variable.path = f"{self.name}/{variable.name}"
        state = self.__dict__.setdefault("_state_variables", [])
        state.append((variable, init))
        return variable

    def add_weight(
        self,
        name: str | None = None,
        shape: Any = (),
        aggregation: str = "sum",
        initializer: Any = "zeros",
        dtype: Any = None,
    ) -> Variable:
        """Keras' older name for ``add_variable`` (its arguments in that order)."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list[Variable]:
        """The state variables made by ``add_variable``, in order."""
        return [variable for variable, _ in self.__dict__.get("_state_variables", [])]

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def reset_state(self) -> None:
        """Back to the initial state: every ``add_variable`` variable to its initializer's
        value (a metric keeping other state overrides this)."""
        state = self.__dict__.get("_state_variables")
        if not state:
            raise NotImplementedError(
                f"{type(self).__name__} keeps no state variables: override reset_state()."
            )
        for variable, init in state:
            variable.assign(np.asarray(init(variable.shape, dtype=variable.dtype)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Update with one batch and return the running result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def _reduce_samplewise(values: np.ndarray, weight: Any, reduce: Callable) -> tuple:
    """Per-sample values and weights, as Keras's ``reduce_to_samplewise_values``.

    Values are reduced (with ``reduce``) down to the weight's rank, the weight is broadcast
    over them, and both are then reduced to one entry per sample. A scalar weight weighs
    every sample.
    """
    if weight is None:
        if values.ndim > 1:
            values = reduce(values, axis=tuple(range(1, values.ndim)))
        return values, None
    weight = np.asarray(to_array(weight), dtype=np.float64)
    values, weight = squeeze_or_expand(values, weight)
    if weight.ndim == 0 and values.ndim > 0:
        weight = np.broadcast_to(weight, values.shape[:1])
    if values.ndim > weight.ndim:
        values = reduce(values, axis=tuple(range(weight.ndim, values.ndim)))
    try:
        weight = np.broadcast_to(weight, values.shape)
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {weight.shape} cannot be broadcast to the per-sample "
            f"values of shape {values.shape}."
        ) from None
    values = values * weight
    if weight.ndim > 1:
        weight = reduce(weight, axis=tuple(range(1, weight.ndim)))
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, weight


@register("metric")
class Sum(Metric):
    """The (weighted) sum of the values seen: ``sum_i w_i v_i``."""

    def __init__(self, name: str = "sum", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values = to_array(values)
        if sample_weight is None:
            self.total += float(np.sum(values, dtype=np.float64))
            return
        values, _ = _reduce_samplewise(values.astype(np.float64), sample_weight, np.sum)
        self.total += float(np.sum(values))

    def result(self) -> float:
        return self.total

    def reset_state(self) -> None:
        self.total = 0.0


@register("metric")
class Mean(Metric):
    """The (weighted) mean of the values seen: ``sum_i w_i v_i / sum_i w_i``.

    Values with more than one axis are first averaged per sample (over all but the first
    axis), as in Keras.
    """

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        if type(values) is float and type(sample_weight) in (int, float):
            # A loss tracker's step: one number weighted by the batch size.
            self.total += values * sample_weight
            self.count += sample_weight
            return
        values = to_array(values)
        if sample_weight is None:
            # Fast path (every training step): one sum; the mean over all but the first axis
            # then the sum over samples is sum(values) * samples / size.
            if values.ndim == 0:
                self.total += float(values)
                self.count += 1.0
            elif values.size:
                samples = values.shape[0]
                self.total += float(np.sum(values, dtype=np.float64)) * samples / values.size
                self.count += samples
            return
        if np.ndim(sample_weight) == 0 and values.ndim == 0:
            w = float(to_array(sample_weight))
            self.total += float(values) * w
            self.count += w
            return
        values, weight = _reduce_samplewise(values.astype(np.float64), sample_weight, np.mean)
        self.total += float(np.sum(values))
        self.count += float(np.sum(weight))

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0


class MeanMetricWrapper(Mean):
    """The running mean of a per-sample function ``fn(y_true, y_pred, **kwargs)``.

    ``fn`` receives NumPy arrays. It may also be built from dendrite ops (a custom loss used
    as a metric): it then runs under ``no_grad`` and its Tensor result is read as an array.

    Args:
        fn: the per-sample function.
        name: the metric's name (defaults to ``fn.__name__``).
        dtype: as for ``Metric``.
        **kwargs: passed on to ``fn`` on every call.
    """

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or getattr(fn, "__name__", None) or "mean", dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        sample_weight = masked_weight(y_pred, sample_weight)
        with no_grad():
            values = self._fn(to_array(y_true), to_array(y_pred), **self._fn_kwargs)
        super().update_state(to_array(values), sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        fn_name = getattr(self._fn, "__name__", None)
        config.update({"fn": fn_name, **self._fn_kwargs})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        config = dict(config)
        fn = config.pop("fn", None)
        if callable(fn):
            return cls(fn, **config)
        if cls is not MeanMetricWrapper:
            return cls(**config)
        raise ValueError(
            f"MeanMetricWrapper.from_config cannot rebuild the function {fn!r} by name; "
            "construct it with MeanMetricWrapper(fn) instead."
        )
