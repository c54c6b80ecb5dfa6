"""RMSprop (Hinton, 2012), optionally centered and with momentum, in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class RMSprop(Optimizer):
    """Divide the gradient by a running root-mean-square of recent gradients.

    With ``v`` (and ``a``, ``p``) zeros at first::

        v <- rho * v + (1 - rho) * g**2
        a <- rho * a + (1 - rho) * g                    (centered only)
        d = v - a**2 + epsilon   if centered   else   v + epsilon
        increment = lr * g / sqrt(d)
        p <- momentum * p + increment; w <- w - p       (momentum > 0)
        w <- w - increment                              (otherwise)

    Keras adds ``epsilon`` inside the square root; PyTorch adds it outside
    (``g / (sqrt(v) + eps)``), and PyTorch's momentum buffer holds ``g / (sqrt(v) + eps)``
    without the learning rate. With ``epsilon = 0`` and a constant rate they agree.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        rho: discount factor of the running averages.
        momentum: in [0, 1]; 0 disables momentum.
        epsilon: small constant for numerical stability.
        centered: normalise by the estimated variance instead of the second moment.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "rmsprop",
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
        self.momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon, 0.0)
        self.centered = bool(centered)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        self._momentums: list[Variable] = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(variables, "momentum")
        self._average_gradients: list[Variable] = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(variables, "average_gradient")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        rho = self.rho
        v = self._velocities[index].data
        buf = self._scratch[index]

        v *= rho
        np.multiply(gradient, gradient, out=buf)
        buf *= 1.0 - rho
        v += buf
        if self.centered:
            a = self._average_gradients[index].data
            a *= rho
            a += np.multiply(gradient, 1.0 - rho, out=buf)
            np.multiply(a, a, out=buf)
            np.subtract(v, buf, out=buf)
            buf += self.epsilon
        else:
            np.add(v, self.epsilon, out=buf)
        np.sqrt(buf, out=buf)
        np.divide(gradient, buf, out=buf)
        buf *= learning_rate  # the increment lr * g / sqrt(d)
        if self.momentum > 0:
            p = self._momentums[index].data
            p *= self.momentum
            p += buf
            variable.data -= p
        else:
            variable.data -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
