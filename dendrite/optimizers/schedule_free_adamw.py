"""Schedule-Free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), in Keras 3's form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class ScheduleFreeAdamW(Optimizer):
    """AdamW without a learning-rate schedule: averaging instead of decay.

    The model's weights ``y`` are an interpolation of two sequences: ``z`` (kept in the
    ``momentum`` slot, which starts as a copy of the weights) takes plain Adam-normalised
    gradient steps, and ``x`` is the running average of the ``z`` iterates. At update ``t``
    (1 first), with ``v`` zeros at first::

        lr_t = lr * min(t / warmup_steps, 1)        (lr when warmup_steps is 0)
        v <- v + (g**2 - v) * (1 - beta_2)
        z <- z - lr_t * g / (sqrt(v / (1 - beta_2**t)) + epsilon)
        x  = (y - (1 - beta_1) * z) / beta_1
        x <- (1 - 1/t) * x + (1/t) * z
        y <- (1 - beta_1) * z + beta_1 * x

    As Keras computes it (on the torch and TensorFlow backends alike), ``x`` is recovered
    from the *updated* ``z``: it reads the momentum slot's value after assigning to it.
    The paper recovers ``x`` from the ``z`` before the step. With Keras' order the three
    last lines reduce to ``y <- (1 - 1/t) * y + (1/t) * z``: ``beta_1`` cancels, up to
    rounding. dendrite follows Keras' arithmetic step by step, so that its weights and
    state match Keras'. Weight decay (``weight_decay``) is the base class' decoupled decay
    of ``y``, before the step. Keras has no separate evaluation mode (no swap to ``x``).

    State, in Keras' order: ``iterations``, the learning rate, then per variable its
    ``momentum`` (``z``) and its ``velocity`` (``v``); dendrite keeps the momentums as one
    block, then the velocities.

    Args:
        learning_rate: float, schedule or callable; default 0.0025.
        beta_1: the interpolation between ``z`` and ``x`` (in (0, 1]).
        beta_2: decay rate of the second-moment estimate (in [0, 1]).
        epsilon: added to the bias-corrected ``sqrt(v)``; default 1e-8.
        warmup_steps: the learning rate rises linearly from ``lr / warmup_steps`` to ``lr``
            over the first ``warmup_steps`` updates; 0 (default) for none.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.0025,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 0,
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
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **kwargs,
        )
        # Keras checks none of these: beta_1 = 0 gives NaN weights there (x divides by it).
        self.beta_1 = check_hyperparameter("beta_1", beta_1, 0.0, 1.0)
        if self.beta_1 == 0.0:
            raise ValueError(
                "Argument `beta_1` must be a number in (0, 1]: the average is recovered by "
                "dividing by it. Received: beta_1=0.0"
            )
        self.beta_2 = check_hyperparameter("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_hyperparameter("epsilon", epsilon, 0.0)
        if (
            isinstance(warmup_steps, bool)
            or not isinstance(warmup_steps, (int, np.integer))
            or warmup_steps < 0
        ):
            raise ValueError(
                "Argument `warmup_steps` must be an integer >= 0. Received: "
                f"warmup_steps={warmup_steps!r}"
            )
        self.warmup_steps = int(warmup_steps)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum")
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        for momentum, variable in zip(self._momentums, variables):
            momentum.data[...] = variable.data  # z starts at the initial weights

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        y, buf = variable.data, self._scratch[index]
        real = y.dtype.type  # the scalars in the variable's dtype, as Keras casts them
        t = real(self._update_number())
        lr = real(learning_rate)
        if self.warmup_steps > 0:
            lr = lr * np.minimum(t / real(self.warmup_steps), real(1))
        beta_1, beta_2 = real(self.beta_1), real(self.beta_2)
        z = self._momentums[index].data
        v = self._velocities[index].data

        np.square(gradient, out=buf)
        buf -= v
        buf *= real(1) - beta_2
        v += buf
        np.divide(v, real(1) - beta_2**t, out=buf)
        np.sqrt(buf, out=buf)
        buf += real(self.epsilon)
        z -= (lr * gradient) / buf

        weight = real(1) / t
        np.multiply(z, real(1) - beta_1, out=buf)
        np.subtract(y, buf, out=buf)
        buf /= beta_1  # x, recovered from the updated z (see the class docstring)
        buf *= real(1) - weight
        buf += weight * z  # the new x
        buf *= beta_1
        np.multiply(z, real(1) - beta_1, out=y)
        y += buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "warmup_steps": self.warmup_steps,
            }
        )
        return config
