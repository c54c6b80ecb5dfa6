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
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Assign values to ``variables`` (same order); the optimizer must be built."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Call `optimizer.build(trainable_variables)` first."
            )
        if len(weights) != len(self._variables):
            raise ValueError(
                f"Optimizer {self.name!r} has {len(self._variables)} variables; received "
                f"{len(weights)} weights."
            )
        for variable, weight in zip(self._variables, weights):
            variable.assign(weight)

    def get_weights(self) -> list[np.ndarray]:
        return [v.data.copy() for v in self._variables]

    def save_own_variables(self, store: dict[str, Any]) -> None:
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.data

    def load_own_variables(self, store: dict[str, Any]) -> None:
        if len(store) != len(self._variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', because it has "
                f"{len(self._variables)} variables whereas the saved optimizer has "
                f"{len(store)} variables.",
                stacklevel=2,
            )
            return
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])
