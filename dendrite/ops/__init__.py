"""Differentiable operations, with Keras 3 ``keras.ops`` names where Keras has one."""

from dendrite.ops import tensor_methods as _tensor_methods
from dendrite.ops.arithmetic import add, divide, multiply, power, subtract, true_divide
from dendrite.ops.linalg import matmul
from dendrite.ops.movement import getitem, reshape, transpose
from dendrite.ops.reduce import mean, sum
from dendrite.ops.unary import exp, log, negative, relu

_tensor_methods.install()

__all__ = [
    "add",
    "divide",
    "exp",
    "getitem",
    "log",
    "matmul",
    "mean",
    "multiply",
    "negative",
    "power",
    "relu",
    "reshape",
    "subtract",
    "sum",
    "transpose",
    "true_divide",
]
