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
    clipnorm_scales,
    global_clipnorm_scale,
    is_number,
    variable_label,
)
from dendrite.optimizers.schedules import LearningRateSchedule
from dendrite.registry.naming import snake_case

# See Optimizer._flush_subnormals.
_FLUSH_EVERY = 64
_FLUSH_BELOW = 1e12


class Optimizer:
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
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"Received {len(grads)} gradients for {len(variables)} variables; they must "
                "correspond one to one."
            )
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
        if int(self._iterations.data) % _FLUSH_EVERY == 0:
            self._flush_subnormals()

    def _flush_subnormals(self) -> None:
        """Set slot values too small to matter to exactly 0.

        A weight whose gradient stays 0 (a pixel that is always black) has its momentum
        multiplied by beta_1 every step; after some hundred steps it becomes a subnormal
        float, and arithmetic on subnormals is about 100 times slower on x86, which made
        Adam steps 5 times slower late in an epoch. Values below ``_FLUSH_BELOW`` times the
        smallest normal float move a weight by less than 1e-20 per step, far below float32
        resolution, so zeroing them changes no result; checking every ``_FLUSH_EVERY`` steps
        keeps them from decaying into the subnormal range in between (0.9^64 > 1e-3).
        """
        for slot in self.__dict__.get("_slots", ()):
            data = slot.data
            if data.dtype.kind == "f":
                threshold = np.finfo(data.dtype).tiny * _FLUSH_BELOW
                data[np.abs(data) < threshold] = 0

    def _grad_buffer(self, index: int) -> np.ndarray:
        buffer = self._grad_buffers[index]
        if buffer is None:
            buffer = self._grad_buffers[index] = np.empty_like(self._scratch[index])
        return buffer

    def _prepare_gradients(
        self, grads: list[Any], variables: list[Variable]
    ) -> tuple[list[np.ndarray], list[Variable]]:
        """Filter, convert, check, unscale and clip; nothing is written to a variable here."""
        arrays, kept, indices, missing = [], [], [], []
        for grad, variable in zip(grads, variables):
            index = self._index.get(id(variable))
            if index is None:
                raise ValueError(
                    f"Unknown variable: {variable!r}. This optimizer can only be called for the "
                    "variables it was originally built with. When working with a new set of "
                    "variables, you should recreate a new optimizer instance."
                )
            if grad is None:
                missing.append(variable_label(variable))
                continue
            array = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if array.shape != variable.data.shape:
                raise ValueError(
                    f"Gradient for variable {variable_label(variable)!r} has shape "
                    f"{array.shape}, but the variable has shape {variable.data.shape}."
                )
            arrays.append(array)
            kept.append(variable)
            indices.append(index)
        if not arrays:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss.",
                stacklevel=3,
            )
        for k, (array, variable, index) in enumerate(zip(arrays, kept, indices)):
            if array.dtype != variable.data.dtype:
                buffer = self._grad_buffer(index)
                np.copyto(buffer, array, casting="same_kind")
                arrays[k] = buffer
        if self.loss_scale_factor is not None:
            self._scale(arrays, indices, [1.0 / self.loss_scale_factor] * len(arrays))
        if self.gradient_accumulation_steps and not self._accumulate(arrays, indices):
            return [], kept
        if self.clipvalue is not None:
            limit = self.clipvalue
            for k, index in enumerate(indices):
                arrays[k] = np.clip(arrays[k], -limit, limit, out=self._grad_buffer(index))
        elif self.clipnorm is not None:
            self._scale(arrays, indices, clipnorm_scales(arrays, self.clipnorm))
        elif self.global_clipnorm is not None:
            scale = global_clipnorm_scale(arrays, self.global_clipnorm)
            self._scale(arrays, indices, [scale] * len(arrays))
        return arrays, kept

    def _accumulate(self, arrays: list[np.ndarray], indices: list[int]) -> bool:
        """Add the gradients to the accumulators; on every ``gradient_accumulation_steps``-th
        step replace them by the mean since the last update (and reset the accumulators)
        and return True (as Keras: the clipping and the update then use that mean)."""
        steps = self.gradient_accumulation_steps
        update = (int(self._iterations.data) + 1) % steps == 0
        for k, index in enumerate(indices):
            accumulator = self._accumulators[index].data
            if not update:
                accumulator += arrays[k]
                continue
            mean = np.add(arrays[k], accumulator, out=self._grad_buffer(index))
            mean /= steps
            arrays[k] = mean
            accumulator[...] = 0
        return update

    def _scale(self, arrays: list[np.ndarray], indices: list[int], factors: list[float]) -> None:
        for k, (index, factor) in enumerate(zip(indices, factors)):
            if factor != 1.0:
                arrays[k] = np.multiply(arrays[k], factor, out=self._grad_buffer(index))

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

    # --- weight decay -----------------------------------------------------------------------
    def exclude_from_weight_decay(
        self, var_list: Sequence[Variable] | None = None, var_names: Sequence[str] | None = None
    ) -> None:
        """Exempt variables from weight decay: those in ``var_list``, and those whose name
        contains any of the strings in ``var_names`` (e.g. ``["bias"]``)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        names = sorted(set(var_names or ()))
        self._exclude_pattern = re.compile("|".join(map(re.escape, names))) if names else None
        self._decay_cache = {}

    def _use_weight_decay(self, variable: Variable) -> bool:
        key = id(variable)
        use = self._decay_cache.get(key)
        if use is None:
            use = key not in self._exclude_ids and not (
                self._exclude_pattern is not None
                and self._exclude_pattern.search(str(variable.name or ""))
            )
            self._decay_cache[key] = use
        return use

    def _apply_weight_decay(self, variables: list[Variable], learning_rate: float) -> None:
        # w - w * wd * lr, written as one in-place multiply
        factor = 1.0 - self.weight_decay * learning_rate
        for variable in variables:
            if self._use_weight_decay(variable):
                variable.data *= factor

    # --- moving averages (use_ema) ----------------------------------------------------------
    def _update_moving_averages(self) -> None:
        step = int(self._iterations.data)
        momentum = self.ema_momentum if step != 0 else 0.0
        for variable, average, buffer in zip(
            self._trainable_variables, self._averages, self._scratch
        ):
            average.data *= momentum
            np.multiply(variable.data, 1.0 - momentum, out=buffer)
            average.data += buffer
        frequency = self.ema_overwrite_frequency
        if frequency and (step + 1) % frequency == 0:
            self.finalize_variable_values(self._trainable_variables)

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """With ``use_ema``, overwrite the variables with their moving averages (``fit``
        does this after the last epoch); otherwise do nothing."""
        if not self.use_ema:
            return
        if len(var_list) != len(self._averages):
            raise ValueError(
                f"Expected {len(self._averages)} variables to overwrite with their averages; "
                f"received {len(var_list)}."
            )
        for variable, average in zip(var_list, self._averages):
            variable.data[...] = average.data

    def scale_loss(self, loss: Any) -> Any:
        """Multiply the loss by ``loss_scale_factor`` when one is set."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    # --- saving -----------------------------------------------------------------------------
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Assign values to ``variables`` (same order); the optimizer must be built."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Call `optimizer.build(trainable_variables)` first."
            )
        if len(weights) != len(self._variables):
            raise ValueError(
                f"Optimizer {self.name!r} has {len(self._variables)} variables; received "
                f"{len(weights)} weights."
            )
        for variable, weight in zip(self._variables, weights):
            variable.assign(weight)

    def get_weights(self) -> list[np.ndarray]:
        return [v.data.copy() for v in self._variables]

    def save_own_variables(self, store: dict[str, Any]) -> None:
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.data

    def load_own_variables(self, store: dict[str, Any]) -> None:
        if len(store) != len(self._variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', because it has "
                f"{len(self._variables)} variables whereas the saved optimizer has "
                f"{len(store)} variables.",
                stacklevel=2,
            )
            return
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

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
