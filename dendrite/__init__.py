"""dendrite: a deep-learning framework from first principles on NumPy, with the Keras API.

``import dendrite as tf`` runs Keras programs: ``dendrite.keras`` is this namespace itself,
so ``tf.keras.layers.Dense`` is ``dendrite.layers.Dense``.
"""

import sys as _sys

from dendrite import (
    backend,
    datasets,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    saving,
    utils,
)
from dendrite._settings import floatx, set_floatx
from dendrite.core import GradientTape, Tensor, Variable, enable_grad, no_grad
from dendrite.layers import Input, activations, constraints, initializers, regularizers
from dendrite.models import Model, Sequential
from dendrite.ops import convert_to_numpy, convert_to_tensor
from dendrite.training import callbacks

__version__ = "0.1.0"

keras = _sys.modules[__name__]
for _name in (
    "layers",
    "models",
    "losses",
    "metrics",
    "optimizers",
    "callbacks",
    "datasets",
    "utils",
    "ops",
    "saving",
    "activations",
    "backend",
    "constraints",
    "initializers",
    "regularizers",
):
    _sys.modules.setdefault(f"{__name__}.keras.{_name}", getattr(keras, _name))
_sys.modules.setdefault(f"{__name__}.keras", keras)

__all__ = [
    "GradientTape",
    "Input",
    "Model",
    "Sequential",
    "Tensor",
    "Variable",
    "activations",
    "backend",
    "callbacks",
    "constraints",
    "convert_to_numpy",
    "convert_to_tensor",
    "datasets",
    "enable_grad",
    "floatx",
    "initializers",
    "keras",
    "layers",
    "losses",
    "metrics",
    "models",
    "no_grad",
    "ops",
    "optimizers",
    "regularizers",
    "saving",
    "set_floatx",
    "utils",
]
