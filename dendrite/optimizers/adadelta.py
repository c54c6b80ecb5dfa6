"""Adadelta (Zeiler, 2012), in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class Adadelta(Optimizer):
    """Steps scaled by the ratio of running RMS of past updates to that of gradients.

    With ``E[g2]`` and ``E[dx2]`` zeros at first, and ``rms(x) = sqrt(x + epsilon)``::

        E[g2]  <- rho * E[g2] + (1 - rho) * g**2
        dx      = -rms(E[dx2]) / rms(E[g2]) * g
        E[dx2] <- rho * E[dx2] + (1 - rho) * dx**2
        w      <- w + lr * dx

    This is exactly PyTorch's rule; only the defaults differ (Keras: lr 0.001, rho 0.95,
    epsilon 1e-7; PyTorch: lr 1.0, rho 0.9, eps 1e-6).

    Args:
        learning_rate: float, schedule or callable; default 0.001 (the paper's form is 1.0).
        rho: the decay rate.
        epsilon: small constant for numerical stability.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.95,
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
        name: str = "adadelta",
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
        self.rho = check_hyperparameter("rho", rho, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon, 0.0)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._accumulated_grads = self.add_optimizer_variables(variables, "accumulated_grad")
        self._accumulated_delta_vars = self.add_optimizer_variables(
            variables, "accumulated_delta_var"
        )
        self._scratch2 = [np.empty_like(v.data) for v in variables]

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        rho, eps = self.rho, self.epsilon
        eg2 = self._accumulated_grads[index].data
        edx2 = self._accumulated_delta_vars[index].data
        buf, buf2 = self._scratch[index], self._scratch2[index]

        eg2 *= rho
        eg2 += np.multiply(np.multiply(gradient, gradient, out=buf), 1.0 - rho, out=buf)
        np.sqrt(np.add(edx2, eps, out=buf), out=buf)
        np.sqrt(np.add(eg2, eps, out=buf2), out=buf2)
        buf /= buf2
        buf *= gradient  # buf = -dx
        edx2 *= rho
        edx2 += np.multiply(np.multiply(buf, buf, out=buf2), 1.0 - rho, out=buf2)
        buf *= learning_rate
        variable.data -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
