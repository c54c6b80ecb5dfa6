"""``LossScaleOptimizer``: Keras 3's dynamic loss scaling around another optimizer."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dendrite.core import Tensor, Variable
from dendrite.optimizers._utils import is_number
from dendrite.optimizers.optimizer import Optimizer
from dendrite.optimizers.rmsprop import RMSprop
from dendrite.optimizers.schedules import LearningRateSchedule
from dendrite.registry import register, serialization

# The base optimizer's arguments that Keras still accepts, at their defaults only, so that
# configs written by older Keras versions load.
_BASE_DEFAULTS: dict[str, Any] = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


@register("optimizer")
class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling: the loss is multiplied by a scale that keeps low-precision
    gradients from underflowing, and the gradients are divided by it before the inner
    optimizer sees them.

    On each ``apply(grads)`` with ``s`` = ``dynamic_scale`` and ``k`` = ``step_counter``::

        if every gradient is finite:
            inner_optimizer.apply(g / s)
            if k == dynamic_growth_steps - 1:  k <- 0, s <- 2 s
            else:                              k <- k + 1
        else:                                  (the step is skipped: no weight changes,
            k <- 0, s <- s / 2                  the inner optimizer's iterations stay)

    ``scale_loss(loss)`` returns ``loss * s`` (``loss * initial_scale`` before the
    optimizer is built); a training step calls it before differentiating. In float32
    training a scale only costs a multiplication and a division by a power of 2 (exact
    unless it overflows); it matters for float16 gradients.

    ``iterations``, ``learning_rate`` (get and set) and ``finalize_variable_values`` are the
    inner optimizer's. The state is Keras': the optimizer's own ``iteration`` and
    ``learning_rate`` (unused, as in Keras), ``step_counter`` (int32) and ``dynamic_scale``
    (float32), then the inner optimizer's variables; ``variables``, ``get_weights``,
    ``set_weights`` and ``save_own_variables`` cover all of them.

    Args:
        inner_optimizer: the ``Optimizer`` to wrap (its ``loss_scale_factor`` is set to
            None, so that gradients are not unscaled twice). Keras requires it; dendrite
            defaults to ``RMSprop()`` (``compile``'s default optimizer) so that, like every
            registered optimizer, ``optimizers.get("lossscaleoptimizer")`` builds one.
        initial_scale: the first loss scale; a high value is recommended, since a scale
            too high falls much faster (halved on each bad step) than one too low rises.
        dynamic_growth_steps: double the scale after this many consecutive steps with
            finite gradients.
        name: the optimizer's name; default "loss_scale_optimizer".
        **kwargs: only the base optimizer's arguments at their default values (older
            configs), and ``dynamic=True``; anything else is a ValueError, as in Keras.
    """

    def __init__(
        self,
        inner_optimizer: Optimizer | None = None,
        initial_scale: float = 2.0**15,
        dynamic_growth_steps: int = 2000,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not kwargs.pop("dynamic", True):
            raise ValueError(
                "LossScaleOptimizer no longer supports `dynamic=False`. Instead, simply set "
                "`loss_scale_factor` directly on the `inner_optimizer`."
            )
        for argument, default in _BASE_DEFAULTS.items():
            if argument in kwargs and kwargs.pop(argument) != default:
                raise ValueError(
                    f"LossScaleOptimizer does not support `{argument}`. Instead, set "
                    f"`{argument}` on the `inner_optimizer`."
                )
        if kwargs:
            raise ValueError(
                f"LossScaleOptimizer does not support arguments: `{'`, `'.join(kwargs)}`."
            )
        super().__init__(learning_rate=0.0, name=name)
        if inner_optimizer is None:
            inner_optimizer = RMSprop()
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(
                "Argument `inner_optimizer` must be an instance of `Optimizer`. Received: "
                f"inner_optimizer={inner_optimizer!r}"
            )
        # Keras checks neither; a bad value would only fail (or never grow) later.
        if (
            not is_number(initial_scale)
            or not math.isfinite(initial_scale)
            or not initial_scale > 0
        ):
            raise ValueError(
                "Argument `initial_scale` must be a positive finite number. Received: "
                f"initial_scale={initial_scale!r}"
            )
        if (
            isinstance(dynamic_growth_steps, bool)
            or not isinstance(dynamic_growth_steps, (int, np.integer))
            or dynamic_growth_steps < 1
        ):
            raise ValueError(
                "Argument `dynamic_growth_steps` must be an integer >= 1. Received: "
                f"dynamic_growth_steps={dynamic_growth_steps!r}"
            )
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self.inner_optimizer.loss_scale_factor = None

    # --- state ------------------------------------------------------------------------------
    def build(self, variables: Sequence[Variable]) -> None:
        """Create ``step_counter`` and ``dynamic_scale`` and build the inner optimizer."""
        if self.built:
            return
        variables = list(variables)
        self.step_counter = self.add_variable((), 0, "int32", "step_counter")
        self.dynamic_scale = self.add_variable((), self.initial_scale, "float32", "dynamic_scale")
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(variables)
        super().build(variables)
        self._scratch = []  # the inner optimizer does the arithmetic

    @property
    def variables(self) -> list[Variable]:
        """This optimizer's variables, then the inner optimizer's (Keras' order)."""
        return self._variables + self.inner_optimizer.variables

    @property
    def iterations(self) -> Variable:
        """The inner optimizer's ``iterations`` (skipped steps do not count)."""
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self) -> float:
        """The inner optimizer's learning rate (settable)."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: float | LearningRateSchedule) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    # --- applying gradients -----------------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> Variable:
        """Apply ``(gradient, variable)`` pairs; returns ``iterations`` (the inner one's)."""
        super().apply_gradients(grads_and_vars)
        return self.iterations

    def apply(
        self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None
    ) -> None:
        """Unscale and apply ``grads`` with the inner optimizer when all are finite, else
        skip the step; then adjust the scale (see the class docstring)."""
        grads = list(grads)
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            self.build(trainable_variables)
        arrays = [
            None if g is None else g.data if isinstance(g, Tensor) else np.asarray(g) for g in grads
        ]
        if self.check_finite(arrays):
            scale = self.dynamic_scale.data
            unscaled = [None if a is None else a / scale for a in arrays]
            self.inner_optimizer.apply(unscaled, trainable_variables)
            if int(self.step_counter.data) == self.dynamic_growth_steps - 1:
                self.step_counter.data[...] = 0
                self.dynamic_scale.data *= 2
            else:
                self.step_counter.data += 1
        else:
            self.step_counter.data[...] = 0
            self.dynamic_scale.data *= 0.5

    def check_finite(self, grads: Sequence[Any]) -> bool:
        """Whether every element of every gradient (None ones left out) is finite."""
        for grad in grads:
            if grad is None:
                continue
            array = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if not np.isfinite(array).all():
                return False
        return True

    def scale_loss(self, loss: Any) -> Any:
        """``loss * dynamic_scale`` (``loss * initial_scale`` before the optimizer is
        built)."""
        scale = float(self.dynamic_scale.data) if self.built else self.initial_scale
        return loss * scale

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    # --- config -----------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """``name``, the serialized ``inner_optimizer``, ``initial_scale`` and
        ``dynamic_growth_steps`` (none of the base optimizer's arguments, as Keras)."""
        return {
            "name": self.name,
            "inner_optimizer": serialization.serialize_keras_object(self.inner_optimizer),
            "initial_scale": self.initial_scale,
            "dynamic_growth_steps": self.dynamic_growth_steps,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> LossScaleOptimizer:
        config = dict(config)
        inner = config.pop("inner_optimizer", None)
        if inner is not None and not isinstance(inner, Optimizer):
            inner = serialization.deserialize_keras_object(
                inner,
                custom_objects=custom_objects,
                kinds=("optimizer",),
                printable_module_name="optimizer",
            )
        return cls(inner, **config)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} name={self.name!r}, inner={self.inner_optimizer!r}, "
            f"dynamic_scale={float(self.dynamic_scale.data) if self.built else None}>"
        )
