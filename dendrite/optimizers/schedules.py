"""Learning-rate schedules: ``lr = schedule(step)``, with Keras 3's names, arguments and formulas.

An optimizer given a schedule as ``learning_rate`` evaluates it at ``optimizer.iterations``
(0 on the first update) before every update. A schedule is also a plain function of the step:
it takes an int (or a 0-d Tensor/array, giving a Python float) or an array of steps (giving
an array, handy for plotting).

Keras evaluates schedules in the dtype of ``initial_learning_rate`` (float32 for a Python
float); dendrite evaluates them in float64, so the values agree to float32 precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite import registry
from dendrite.registry import register


def _steps(step: Any) -> np.ndarray:
    return np.asarray(step, dtype=np.float64)


def _result(value: Any) -> float | np.ndarray:
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value!r}")


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step)`` and ``get_config()``.

    ``from_config(config)`` is ``cls(**config)``, so a subclass whose ``get_config`` returns
    its constructor arguments round-trips for free.
    """

    def __call__(self, step: Any) -> float | np.ndarray:
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override "
            "`__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override `get_config()` "
            "in order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.__class__.__name__}({args})"


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: the arguments, and the progress
    ``p = step / decay_steps`` (floored with ``staircase=True``) that ``rate(p)`` maps."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str | None = None,
    ) -> None:
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name or type(self).__name__

    def rate(self, p: Any) -> Any:
        raise NotImplementedError

    def __call__(self, step: Any) -> float | np.ndarray:
        p = _steps(step) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _result(self.rate(p))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


@register("schedule")
class ExponentialDecay(_StepDecay):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps over which the rate is multiplied by
            ``decay_rate``.
        decay_rate: the factor applied every ``decay_steps`` steps.
        staircase: decay in discrete jumps instead of continuously.
        name: a label (kept for Keras compatibility).
    """

    def rate(self, p: Any) -> Any:
        return self.initial_learning_rate * np.power(float(self.decay_rate), p)


@register("schedule")
class InverseTimeDecay(_StepDecay):
    """``lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True``, ``step / decay_steps`` is floored.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive; how often the decay is applied.
        decay_rate: the decay rate.
        staircase: decay in discrete jumps instead of continuously.
        name: a label (kept for Keras compatibility).
    """

    def rate(self, p: Any) -> Any:
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)


@register("schedule")
class PiecewiseConstantDecay(LearningRateSchedule):
    """A step function: ``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``boundaries[0] < step <= boundaries[1]``, ..., ``values[-1]`` once
    ``step > boundaries[-1]``.

    Args:
        boundaries: strictly increasing step numbers.
        values: one more value than there are boundaries.
        name: a label (kept for Keras compatibility).
    """

    def __init__(
        self,
        boundaries: Sequence[float],
        values: Sequence[float],
        name: str = "PiecewiseConstant",
    ) -> None:
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}."
            )
        if any(low >= high for low, high in zip(boundaries[:-1], boundaries[1:])):
            raise ValueError(f"`boundaries` must be strictly increasing. Received: {boundaries}")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name
        self._boundaries = np.asarray(self.boundaries, dtype=np.float64)
        self._values = np.asarray(self.values, dtype=np.float64)

    def __call__(self, step: Any) -> float | np.ndarray:
        # side="left": a step equal to a boundary still belongs to the interval below it.
        index = np.searchsorted(self._boundaries, _steps(step), side="left")
        return _result(self._values[index])

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


@register("schedule")
class PolynomialDecay(LearningRateSchedule):
    """``lr(step) = (initial - end) * (1 - s / decay_steps) ** power + end``,
    with ``s = min(step, decay_steps)``.

    With ``cycle=True``, ``decay_steps`` is instead stretched to the first multiple of itself
    that is at least ``step`` (``decay_steps * ceil(step / decay_steps)``, 1 at step 0).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of steps to reach ``end_learning_rate``.
        end_learning_rate: the final rate.
        power: the power of the polynomial.
        cycle: restart the decay after ``decay_steps``.
        name: a label (kept for Keras compatibility).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step: Any) -> float | np.ndarray:
        step = _steps(step)
        decay_steps = float(self.decay_steps)
        if self.cycle:
            multiplier = np.where(step == 0, 1.0, np.ceil(step / decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            step = np.minimum(step, decay_steps)
        p = step / decay_steps
        delta = self.initial_learning_rate - self.end_learning_rate
        return _result(delta * np.power(1.0 - p, float(self.power)) + self.end_learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


@register("schedule")
class CosineDecay(LearningRateSchedule):
    """Optional linear warmup, then cosine decay (Loshchilov & Hutter, SGDR; Goyal et al.).

    Without ``warmup_target``: with ``s = min(step, decay_steps)``,
    ``lr(step) = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)``.

    With ``warmup_target``: ``s = min(step, warmup_steps + decay_steps)``; while
    ``s < warmup_steps`` the rate rises linearly,
    ``lr = initial + (warmup_target - initial) * s / warmup_steps``; after that it decays
    as above from ``warmup_target`` over ``s - warmup_steps``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: positive number of decay steps (after the warmup).
        alpha: the final rate as a fraction of the decay's starting rate.
        name: a label (kept for Keras compatibility).
        warmup_target: the rate reached at the end of the warmup; None skips the warmup.
        warmup_steps: number of warmup steps.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        _check_positive("decay_steps", decay_steps)
        if warmup_steps < 0:
            raise ValueError(f"Argument `warmup_steps` must be >= 0. Received: {warmup_steps}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step: np.ndarray, decay_from: float) -> np.ndarray:
        cosine = 0.5 * (1.0 + np.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: Any) -> float | np.ndarray:
        step = _steps(step)
        if self.warmup_target is None:
            return _result(
                self._decay(np.minimum(step, self.decay_steps), self.initial_learning_rate)
            )
        warmup_steps = float(self.warmup_steps)
        step = np.minimum(step, self.decay_steps + warmup_steps)
        # max(.., 1) only guards the unused branch when warmup_steps == 0.
        fraction = step / max(warmup_steps, 1.0)
        initial = self.initial_learning_rate
        warmup = (self.warmup_target - initial) * fraction + initial
        decayed = self._decay(step - warmup_steps, self.warmup_target)
        return _result(np.where(step < warmup_steps, warmup, decayed))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


@register("schedule")
class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR).

    The multiplier decays from 1 to ``alpha`` over ``first_decay_steps``; then it restarts,
    each period ``t_mul`` times longer than the one before and starting at ``m_mul`` times
    the previous starting rate. With ``f = step / first_decay_steps``, the restart index is
    ``i = floor(f)`` (``t_mul == 1``) or ``floor(log(1 - f (1 - t_mul)) / log(t_mul))``, the
    position within period ``i`` is ``f_i = (f - (1 - t_mul**i) / (1 - t_mul)) / t_mul**i``
    (``f - i`` when ``t_mul == 1``), and
    ``lr = initial * ((1 - alpha) * 0.5 * m_mul**i * (1 + cos(pi f_i)) + alpha)``.

    Args:
        initial_learning_rate: the rate at step 0.
        first_decay_steps: positive length of the first period.
        t_mul: growth factor of the period length.
        m_mul: factor applied to the starting rate at each restart.
        alpha: the floor, as a fraction of ``initial_learning_rate``.
        name: a label (kept for Keras compatibility).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        _check_positive("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step: Any) -> float | np.ndarray:
        fraction = _steps(step) / self.first_decay_steps
        t_mul = float(self._t_mul)
        if t_mul == 1.0:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            restart = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - np.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / np.power(t_mul, restart)
        cosine = 0.5 * np.power(float(self._m_mul), restart) * (1.0 + np.cos(math.pi * fraction))
        decayed = (1.0 - self.alpha) * cosine + self.alpha
        return _result(self.initial_learning_rate * decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self._t_mul,
            "m_mul": self._m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """The schedule as a JSON-compatible ``{"class_name": ..., "config": {...}}``."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(
            "serialize() expects a LearningRateSchedule; received "
            f"{type(learning_rate_schedule).__name__}."
        )
    return {
        "class_name": type(learning_rate_schedule).__name__,
        "config": learning_rate_schedule.get_config(),
    }


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> LearningRateSchedule:
    """Rebuild a schedule from ``serialize``'s output. The class is found by
    ``dendrite.registry.get("schedule", ...)``: ``custom_objects`` (names of your schedule
    classes -> the classes), a custom-object scope, your registered classes, then the
    built-in schedules."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Expected a dict with 'class_name' and 'config' keys; received {config!r}."
        )
    cls = registry.get("schedule", config["class_name"], custom_objects)
    return cls.from_config(dict(config.get("config", {})))
