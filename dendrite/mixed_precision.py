"""``keras.mixed_precision``: Keras 3's names for the global dtype policy and the
loss-scaling optimizer.

dendrite computes in one float dtype (``float16``, ``float32`` or ``float64``; see
``dendrite.config.set_dtype_policy``): a mixed policy (``mixed_float16``,
``mixed_bfloat16``) is refused with an error saying so, rather than silently run in
float32. ``LossScaleOptimizer`` is the optimizer of ``dendrite.optimizers``: with a
float16 policy it keeps the scaled loss of the small gradients representable.
"""

from __future__ import annotations

from dendrite.config import dtype_policy, set_dtype_policy
from dendrite.dtype_policies import DTypePolicy
from dendrite.optimizers import LossScaleOptimizer

# Keras 2's names, which Keras 3 keeps in this namespace.
Policy = DTypePolicy
global_policy = dtype_policy
set_global_policy = set_dtype_policy

__all__ = [
    "DTypePolicy",
    "LossScaleOptimizer",
    "Policy",
    "dtype_policy",
    "global_policy",
    "set_dtype_policy",
    "set_global_policy",
]
