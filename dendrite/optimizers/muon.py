"""Muon (Jordan et al., 2024; Liu et al., 2025, "Muon is Scalable for LLM Training"), in
Keras 3's form: momentum orthogonalised by a Newton-Schulz iteration for matrices, AdamW for
every other variable."""

from __future__ import annotations

import re
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


def _real_or_none(name: str, value: Any) -> float | None:
    return None if value is None else _real(name, value)


def _swap_last_axes(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


@register("optimizer")
class Muon(Optimizer):
    """Momentum orthogonalised by Newton-Schulz for 2-D variables; AdamW for the others.

    Which rule a variable takes is fixed when the optimizer is built (as in Keras):

    - AdamW when the variable is not 2-D (biases, scalars, convolution kernels: Keras'
      rule is ``len(shape) != 2``);
    - AdamW when ``exclude_embeddings`` and its path contains "embedding" (any case);
    - AdamW when any of ``exclude_layers`` (regular expressions) is found in its path
      (``re.search``): pass the name of the output layer, e.g. ``["output_dense"]``;
    - Muon otherwise.

    Muon step, with ``m`` zeros at first and ``mu`` = ``momentum``::

        m <- mu * m + g                     (Keras: m <- m + (g + m * (mu - 1)))
        u  = g + mu * m  if nesterov else m
        O  = NS(u)
        w <- w - lr * O * sqrt(max(n_0, n_1)) * rms_rate   (no rms factor if rms_rate None)

    ``NS`` orthogonalises approximately (``U S' V^T`` with ``S'`` near 1 rather than the
    exact ``U V^T``): for ``X`` with more rows than columns it works on ``X^T``; it
    divides ``X`` by ``||X||_F + 1e-7`` (so its spectral norm is at most 1), then runs
    ``ns_steps`` quintic iterations with ``(a, b, c)`` = ``(muon_a, muon_b, muon_c)``::

        A = X X^T
        X <- a X + (b A + c A A) X

    AdamW step, at update ``t`` (1 first) with ``lr_a = lr * adam_lr_ratio``::

        m <- m + (g - m) * (1 - adam_beta_1)
        v <- v + (g**2 - v) * (1 - adam_beta_2)
        w <- w - m * lr_a * sqrt(1 - adam_beta_2**t) / (1 - adam_beta_1**t) / (sqrt(v) + epsilon)

    Weight decay, before the steps, on every variable not excluded by
    ``exclude_from_weight_decay``: ``w <- w - w * wd * lr`` (``lr``, not ``lr_a``), with
    ``wd`` = ``weight_decay`` for Muon variables and ``adam_weight_decay`` for AdamW ones
    (either may be None: no decay for those variables).

    State, in Keras' order: ``iterations``, the learning rate, then per variable its
    ``momentum`` and, for an AdamW variable, its ``velocity`` (Keras creates them variable
    by variable; there is no velocity for a Muon variable).

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        adam_beta_1, adam_beta_2: Adam's moment decay rates (AdamW variables).
        adam_weight_decay: decoupled weight decay of the AdamW variables (None: none).
        epsilon: Adam's epsilon ("epsilon hat", added to ``sqrt(v)``).
        weight_decay: decoupled weight decay of the Muon variables (None: none).
        exclude_layers: regular expressions; a variable whose path matches one takes AdamW.
        exclude_embeddings: variables whose path contains "embedding" take AdamW.
        muon_a, muon_b, muon_c: the Newton-Schulz coefficients (keep the defaults).
        adam_lr_ratio: the AdamW variables' learning rate is ``lr * adam_lr_ratio``.
        momentum: Muon's momentum ``mu``.
        ns_steps: the number of Newton-Schulz iterations.
        nesterov: use Nesterov momentum for the Muon step.
        rms_rate: scale Muon's update by ``sqrt(max(n_0, n_1)) * rms_rate`` so that its
            RMS matches Adam's (Liu et al., 2025), letting both share a learning rate and
            weight decay; None disables it.
        **kwargs: the base ``Optimizer`` arguments (clipnorm, use_ema, ...).
    """

    # its slots are ragged (no velocity for a Muon variable) and already in Keras' order:
    # the .keras optimizer map keeps them as they are
    variables_in_keras_order = True

    def __init__(
        self,
        learning_rate: Any = 0.001,
        adam_beta_1: float = 0.9,
        adam_beta_2: float = 0.999,
        adam_weight_decay: float | None = 0.004,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.004,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        exclude_layers: Sequence[str] | None = None,
        exclude_embeddings: bool = True,
        muon_a: float = 3.4445,
        muon_b: float = -4.7750,
        muon_c: float = 2.0315,
        adam_lr_ratio: float = 1,
        momentum: float = 0.95,
        ns_steps: int = 5,
        nesterov: bool = True,
        rms_rate: float | None = 0.2,
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
        # Keras checks none of these; dendrite refuses a wrong type now rather than with a
        # TypeError in the middle of the first update.
        self.adam_beta_1 = _real("adam_beta_1", adam_beta_1)
        self.adam_beta_2 = _real("adam_beta_2", adam_beta_2)
        self.epsilon = _real("epsilon", epsilon)
        self.muon_a = _real("muon_a", muon_a)
        self.muon_b = _real("muon_b", muon_b)
        self.muon_c = _real("muon_c", muon_c)
        self.adam_lr_ratio = _real("adam_lr_ratio", adam_lr_ratio)
        self.momentum = _real("momentum", momentum)
        if (
            isinstance(ns_steps, bool)
            or not isinstance(ns_steps, (int, np.integer))
            or ns_steps < 0
        ):
            raise ValueError(
                f"Argument `ns_steps` must be an integer >= 0. Received: ns_steps={ns_steps!r}"
            )
        self.ns_steps = int(ns_steps)
        self.nesterov = bool(nesterov)
        self.exclude_embeddings = bool(exclude_embeddings)
        if isinstance(exclude_layers, str) or not all(
            isinstance(k, str) for k in exclude_layers or []
        ):
            raise TypeError(
                "Argument `exclude_layers` must be a list of strings (regular expressions). "
                f"Received: exclude_layers={exclude_layers!r}"
            )
        self.exclude_layers = list(exclude_layers or [])
        self.adam_weight_decay = _real_or_none("adam_weight_decay", adam_weight_decay)
        self.rms_rate = _real_or_none("rms_rate", rms_rate)

    # --- which rule -------------------------------------------------------------------------
    def _should_use_adamw(self, variable: Variable) -> bool:
        """Whether ``variable`` takes the AdamW step (see the class docstring)."""
        if variable.data.ndim != 2:
            return True
        path = variable_label(variable)
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(keyword, path) for keyword in self.exclude_layers)

    def build(self, variables: Sequence[Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums: list[Variable] = []
        self.adam_velocities: list[Variable | None] = []
        for variable in variables:  # per variable, as Keras creates them
            self.momentums.append(self.add_variable_from_reference(variable, "momentum"))
            self.adam_velocities.append(
                self.add_variable_from_reference(variable, "velocity")
                if self._should_use_adamw(variable)
                else None
            )

    # --- the update -------------------------------------------------------------------------
    def _apply_weight_decay(self, variables: list[Variable], learning_rate: float) -> None:
        """Nothing here: Muon decays in ``_update_variables``, where it also decays when
        ``weight_decay`` is None (the base class calls this only when it is set) but
        ``adam_weight_decay`` is not."""

    def _update_variables(
        self, grads: list[np.ndarray], variables: list[Variable], learning_rate: float
    ) -> None:
        for variable in variables:
            if not self._use_weight_decay(variable):
                continue
            index = self._get_variable_index(variable)
            decay = (
                self.adam_weight_decay
                if self.adam_velocities[index] is not None
                else self.weight_decay
            )
            if decay is None:
                continue
            w, buf = variable.data, self._scratch[index]
            real = w.dtype.type
            np.multiply(w, real(decay), out=buf)
            buf *= real(learning_rate)
            w -= buf
        super()._update_variables(grads, variables, learning_rate)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate: float) -> None:
        index = self._get_variable_index(variable)
        m = self.momentums[index].data
        v = self.adam_velocities[index]
        if v is not None:
            self._adamw_update_step(
                gradient, variable, learning_rate * self.adam_lr_ratio, m, v.data
            )
        else:
            self._muon_update_step(gradient, variable, learning_rate, m)

    def _muon_update_step(
        self, gradient: np.ndarray, variable: Variable, learning_rate: float, m: np.ndarray
    ) -> None:
        w = variable.data
        real = w.dtype.type
        buf = self._scratch[self._get_variable_index(variable)]
        np.multiply(m, real(self.momentum - 1), out=buf)
        buf += gradient
        m += buf
        if self.nesterov:
            np.multiply(m, real(self.momentum), out=buf)
            buf += gradient
            direction = buf
        else:
            direction = m
        update = self.zeropower_via_newtonschulz5(direction, self.ns_steps)
        update *= real(learning_rate)
        w -= self.lr_adjust(update)

    def _adamw_update_step(
        self,
        gradient: np.ndarray,
        variable: Variable,
        learning_rate: float,
        m: np.ndarray,
        v: np.ndarray,
    ) -> None:
        w = variable.data
        real = w.dtype.type  # the scalars in the variable's dtype, as Keras casts them
        t = real(self._update_number())
        beta_1, beta_2 = real(self.adam_beta_1), real(self.adam_beta_2)
        alpha = real(learning_rate) * np.sqrt(real(1) - beta_2**t) / (real(1) - beta_1**t)
        buf = self._scratch[self._get_variable_index(variable)]
        np.subtract(gradient, m, out=buf)
        buf *= real(1) - beta_1
        m += buf
        np.square(gradient, out=buf)
        buf -= v
        buf *= real(1) - beta_2
        v += buf
        np.sqrt(v, out=buf)
        buf += real(self.epsilon)
        w -= (m * alpha) / buf

    # --- Keras' public helpers ----------------------------------------------------------------
    def transpose_last_axis(self, X: Any) -> np.ndarray:
        """``X`` with its last two axes swapped."""
        return _swap_last_axes(np.asarray(X))

    def lr_adjust(self, x: Any) -> np.ndarray:
        """``x * sqrt(max(n_0, n_1)) * rms_rate`` for an update ``x`` of shape
        ``(n_0, n_1, ...)`` (Moonlight's scaling); ``x`` itself when ``rms_rate`` is None."""
        x = np.asarray(x)
        if self.rms_rate is None:
            return x
        real = x.dtype.type
        return x * np.sqrt(real(max(x.shape[0], x.shape[1]))) * real(self.rms_rate)

    def zeropower_via_newtonschulz5(self, x: Any, steps: int) -> np.ndarray:
        """The Newton-Schulz approximation of ``U V^T`` for ``x = U S V^T`` over the last
        two axes (a new array; see the class docstring)."""
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(
                "Expected gradient or momentum to have at least 2 dimensions. "
                f"Received: shape={x.shape}"
            )
        real = x.dtype.type if np.issubdtype(x.dtype, np.floating) else np.float64
        a, b, c = real(self.muon_a), real(self.muon_b), real(self.muon_c)
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = _swap_last_axes(x)
        norm = np.sqrt(np.sum(np.square(x), axis=(-2, -1), keepdims=True))
        x = x / (norm + real(1e-7))
        for _ in range(steps):
            gram = x @ _swap_last_axes(x)
            poly = b * gram + (c * gram) @ gram
            x = a * x + poly @ x
        if tall:
            x = _swap_last_axes(x)
        return np.ascontiguousarray(x)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "adam_beta_1": self.adam_beta_1,
                "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon,
                "exclude_layers": list(self.exclude_layers),
                "muon_a": self.muon_a,
                "muon_b": self.muon_b,
                "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio,
                "momentum": self.momentum,
                "ns_steps": self.ns_steps,
                "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings,
                "adam_weight_decay": self.adam_weight_decay,
                "rms_rate": self.rms_rate,
            }
        )
        return config
