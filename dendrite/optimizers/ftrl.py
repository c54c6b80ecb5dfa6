"""FTRL-Proximal, "Follow The Regularized Leader" (McMahan et al., 2013, "Ad Click
Prediction: a View from the Trenches"), in Keras 3's form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import is_number
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


def _checked(name: str, value: Any, sign: str = "positive or zero") -> float:
    """Keras' checks: a TypeError for a non-number (Keras' comparison raises one), a
    ValueError (with Keras' message) for the wrong sign."""
    if not is_number(value):
        raise TypeError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")
    if (value < 0.0) if sign == "positive or zero" else (value > 0.0):
        raise ValueError(f"`{name}` needs to be {sign}. Received: {name}={value}.")
    return float(value)


def _power(x: np.ndarray, exponent: float) -> np.ndarray:
    """``x ** exponent``; a square root for 0.5, correctly rounded, as torch computes it."""
    out = np.empty_like(x)  # an array even for a 0-d x (a ufunc returns a scalar)
    if exponent == 0.5:
        return np.sqrt(x, out=out)
    return np.power(x, x.dtype.type(exponent), out=out)


@register("optimizer")
class Ftrl(Optimizer):
    """Per-coordinate rates as Adagrad's, with L1 that sets weights to exactly 0.

    With ``p = learning_rate_power`` (<= 0), the accumulator ``n`` starting at
    ``initial_accumulator_value`` and the linear term ``z`` at zeros; ``lambda_1``,
    ``lambda_2`` the L1, L2 strengths, ``lambda_s`` the shrinkage strength::

        g_s = g + 2 * lambda_s * w                       (shrinkage: an L2 loss on w)
        n'  = n + g**2                                   (the raw g, not g_s)
        z  <- z + g_s - (n'**(-p) - n**(-p)) / lr * w
        w  <- (clip(z, -lambda_1, lambda_1) - z) / (n'**(-p) / lr + 2 * lambda_2 + beta / lr)
        n  <- n'

    so ``w = 0`` where ``|z| <= lambda_1``, else ``w = -(z - sign(z) lambda_1) / (...)``.
    With ``p = -0.5`` (the default) ``n**(-p)`` is ``sqrt(n)``; ``p = 0`` gives a fixed
    rate. The weights are recomputed from ``z`` and ``n`` at every update, not moved by a
    step, so the base class' decoupled weight decay (applied to ``w`` first) enters only
    through the ``w`` terms of ``z``, as in Keras.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        learning_rate_power: ``p`` above, <= 0: how fast the per-weight rates shrink.
        initial_accumulator_value: the start of ``n``, >= 0.
        l1_regularization_strength: ``lambda_1``, >= 0.
        l2_regularization_strength: ``lambda_2``, >= 0 (a stabilising penalty).
        l2_shrinkage_regularization_strength: ``lambda_s``, >= 0 (a magnitude penalty).
        beta: the ``beta`` of the paper, added as ``beta / lr`` to the denominator.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
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
        self.initial_accumulator_value = _checked(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.learning_rate_power = _checked(
            "learning_rate_power", learning_rate_power, "negative or zero"
        )
        self.l1_regularization_strength = _checked(
            "l1_regularization_strength", l1_regularization_strength
        )
        self.l2_regularization_strength = _checked(
            "l2_regularization_strength", l2_regularization_strength
        )
        self.l2_shrinkage_regularization_strength = _checked(
            "l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength
        )
        if not is_number(beta):
            raise TypeError(f"Argument `beta` must be a real number. Received: beta={beta!r}")
        self.beta = float(beta)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_optimizer_variables(
            variables, "accumulator", initializer=self.initial_accumulator_value
        )
        self._linears = self.add_optimizer_variables(variables, "linear")

    def _flush_subnormals(self) -> None:
        """Nothing to flush: no state decays geometrically here (``n`` only grows, ``z``
        sums terms), so Keras' values are kept to the last bit."""

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        w, buf = variable.data, self._scratch[index]
        n, z = self._accumulators[index].data, self._linears[index].data
        real = w.dtype.type  # the scalars in the variable's dtype, as Keras casts them
        lr = real(learning_rate)
        power = -self.learning_rate_power
        l2 = real(self.l2_regularization_strength) + real(self.beta) / (real(2) * lr)

        old_power = _power(n, power)
        np.square(gradient, out=buf)
        n += buf  # n is n' from here on
        new_power = _power(n, power)
        # z <- z + (g_s - (n'^-p - n^-p) / lr * w), in Keras' order of operations
        np.subtract(new_power, old_power, out=old_power)
        old_power /= lr
        old_power *= w
        np.multiply(w, real(2 * self.l2_shrinkage_regularization_strength), out=buf)
        buf += gradient
        buf -= old_power
        z += buf
        # w <- (clip(z) - z) / (n'^-p / lr + 2 l2)
        new_power /= lr
        new_power += real(2) * l2
        l1 = real(self.l1_regularization_strength)
        np.clip(z, -l1, l1, out=buf)
        buf -= z
        np.divide(buf, new_power, out=w)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": (self.l2_shrinkage_regularization_strength),
                "beta": self.beta,
            }
        )
        return config
