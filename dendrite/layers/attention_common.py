"""What the attention layers share: their boolean masks (the caller's masks as arrays, and
the causal mask) and dropout on the attention probabilities.

The causal mask lets query step i attend to key steps j <= i: ``tril(ones(T, S))``. Dropout
at rate p keeps each probability with chance 1 - p and scales it by ``1 / (1 - p)``
(training only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.layers.calling import mask_array


def _bool_mask(mask: Any) -> np.ndarray | None:
    return None if mask is None else mask_array(mask)


def _causal(t: int, s: int) -> np.ndarray:
    """(1, T, S): query i may attend to keys j <= i."""
    return np.tril(np.ones((t, s), dtype=bool))[None]


def _dropout(x: Tensor, rate: float, rng: np.random.Generator | None, training: Any) -> Tensor:
    if not training or rate <= 0:
        return x
    rng = rng if rng is not None else _settings.rng()
    keep = rng.random(x.shape) >= rate
    return x * (keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - rate), x.dtype))
