"""Python operators and methods of ``Tensor``, installed from the functions in ``ops``.

Arithmetic operators and methods record gradients like the functions they call.
Comparisons and ``& | ^ ~`` give plain boolean tensors that no gradient flows through.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor, attach
from dendrite.ops import (
    activations,
    arithmetic,
    comparison,
    creation,
    indexing,
    linalg,
    movement,
    reduce,
    softmax,
    unary,
)


def _swap(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _shape_args(args: tuple) -> Any:
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` both work, as in NumPy."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    return movement.reshape(self, _shape_args(shape))


def _transpose_method(self: Tensor, *axes: Any) -> Tensor:
    return movement.transpose(self, _shape_args(axes) or None)


def _astype(self: Tensor, dtype: Any) -> Tensor:
    return creation.cast(self, dtype)


def _clip_method(self: Tensor, x_min: Any = None, x_max: Any = None) -> Tensor:
    return comparison.clip(self, x_min, x_max)


def install() -> None:
    """Attach the operators and methods; ``dendrite.ops`` calls this once on import."""
    for name, fn in {
        "__add__": arithmetic.add,
        "__radd__": _swap(arithmetic.add),
        "__sub__": arithmetic.subtract,
        "__rsub__": _swap(arithmetic.subtract),
        "__mul__": arithmetic.multiply,
        "__rmul__": _swap(arithmetic.multiply),
        "__truediv__": arithmetic.divide,
        "__rtruediv__": _swap(arithmetic.divide),
        "__floordiv__": arithmetic.floor_divide,
        "__rfloordiv__": _swap(arithmetic.floor_divide),
        "__mod__": arithmetic.mod,
        "__rmod__": _swap(arithmetic.mod),
        "__pow__": arithmetic.power,
        "__rpow__": _swap(arithmetic.power),
        "__matmul__": linalg.matmul,
        "__rmatmul__": _swap(linalg.matmul),
        "__neg__": unary.negative,
        "__pos__": lambda self: self,
        "__abs__": unary.abs,
        "__getitem__": indexing.getitem,
        "__lt__": comparison.less,
        "__le__": comparison.less_equal,
        "__gt__": comparison.greater,
        "__ge__": comparison.greater_equal,
        "__eq__": comparison.equal,
        "__ne__": comparison.not_equal,
        "__and__": comparison.logical_and,
        "__rand__": _swap(comparison.logical_and),
        "__or__": comparison.logical_or,
        "__ror__": _swap(comparison.logical_or),
        "__xor__": comparison.logical_xor,
        "__rxor__": _swap(comparison.logical_xor),
        "__invert__": comparison.logical_not,
        # shape and dtype
        "reshape": _reshape_method,
        "transpose": _transpose_method,
        "T": property(lambda self: movement.transpose(self)),
        "squeeze": movement.squeeze,
        "expand_dims": movement.expand_dims,
        "flatten": movement.ravel,
        "ravel": movement.ravel,
        "broadcast_to": movement.broadcast_to,
        "astype": _astype,
        # reductions
        "sum": reduce.sum,
        "mean": reduce.mean,
        "max": reduce.max,
        "min": reduce.min,
        "var": reduce.var,
        "std": reduce.std,
        "argmax": reduce.argmax,
        "argmin": reduce.argmin,
        "logsumexp": softmax.logsumexp,
        # element-wise
        "matmul": linalg.matmul,
        "abs": unary.abs,
        "exp": unary.exp,
        "log": unary.log,
        "log1p": unary.log1p,
        "sqrt": unary.sqrt,
        "square": unary.square,
        "tanh": unary.tanh,
        "sign": unary.sign,
        "clip": _clip_method,
        "relu": activations.relu,
        "sigmoid": activations.sigmoid,
        "softmax": softmax.softmax,
        "log_softmax": softmax.log_softmax,
        "take": indexing.take,
    }.items():
        attach(name, fn)
    # __eq__ is overridden, so keep tensors hashable by identity (dict keys, sets).
    attach("__hash__", object.__hash__)
