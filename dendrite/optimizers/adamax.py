"""Adamax (Kingma & Ba, 2014, section 7.1), in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class Adamax(Optimizer):
    """Adam with the infinity norm in place of the second moment.

    At step ``t`` (1 on the first update), with ``m``, ``u`` zeros at first::

        m <- m + (g - m) * (1 - beta_1)
        u <- max(beta_2 * u, |g|)
        w <- w - lr * m / ((1 - beta_1**t) * (u + epsilon))

    PyTorch puts ``eps`` inside the maximum (``u <- max(beta_2 * u, |g| + eps)``) and divides
    by ``u``; with ``epsilon = 0`` the two agree.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_1: decay rate of the first-moment estimate.
        beta_2: decay rate of the infinity norm.
        epsilon: small constant for numerical stability.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
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
        name: str = "adamax",
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
        self.beta_1 = check_hyperparameter("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon, 0.0)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._m = self.add_optimizer_variables(variables, "momentum")
        self._u = self.add_optimizer_variables(variables, "norm")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        t = self._update_number()
        m = self._m[index].data
        u = self._u[index].data
        buf = self._scratch[index]

        np.subtract(gradient, m, out=buf)
        buf *= 1.0 - self.beta_1
        m += buf
        u *= self.beta_2
        np.maximum(u, np.abs(gradient, out=buf), out=u)
        np.add(u, self.epsilon, out=buf)
        np.divide(m, buf, out=buf)
        buf *= learning_rate / (1.0 - self.beta_1**t)
        variable.data -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
