"""Adafactor (Shazeer and Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear
Memory Cost"), in Keras 3's form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrite.core import Variable
from dendrite.optimizers._utils import is_number, variable_label
from dendrite.optimizers.optimizer import Optimizer
from dendrite.registry import register


def _real(name: str, value: Any) -> float:
    if not is_number(value):
        raise TypeError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")
    return float(value)


@register("optimizer")
class Adafactor(Optimizer):
    """Adam's second moment without its first, stored as row and column averages.

    At step ``t`` (1 on the first update), with ``lr`` the learning rate and
    ``rms(x) = sqrt(mean(x**2))``::

        rho   = min(lr, 1 / sqrt(t))
        alpha = max(epsilon_2, rms(w)) * rho
        beta  = 1 - t**beta_2_decay                 (0 at t = 1: the first step takes g**2)
        G     = g**2 + epsilon_1

    For a variable of rank >= 2, ``r`` (shape ``w.shape[:-1]``) and ``c`` (shape
    ``w.shape[:-2] + w.shape[-1:]``) average ``G`` over its last and its second-last axis,
    and the second moment is their outer product over the last two axes::

        r <- beta * r + (1 - beta) * mean(G, axis=-1)
        c <- beta * c + (1 - beta) * mean(G, axis=-2)
        v  = (r / mean(r, axis=-1))[..., :, None] * c[..., None, :]

    For rank 0 and 1, ``v <- beta * v + (1 - beta) * G``. Then::

        u = g / sqrt(v)
        w <- w - alpha * u / max(1, rms(u) / clip_threshold)

    ``r``, ``v`` and ``c`` start at zeros. As in Keras, a variable of rank < 2 still gets
    an ``r`` and a ``c`` (0-d int32 zeros, unused) and every variable a full-size ``v``,
    so that the state has Keras' layout; under ``gradient_accumulation_steps`` ``t``
    counts the updates, not the steps (Keras' ``iterations``).

    ``relative_step`` is kept for Keras' signature and configs, but changes nothing: in
    Keras 3 it clips ``lr`` to ``1 / sqrt(t)``, which ``rho`` does anyway.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_2_decay: the exponent of ``t`` in the second moment's decay rate (< 0).
        epsilon_1: added to the squared gradients, keeping ``v`` away from 0.
        epsilon_2: the least scale of a step: ``alpha`` uses ``max(epsilon_2, rms(w))``.
        clip_threshold: updates whose RMS exceeds this are scaled down to it (part of the
            rule, independent of ``clipnorm``, ``clipvalue`` and ``global_clipnorm``).
        relative_step: see above.
        **kwargs: the base ``Optimizer`` arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
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
        # Keras checks none of these; dendrite refuses a non-number now rather than with a
        # TypeError in the middle of the first update.
        self.beta_2_decay = _real("beta_2_decay", beta_2_decay)
        self.epsilon_1 = _real("epsilon_1", epsilon_1)
        self.epsilon_2 = _real("epsilon_2", epsilon_2)
        self.clip_threshold = _real("clip_threshold", clip_threshold)
        self.relative_step = bool(relative_step)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        # One block per kind; the .keras writer interleaves them per variable, as Keras
        # creates them (optimizer_map.KERAS_CALLS).
        self._rows = [self._factor(v, v.data.shape[:-1], "factored_row") for v in variables]
        self._columns = [
            self._factor(v, v.data.shape[:-2] + v.data.shape[-1:], "factored_column")
            for v in variables
        ]
        self._v = self.add_optimizer_variables(variables, "velocity")

    def _factor(self, variable: Variable, shape: tuple[int, ...], kind: str) -> Variable:
        label = variable_label(variable).replace("/", "_")
        if variable.data.ndim < 2:
            return self.add_variable((), 0, "int32", f"{label}_{kind}")
        return self.add_variable(shape, 0.0, variable.data.dtype, f"{label}_{kind}")

    def _flush_subnormals(self) -> None:
        """Nothing to flush: every accumulator is an average of values >= ``epsilon_1``
        (1e-30 by default, below the base class' flushing threshold), so none decays
        towards 0, and zeroing one would make ``g / sqrt(v)`` divide by 0."""

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        w, buf = variable.data, self._scratch[index]
        real = w.dtype.type  # the scalars in the variable's dtype, as Keras casts them
        t = real(self._update_number())
        # np.minimum / np.maximum, not min / max: a NaN goes through, as in Keras
        rho = np.minimum(real(learning_rate), real(1) / np.sqrt(t))
        alpha = np.maximum(real(self.epsilon_2), np.sqrt(np.square(w, out=buf).mean())) * rho
        beta = real(1) - t ** real(self.beta_2_decay)

        np.square(gradient, out=buf)
        buf += real(self.epsilon_1)
        v = self._v[index].data
        if w.ndim >= 2:
            r, c = self._rows[index].data, self._columns[index].data
            r *= beta
            r += (real(1) - beta) * buf.mean(axis=-1)
            c *= beta
            c += (real(1) - beta) * buf.mean(axis=-2)
            np.multiply((r / r.mean(axis=-1, keepdims=True))[..., :, None], c[..., None, :], out=v)
        else:
            v *= beta
            buf *= real(1) - beta
            v += buf
        np.sqrt(v, out=buf)
        np.divide(gradient, buf, out=buf)
        rms = np.sqrt(np.square(buf).mean())
        buf /= np.maximum(real(1), rms / real(self.clip_threshold))
        buf *= alpha
        w -= buf

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step,
            }
        )
        return config
