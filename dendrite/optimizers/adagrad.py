"""Adagrad (Duchi et al., 2011), in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class Adagrad(Optimizer):
    """Per-parameter rates that shrink with the sum of the squared gradients seen so far.

    With the accumulator ``s`` starting at ``initial_accumulator_value``::

        s <- s + g**2
        w <- w - lr * g / sqrt(s + epsilon)

    Keras starts ``s`` at 0.1 and adds ``epsilon`` inside the square root; PyTorch starts at
    0 by default and computes ``g / (sqrt(s) + eps)`` (and has an ``lr_decay`` Keras lacks).
    With the same start and ``epsilon = 0`` they agree.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        initial_accumulator_value: non-negative starting value of the accumulators.
        epsilon: small constant for numerical stability.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "adagrad",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.initial_accumulator_value = check_hyperparameter(
            "initial_accumulator_value", initial_accumulator_value, 0.0
        )
        self.epsilon = check_hyperparameter("epsilon", epsilon, 0.0)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_optimizer_variables(
            variables, "accumulator", initializer=self.initial_accumulator_value
        )

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        s = self._accumulators[index].data
        buf = self._scratch[index]

        s += np.multiply(gradient, gradient, out=buf)
        np.add(s, self.epsilon, out=buf)
        np.sqrt(buf, out=buf)
        np.divide(gradient, buf, out=buf)
        buf *= learning_rate
        variable.data -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config
