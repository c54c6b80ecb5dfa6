"""Adam (Kingma & Ba, 2014), with AMSGrad, in Keras' form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Variable
from dendrite.optimizers._utils import check_hyperparameter
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


@register("optimizer")
class Adam(Optimizer):
    """Adaptive moment estimation.

    At step ``t`` (1 on the first update), with ``m``, ``v`` zeros at first::

        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g**2 - v) * (1 - beta_2)
        v_hat <- max(v_hat, v); use v_hat for v          (amsgrad only)
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w <- w - alpha * m / (sqrt(v) + epsilon)

    ``epsilon`` is the paper's "epsilon hat", added to the bias-uncorrected ``sqrt(v)``;
    PyTorch adds its ``eps`` after the bias correction, ``sqrt(v / (1 - beta_2**t)) + eps``,
    so Keras' ``epsilon`` equals PyTorch's ``eps * sqrt(1 - beta_2**t)``.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_1: decay rate of the first-moment estimate.
        beta_2: decay rate of the second-moment estimate.
        epsilon: small constant for numerical stability (Keras default 1e-7).
        amsgrad: use the AMSGrad variant (Reddi et al., 2018).
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "adam",
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
        self.amsgrad = bool(amsgrad)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum")
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(variables, "velocity_hat")

    def _step_scalars(self, learning_rate: float) -> tuple[float, float, float]:
        """(1 - beta_1, 1 - beta_2, alpha) of the coming step."""
        t = self._update_number()
        alpha = learning_rate * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        return 1.0 - self.beta_1, 1.0 - self.beta_2, alpha

    def _update_variables(
        self, grads: list[np.ndarray], variables: list[Variable], learning_rate: float
    ) -> None:
        # All the variables the Adam kernel (csrc/adam.c) can take go to it in one call (the
        # NumPy update_step stays the reference, and the path of a subclass that overrides it).
        if self.amsgrad or type(self).update_step is not Adam.update_step:
            return super()._update_variables(grads, variables, learning_rate)
        fused = []
        for gradient, variable in zip(grads, variables):
            index = self._index[id(variable)]
            w = variable.data
            m = self._momentums[index].data
            v = self._velocities[index].data
            if _native.usable(gradient, written=(w, m, v)):
                # A 2-D variable is updated by blocks of its rows (csrc/adam.c), a dense
                # kernel's the same blocks as its gradient's product.
                fused.append((w, gradient, m, v, w.shape[1] if w.ndim == 2 else 0))
            else:
                self.update_step(gradient, variable, learning_rate)
        if fused:
            c1, c2, alpha = self._step_scalars(learning_rate)
            _native.kernels.adam(fused, c1, c2, self.epsilon, alpha)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        c1, c2, alpha = self._step_scalars(learning_rate)
        m = self._momentums[index].data
        v = self._velocities[index].data
        w = variable.data
        buf = self._scratch[index]
        np.subtract(gradient, m, out=buf)
        buf *= c1
        m += buf
        np.multiply(gradient, gradient, out=buf)
        buf -= v
        buf *= c2
        v += buf
        if self.amsgrad:
            v_hat = self._velocity_hats[index].data
            v = np.maximum(v_hat, v, out=v_hat)
        np.sqrt(v, out=buf)
        buf += self.epsilon
        np.divide(m, buf, out=buf)
        buf *= alpha
        w -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config


@register("optimizer")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Before each Adam step, ``w <- w - w * weight_decay * lr`` (the base optimizer's weight
    decay; here it defaults to 0.004 and may not be None). PyTorch's AdamW applies the same
    ``w <- w * (1 - lr * weight_decay)``, with default weight_decay 0.01.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        weight_decay: the decoupled decay rate; default 0.004.
        beta_1, beta_2, epsilon, amsgrad: as in ``Adam``.
        **kwargs: the base ``Optimizer`` arguments (clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "adamw",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
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
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
