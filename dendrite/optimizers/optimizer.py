"""``Optimizer``: Keras 3's optimizer contract, updating NumPy arrays in place.

One call of ``apply(grads, variables)`` (or ``apply_gradients(zip(grads, variables))``):

1. builds the optimizer on the first call (one slot array per variable and state, once);
2. drops ``None`` gradients (with a warning), converts the rest to arrays of each variable's
   dtype and checks every shape, before anything changes;
3. divides by ``loss_scale_factor`` and clips (``clipvalue`` per element, ``clipnorm`` per
   gradient, ``global_clipnorm`` over all of them), never writing into the caller's arrays;
4. decays the weights, decoupled as in Keras: ``w <- w - w * weight_decay * lr``;
5. calls ``update_step(g, w, lr)`` per variable: the rule of the subclass, in place on
   ``w.data``, with ``lr`` the learning rate (a schedule is evaluated at ``iterations``);
6. updates the moving averages (``use_ema``) and adds 1 to ``iterations``.

The state lives in ``optimizer.variables``, in a fixed order: ``iterations``, the learning
rate (when it is a number), the EMA averages, then the slots of the subclass, grouped by
kind (all momentums, then all velocities, ...) in the order of the variables. Write into them
with ``assign`` (or ``set_weights``): the update keeps references to their buffers.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor, Variable
from dendrite.optimizers import schedules
from dendrite.optimizers._utils import (
    check_hyperparameter,
    check_positive_or_none,
    is_number,
    variable_label,
)
from dendrite.optimizers.decay_and_averages import DecayAndAverages
from dendrite.optimizers.gradient_preparation import FLUSH_EVERY, GradientPreparation
from dendrite.optimizers.schedules import LearningRateSchedule
from dendrite.optimizers.slots_io import SlotsIO
from dendrite.registry.naming import snake_case


class Optimizer(GradientPreparation, DecayAndAverages, SlotsIO):
    """Base class of the optimizers; a subclass implements ``build`` and ``update_step``.

    Args:
        learning_rate: a float, a ``LearningRateSchedule`` (called with ``iterations``), or a
            callable of no arguments returning the rate.
        weight_decay: if set, each update first does ``w <- w - w * weight_decay * lr``
            (decoupled weight decay), except on variables excluded with
            ``exclude_from_weight_decay``.
        clipnorm: if set, each gradient is rescaled so that its L2 norm is at most this.
        clipvalue: if set, each gradient element is clipped to ``[-clipvalue, clipvalue]``.
        global_clipnorm: if set, all gradients are rescaled together so that their joint L2
            norm is at most this. At most one of the three clipping arguments may be set.
        use_ema: keep an exponential moving average of the variables (see
            ``finalize_variable_values``).
        ema_momentum: ``average <- ema_momentum * average + (1 - ema_momentum) * w``.
        ema_overwrite_frequency: if set, overwrite the variables with their averages every
            this many steps.
        loss_scale_factor: if set, gradients are divided by it (and ``scale_loss`` multiplies
            the loss by it).
        gradient_accumulation_steps: if set (an int >= 2), the variables change only every
            this many steps, by the mean of the gradients since the last change (kept in
            ``gradient_accumulator`` slots); ``iterations`` still counts every step.
        name: the optimizer's name; by default the class name in snake case.
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float],
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                "Argument `decay` is no longer supported and will be ignored.", stacklevel=3
            )
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if sum(arg is not None for arg in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        if gradient_accumulation_steps is not None and (
            isinstance(gradient_accumulation_steps, bool)
            or not isinstance(gradient_accumulation_steps, (int, np.integer))
            or gradient_accumulation_steps < 2
        ):
            raise ValueError(
                "`gradient_accumulation_steps` must be an integer >= 2. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps!r}"
            )
        self.name = name if name is not None else snake_case(type(self).__name__)
        self.weight_decay = None
        if weight_decay is not None:
            self.weight_decay = check_hyperparameter("weight_decay", weight_decay, 0.0)
        self.clipnorm = check_positive_or_none("clipnorm", clipnorm)
        self.clipvalue = check_positive_or_none("clipvalue", clipvalue)
        self.global_clipnorm = check_positive_or_none("global_clipnorm", global_clipnorm)
        self.use_ema = bool(use_ema)
        self.ema_momentum = check_hyperparameter("ema_momentum", ema_momentum, 0.0, 1.0)
        if ema_overwrite_frequency is not None and (
            not isinstance(ema_overwrite_frequency, (int, np.integer))
            or ema_overwrite_frequency < 1
        ):
            raise ValueError(
                "`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                f"ema_overwrite_frequency={ema_overwrite_frequency!r}"
            )
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = check_positive_or_none("loss_scale_factor", loss_scale_factor)
        self.gradient_accumulation_steps = (
            None if gradient_accumulation_steps is None else int(gradient_accumulation_steps)
        )

        self.built = False
        self._variables: list[Variable] = []
        self._trainable_variables: list[Variable] = []
        self._index: dict[int, int] = {}
        self._scratch: list[np.ndarray] = []
        self._grad_buffers: list[np.ndarray | None] = []
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern[str] | None = None
        self._decay_cache: dict[int, bool] = {}

        self._iterations = Variable(0, dtype="int64", trainable=False, name="iteration")
        self._track_variable(self._iterations)
        self._learning_rate: Variable | LearningRateSchedule | Callable[[], float]
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        else:
            # float64, not Keras' floatx: the rate the user typed is the rate that is used.
            self._learning_rate = Variable(
                self._checked_learning_rate(learning_rate),
                dtype="float64",
                trainable=False,
                name="learning_rate",
            )
            self._track_variable(self._learning_rate)

    # --- state ------------------------------------------------------------------------------
    @property
    def iterations(self) -> Variable:
        """The number of updates applied so far: a 0-d int64 Variable (``int()`` it)."""
        return self._iterations

    @property
    def variables(self) -> list[Variable]:
        """Every state Variable, in the stable order described in the module docstring."""
        return self._variables[:]

    def _track_variable(self, variable: Variable) -> None:
        self._variables.append(variable)

    def add_variable(
        self, shape: Sequence[int], initializer: float = 0.0, dtype: Any = None, name: str = ""
    ) -> Variable:
        """Create and track a non-trainable state Variable filled with ``initializer``."""
        variable = Variable(
            np.full(tuple(shape), initializer, dtype=dtype or _settings.floatx()),
            trainable=False,
            name=name,
        )
        self._track_variable(variable)
        return variable

    def add_variable_from_reference(
        self, reference_variable: Variable, name: str, initializer: float = 0.0
    ) -> Variable:
        """A state Variable with the shape and dtype of ``reference_variable``."""
        label = variable_label(reference_variable).replace("/", "_")
        slot = self.add_variable(
            reference_variable.data.shape,
            initializer,
            reference_variable.data.dtype,
            f"{label}_{name}",
        )
        self.__dict__.setdefault("_slots", []).append(slot)
        return slot

    def add_optimizer_variables(
        self, variables: Sequence[Variable], name: str, initializer: float = 0.0
    ) -> list[Variable]:
        """One state Variable per model variable (``add_variable_from_reference`` each)."""
        return [self.add_variable_from_reference(v, name, initializer) for v in variables]

    def build(self, variables: Sequence[Variable]) -> None:
        """Create the state for ``variables`` (called once, by the first ``apply``).

        A subclass calls ``super().build(variables)`` first, then adds its slots.
        """
        variables = list(variables)
        seen: set[int] = set()
        for variable in variables:
            if not isinstance(variable, Tensor) or not np.issubdtype(
                variable.data.dtype, np.floating
            ):
                raise ValueError(
                    f"{type(self).__name__} can only update floating-point Variables; "
                    f"received {variable!r}."
                )
            if id(variable) in seen:
                raise ValueError(f"Variable {variable_label(variable)!r} is listed twice.")
            seen.add(id(variable))
        self._trainable_variables = variables
        self._index = {id(v): i for i, v in enumerate(variables)}
        self._scratch = [np.empty_like(v.data) for v in variables]
        self._grad_buffers = [None] * len(variables)
        if self.use_ema:
            self._averages = self.add_optimizer_variables(variables, "average")
        if self.gradient_accumulation_steps:
            self._accumulators = self.add_optimizer_variables(variables, "gradient_accumulator")
        self.built = True

    def _get_variable_index(self, variable: Variable) -> int:
        return self._index[id(variable)]

    # --- learning rate ----------------------------------------------------------------------
    @staticmethod
    def _checked_learning_rate(value: Any) -> float:
        if isinstance(value, Tensor):
            value = value.data
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if not is_number(value) or not value >= 0:
            raise ValueError(
                "Argument `learning_rate` should be a non-negative float, an instance of "
                "LearningRateSchedule, or a callable (that takes no arguments and returns the "
                f"learning rate). Received instead: learning_rate={value!r}"
            )
        return float(value)

    @property
    def learning_rate(self) -> float:
        """The current learning rate, a Python float (a schedule is evaluated at
        ``iterations``). Set it to a float (or a schedule) between steps."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate: float | LearningRateSchedule) -> None:
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            if isinstance(self._learning_rate, Variable):
                self._variables.remove(self._learning_rate)
            self._learning_rate = learning_rate
            return
        if not isinstance(self._learning_rate, Variable):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` (or callable) as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument."
            )
        self._learning_rate.data[...] = self._checked_learning_rate(learning_rate)

    def _current_learning_rate(self) -> float:
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return float(lr.data)
        if isinstance(lr, LearningRateSchedule):
            return float(lr(int(self._iterations.data)))
        return float(lr())

    # --- applying gradients -----------------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> Variable:
        """Apply ``(gradient, variable)`` pairs (``zip(grads, variables)``); returns
        ``iterations``."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(list(grads), list(variables))
        return self._iterations

    def _variables_for(
        self, grads: list, trainable_variables: Sequence[Variable] | None
    ) -> list[Variable]:
        """The variables ``grads`` are for: the given ones (building the optimizer on them
        the first time), or those it was built with; one per gradient."""
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            variables = list(self._trainable_variables)
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: received {len(grads)} gradients for "
                f"{len(variables)} variables; they must correspond one to one."
            )
        return variables

    def apply(
        self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None
    ) -> None:
        """Update ``trainable_variables`` in place from ``grads`` (Tensors, arrays or None).

        ``trainable_variables`` may be omitted once the optimizer is built: the gradients
        then follow the order of the variables it was built with.
        """
        grads = list(grads)
        if not grads:
            return
        variables = self._variables_for(grads, trainable_variables)
        grads, variables = self._prepare_gradients(grads, variables)
        if grads:  # empty on a step that only accumulates
            learning_rate = self._current_learning_rate()
            if self.weight_decay:
                self._apply_weight_decay(variables, learning_rate)
            self._update_variables(grads, variables, learning_rate)
        if self.use_ema:
            self._update_moving_averages()
        self._iterations.data += 1
        for variable in variables:
            # As Keras: a variable's constraint projects it back after every update.
            constraint = getattr(variable, "constraint", None)
            if constraint is not None:
                value = constraint(Tensor._make(variable.data))
                variable.data[...] = value.data if isinstance(value, Tensor) else value
        if int(self._iterations.data) % FLUSH_EVERY == 0:
            self._flush_subnormals()

    def _update_number(self) -> int:
        """Keras' ``iterations + 1`` in the update rules (Adam's bias corrections, ...): the
        number of this update, from 1; under ``gradient_accumulation_steps`` the updates
        are counted, not the steps."""
        steps = int(self._iterations.data)
        if self.gradient_accumulation_steps:
            steps //= self.gradient_accumulation_steps
        return steps + 1

    def _update_variables(
        self, grads: list[np.ndarray], variables: list[Variable], learning_rate: float
    ) -> None:
        """Run ``update_step`` on each pair; a subclass with per-step state overrides it."""
        for grad, variable in zip(grads, variables):
            self.update_step(grad, variable, learning_rate)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        """Update ``variable.data`` in place from ``gradient`` (an array of its shape and
        dtype, not to be modified); ``iterations`` still counts the previous steps."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_step().")

    def scale_loss(self, loss: Any) -> Any:
        """Multiply the loss by ``loss_scale_factor`` when one is set."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    # --- config -----------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (no state); a schedule becomes its ``serialize`` dict."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            learning_rate: Any = float(lr.data)
        elif isinstance(lr, LearningRateSchedule):
            learning_rate = schedules.serialize(lr)
        else:
            raise TypeError(
                f"Cannot serialize optimizer {self.name!r}: its learning rate is a plain "
                "callable; use a float or a LearningRateSchedule."
            )
        return {
            "name": self.name,
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} name={self.name!r}, learning_rate={self.learning_rate:g}, "
            f"iterations={int(self._iterations.data)}>"
        )
