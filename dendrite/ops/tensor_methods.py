"""Python operators and methods of ``Tensor``, installed from the primitives in ``ops``.

Comparisons give plain boolean tensors that no gradient flows through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor, attach
from dendrite.core.tensor import as_array
from dendrite.ops import arithmetic, linalg, movement, reduce, unary


def _swap(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _comparison(ufunc: Any) -> Any:
    def compare(self: Tensor, other: Any) -> Tensor:
        return Tensor._make(ufunc(self.data, as_array(other)))

    return compare


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return movement.reshape(self, shape)


def _transpose_method(self: Tensor, *axes: Any) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return movement.transpose(self, axes or None)


def install() -> None:
    """Attach the operators; ``dendrite.ops`` calls this once on import."""
    for name, fn in {
        "__add__": arithmetic.add,
        "__radd__": _swap(arithmetic.add),
        "__sub__": arithmetic.subtract,
        "__rsub__": _swap(arithmetic.subtract),
        "__mul__": arithmetic.multiply,
        "__rmul__": _swap(arithmetic.multiply),
        "__truediv__": arithmetic.divide,
        "__rtruediv__": _swap(arithmetic.divide),
        "__pow__": arithmetic.power,
        "__rpow__": _swap(arithmetic.power),
        "__matmul__": linalg.matmul,
        "__rmatmul__": _swap(linalg.matmul),
        "__neg__": unary.negative,
        "__pos__": lambda self: self,
        "__getitem__": movement.getitem,
        "__lt__": _comparison(np.less),
        "__le__": _comparison(np.less_equal),
        "__gt__": _comparison(np.greater),
        "__ge__": _comparison(np.greater_equal),
        "__eq__": _comparison(np.equal),
        "__ne__": _comparison(np.not_equal),
        "reshape": _reshape_method,
        "transpose": _transpose_method,
        "T": property(lambda self: movement.transpose(self)),
        "sum": reduce.sum,
        "mean": reduce.mean,
        "matmul": linalg.matmul,
        "exp": unary.exp,
        "log": unary.log,
        "relu": unary.relu,
    }.items():
        attach(name, fn)
    # __eq__ is overridden, so keep tensors hashable by identity (dict keys, sets).
    attach("__hash__", object.__hash__)
