"""An optimizer's state as arrays: ``get_weights``/``set_weights`` (Keras' order of
``optimizer.variables``) and ``save_own_variables``/``load_own_variables`` (the store that
model files and checkpoints write)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


class SlotsIO:
    """Mixed into ``Optimizer``: reading and writing its variables (see above)."""

    # --- saving -----------------------------------------------------------------------------
    # Every method reads ``self.variables``, so that a wrapper (LossScaleOptimizer,
    # MultiOptimizer) whose ``variables`` also lists its inner optimizers' is covered.
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Assign values to ``variables`` (same order); the optimizer must be built."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Call `optimizer.build(trainable_variables)` first."
            )
        weights = list(weights)
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(
                f"Optimizer {self.name!r} has {len(variables)} variables; received "
                f"{len(weights)} weights."
            )
        for variable, weight in zip(variables, weights):
            if np.shape(weight) != variable.data.shape:
                raise ValueError(
                    f"Optimizer {self.name!r}: variable {variable.name!r} has shape "
                    f"{variable.data.shape}; received a weight of shape {np.shape(weight)}."
                )
        for variable, weight in zip(variables, weights):
            variable.assign(weight)

    def get_weights(self) -> list[np.ndarray]:
        return [v.data.copy() for v in self.variables]

    def save_own_variables(self, store: dict[str, Any]) -> None:
        for i, variable in enumerate(self.variables):
            store[str(i)] = variable.data

    def load_own_variables(self, store: dict[str, Any]) -> None:
        variables = self.variables
        if len(store) != len(variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', because it has "
                f"{len(variables)} variables whereas the saved optimizer has "
                f"{len(store)} variables.",
                stacklevel=2,
            )
            return
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])
