"""dendrite: a deep-learning framework from first principles on NumPy, with the Keras API.

``import dendrite as tf`` runs Keras programs: ``dendrite.keras`` is this namespace itself,
so ``tf.keras.layers.Dense`` is ``dendrite.layers.Dense``.
"""

import sys as _sys

from dendrite import (
    applications,
    backend,
    config,
    datasets,
    distribution,
    explain,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    random,
    saving,
    utils,
)
from dendrite._settings import floatx, set_floatx
from dendrite.core import GradientTape, Tensor, Variable, enable_grad, no_grad
from dendrite.layers import Input, Layer, activations, constraints, initializers, regularizers
from dendrite.layers.symbolic import KerasTensor
from dendrite.models import Model, Sequential
from dendrite.ops import convert_to_numpy, convert_to_tensor
from dendrite.training import callbacks

__version__ = "0.1.0"
# The Keras release whose API dendrite follows (names, arguments, defaults, messages).
__keras_version__ = "3.15"


def version() -> str:
    """dendrite's version (``keras.version()``); ``__keras_version__`` names the Keras
    release whose API it mirrors."""
    return __version__


keras = _sys.modules[__name__]
for _name in (
    "applications",
    "layers",
    "models",
    "losses",
    "metrics",
    "optimizers",
    "callbacks",
    "config",
    "datasets",
    "distribution",
    "random",
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
    "KerasTensor",
    "Layer",
    "Model",
    "Sequential",
    "Tensor",
    "Variable",
    "activations",
    "applications",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "convert_to_numpy",
    "convert_to_tensor",
    "datasets",
    "distribution",
    "enable_grad",
    "explain",
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
    "random",
    "regularizers",
    "saving",
    "set_floatx",
    "utils",
    "version",
]
