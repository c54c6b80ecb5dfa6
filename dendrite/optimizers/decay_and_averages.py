"""What an optimizer does to the weights besides its update rule, as Keras 3: decoupled
weight decay (``w <- w - w * weight_decay * lr`` before the update, skipping the variables
``exclude_from_weight_decay`` names) and, with ``use_ema``, exponential moving averages of
the weights (``a <- m a + (1 - m) w``; ``finalize_variable_values`` writes them into the
weights at the end of ``fit``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from dendrite.core import Variable


class DecayAndAverages:
    """Mixed into ``Optimizer``: weight decay and the moving averages (see above)."""

    # --- weight decay -----------------------------------------------------------------------
    def exclude_from_weight_decay(
        self, var_list: Sequence[Variable] | None = None, var_names: Sequence[str] | None = None
    ) -> None:
        """Exempt variables from weight decay: those in ``var_list``, and those whose name
        contains any of the strings in ``var_names`` (e.g. ``["bias"]``)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        names = sorted(set(var_names or ()))
        self._exclude_pattern = re.compile("|".join(map(re.escape, names))) if names else None
        self._decay_cache = {}

    def _use_weight_decay(self, variable: Variable) -> bool:
        key = id(variable)
        use = self._decay_cache.get(key)
        if use is None:
            use = key not in self._exclude_ids and not (
                self._exclude_pattern is not None
                and self._exclude_pattern.search(str(variable.name or ""))
            )
            self._decay_cache[key] = use
        return use

    def _apply_weight_decay(self, variables: list[Variable], learning_rate: float) -> None:
        # w - w * wd * lr, written as one in-place multiply
        factor = 1.0 - self.weight_decay * learning_rate
        for variable in variables:
            if self._use_weight_decay(variable):
                variable.data *= factor

    # --- moving averages (use_ema) ----------------------------------------------------------
    def _update_moving_averages(self) -> None:
        step = int(self._iterations.data)
        momentum = self.ema_momentum if step != 0 else 0.0
        for variable, average, buffer in zip(
            self._trainable_variables, self._averages, self._scratch
        ):
            average.data *= momentum
            np.multiply(variable.data, 1.0 - momentum, out=buffer)
            average.data += buffer
        frequency = self.ema_overwrite_frequency
        if frequency and (step + 1) % frequency == 0:
            self.finalize_variable_values(self._trainable_variables)

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """With ``use_ema``, overwrite the variables with their moving averages (``fit``
        does this after the last epoch); otherwise do nothing."""
        if not self.use_ema:
            return
        if len(var_list) != len(self._averages):
            raise ValueError(
                f"Expected {len(self._averages)} variables to overwrite with their averages; "
                f"received {len(var_list)}."
            )
        for variable, average in zip(var_list, self._averages):
            variable.data[...] = average.data
