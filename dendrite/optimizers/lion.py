"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class Lion(Optimizer):
    """The sign of an interpolated momentum as the step, one moment kept.

    With ``m`` zeros at first::

        w <- w - lr * sign(beta_1 * m + (1 - beta_1) * g)
        m <- beta_2 * m + (1 - beta_2) * g

    Every weight moves by exactly ``lr`` (or not at all), so a learning rate 3-10 times
    smaller than Adam's is usual (and a weight decay as much larger).

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_1: in (0, 1]: how much of the momentum the step's direction takes.
        beta_2: in [0, 1]: the momentum's decay rate.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "lion",
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
        if not 0.0 < beta_1 <= 1.0:
            raise ValueError(
                f"Lion: beta_1 must be in (0, 1] (at 0 it is sign SGD); received beta_1={beta_1}."
            )
        self.beta_1 = float(beta_1)
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._m = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        m = self._m[index].data
        buf = self._scratch[index]
        np.multiply(m, self.beta_1, out=buf)
        buf += gradient * (1.0 - self.beta_1)
        np.sign(buf, out=buf)
        buf *= learning_rate
        variable.data -= buf
        m *= self.beta_2
        m += gradient * (1.0 - self.beta_2)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return config
