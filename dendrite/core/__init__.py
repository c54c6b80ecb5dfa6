"""The autodiff engine: Tensor, Variable, Function, the backward sweep, no_grad and the tape."""

from dendrite.core.function import (
    OP_REGISTRY,
    Function,
    enable_grad,
    is_grad_enabled,
    no_grad,
    register,
)
from dendrite.core.tape import GradientTape
from dendrite.core.tensor import SymbolicValue, Tensor, as_array, attach
from dendrite.core.variable import Variable

__all__ = [
    "OP_REGISTRY",
    "Function",
    "SymbolicValue",
    "GradientTape",
    "Tensor",
    "Variable",
    "as_array",
    "attach",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "register",
]
