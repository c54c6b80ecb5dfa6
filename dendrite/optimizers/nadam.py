"""Nadam (Dozat, 2015): Adam with Nesterov momentum, in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register

_MOMENTUM_CACHE_DECAY = 0.96


@register("optimizer")
class Nadam(Optimizer):
    """Adam whose first moment looks one step ahead, with Dozat's momentum schedule.

    At step ``t`` (1 on the first update), with ``u_t = beta_1 * (1 - 0.5 * 0.96**t)`` and the
    running product ``P_t = u_1 * ... * u_t`` (kept in ``variables``, last)::

        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g**2 - v) * (1 - beta_2)
        m_hat = u_{t+1} * m / (1 - P_t * u_{t+1}) + (1 - u_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2**t)
        w <- w - lr * m_hat / (sqrt(v_hat) + epsilon)

    PyTorch's NAdam uses ``0.96**(t * momentum_decay)`` with ``momentum_decay=0.004``; with
    ``momentum_decay=1.0`` it is this rule. Keras keeps ``P_t`` in the variables' dtype;
    dendrite keeps it in float64.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_1: decay rate of the first-moment estimate.
        beta_2: decay rate of the second-moment estimate.
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
        name: str = "nadam",
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
        self._momentums = self.add_optimizer_variables(variables, "momentum")
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        self._u_product = self.add_variable((), initializer=1.0, dtype="float64", name="u_product")
        self._scratch2 = [np.empty_like(v.data) for v in variables]

    def _u(self, step: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * _MOMENTUM_CACHE_DECAY**step)

    def _update_variables(
        self, grads: list[np.ndarray], variables: list[Variable], learning_rate: float
    ) -> None:
        # P_t takes u_t once per step, before any variable is updated (as in Keras).
        self._u_product.data *= self._u(self._update_number())
        super()._update_variables(grads, variables, learning_rate)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        t = self._update_number()
        u_t, u_next = self._u(t), self._u(t + 1)
        product = float(self._u_product.data)
        m = self._momentums[index].data
        v = self._velocities[index].data
        buf, buf2 = self._scratch[index], self._scratch2[index]

        np.subtract(gradient, m, out=buf)
        buf *= 1.0 - self.beta_1
        m += buf
        np.multiply(gradient, gradient, out=buf)
        buf -= v
        buf *= 1.0 - self.beta_2
        v += buf
        # denominator sqrt(v_hat) + epsilon, then the two halves of lr * m_hat / denominator
        np.multiply(v, 1.0 / (1.0 - self.beta_2**t), out=buf)
        np.sqrt(buf, out=buf)
        buf += self.epsilon
        np.divide(m, buf, out=buf2)
        buf2 *= learning_rate * u_next / (1.0 - product * u_next)
        variable.data -= buf2
        np.divide(gradient, buf, out=buf2)
        buf2 *= learning_rate * (1.0 - u_t) / (1.0 - product)
        variable.data -= buf2

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
