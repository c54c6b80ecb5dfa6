"""SGD: gradient descent, optionally with (Nesterov) momentum, in Keras' form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class SGD(Optimizer):
    """Gradient descent with optional momentum (the seed's ``w <- w - lr * dL/dw``).

    With ``momentum == 0``: ``w <- w - lr * g``. Otherwise, with a velocity ``m`` (zeros at
    first), ``m <- momentum * m - lr * g`` and ``w <- w + m``; with ``nesterov=True`` the
    variable moves by ``momentum * m - lr * g`` instead.

    Keras keeps the velocity in parameter units (``lr`` inside ``m``); PyTorch keeps
    ``b <- momentum * b + g`` and steps ``-lr * b``. The two agree while ``lr`` is constant
    and differ when it changes (schedules, ReduceLROnPlateau).

    Args:
        learning_rate: float, schedule or callable; default 0.01.
        momentum: in [0, 1]; 0 is plain gradient descent.
        nesterov: use Nesterov momentum.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "SGD",
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
        self.momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums: list[Variable] = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        w = variable.data
        step = np.multiply(gradient, learning_rate, out=self._scratch[index])  # lr * g
        if self.momentum == 0:
            w -= step
            return
        m = self.momentums[index].data
        m *= self.momentum
        m -= step  # m = momentum * m - lr * g
        if self.nesterov:
            w -= step
            w += np.multiply(m, self.momentum, out=step)  # w += momentum * m - lr * g
        else:
            w += m

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
