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
    dtype_policies,
    explain,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    ops,
    optimizers,
    random,
    saving,
    tree,
    utils,
)
from dendrite._settings import floatx, set_floatx
from dendrite.core import GradientTape, Tensor, Variable, enable_grad, no_grad
from dendrite.dtype_policies import DTypePolicy, FloatDTypePolicy
from dendrite.layers import (
    Input,
    InputSpec,
    Layer,
    activations,
    constraints,
    initializers,
    regularizers,
)
from dendrite.layers.initializers import Initializer
from dendrite.layers.regularizers import Regularizer
from dendrite.layers.remat import RematScope, remat
from dendrite.layers.symbolic import KerasTensor
from dendrite.losses import Loss
from dendrite.metrics import Metric
from dendrite.models import Model, Sequential
from dendrite.models.function import Function, Operation
from dendrite.ops import convert_to_numpy, convert_to_tensor
from dendrite.optimizers import Optimizer
from dendrite.training import callbacks
from dendrite.utils import preprocessing
from dendrite.utils.device import device
from dendrite.utils.name_scope import name_scope

__version__ = "0.1.0"
# The Keras release whose API dendrite follows (names, arguments, defaults, messages).
__keras_version__ = "3.15"


def version() -> str:
    """dendrite's version (``keras.version()``); ``__keras_version__`` names the Keras
    release whose API it mirrors."""
    return __version__


keras = _sys.modules[__name__]
# keras.preprocessing lives in utils (it only re-exports keras.utils' helpers).
for _sub in ("", ".image", ".sequence"):
    _sys.modules.setdefault(
        f"{__name__}.preprocessing{_sub}", _sys.modules[f"{__name__}.utils.preprocessing{_sub}"]
    )
    _sys.modules.setdefault(
        f"{__name__}.keras.preprocessing{_sub}",
        _sys.modules[f"{__name__}.utils.preprocessing{_sub}"],
    )
for _name in (
    "applications",
    "layers",
    "models",
    "losses",
    "metrics",
    "mixed_precision",
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
    "dtype_policies",
    "tree",
):
    _sys.modules.setdefault(f"{__name__}.keras.{_name}", getattr(keras, _name))
_sys.modules.setdefault(f"{__name__}.keras", keras)

__all__ = [
    "DTypePolicy",
    "FloatDTypePolicy",
    "Function",
    "GradientTape",
    "Initializer",
    "Input",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Loss",
    "Metric",
    "Model",
    "Operation",
    "Optimizer",
    "Regularizer",
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
    "dtype_policies",
    "enable_grad",
    "explain",
    "floatx",
    "initializers",
    "keras",
    "layers",
    "losses",
    "metrics",
    "mixed_precision",
    "models",
    "device",
    "name_scope",
    "no_grad",
    "ops",
    "optimizers",
    "preprocessing",
    "random",
    "remat",
    "RematScope",
    "regularizers",
    "saving",
    "set_floatx",
    "tree",
    "utils",
    "version",
]
