"""dendrite: a deep-learning framework from first principles on NumPy, with the Keras API.

``import dendrite as tf`` runs Keras programs: ``dendrite.keras`` is this namespace itself.
"""

from dendrite import ops
from dendrite._backend import floatx, set_floatx
from dendrite.core import GradientTape, Tensor, Variable, enable_grad, no_grad

__version__ = "0.1.0"

__all__ = [
    "GradientTape",
    "Tensor",
    "Variable",
    "enable_grad",
    "floatx",
    "no_grad",
    "ops",
    "set_floatx",
]
