"""Python operators and methods of ``Tensor``, installed from the functions in ``ops``.

Arithmetic operators and methods record gradients like the functions they call.
Comparisons and ``& | ^ ~`` give plain boolean tensors that no gradient flows through.
The reduction methods also take NumPy's method arguments, so that ``np.mean(t)``,
``np.std(t, ddof=1)`` or ``t.sum(dtype="float64")`` work as on an array: ``dtype`` casts
before reducing; ``ddof`` scales the population variance by ``n / (n - ddof)`` (the
standard deviation by its square root), ``n`` being the count reduced over; ``out=`` and
``where=`` are refused, since a tensor is never written in place.
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


def _reduction_method(fn: Any, name: str, spread: int = 0) -> Any:
    """``fn`` as a method with NumPy's arguments; ``spread`` is 1 for var, 2 for std."""

    def method(
        self: Tensor,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        keepdims: bool = False,
        ddof: int = 0,
        where: Any = None,
        **kwargs: Any,
    ) -> Tensor:
        if out is not None or where is not None:
            given = "out" if out is not None else "where"
            raise TypeError(
                f"Tensor.{name}() does not take {given}=: dendrite tensors are not written "
                f"in place, and reduce every element; use the tensor it returns."
            )
        x = self if dtype is None else creation.cast(self, dtype)
        result = fn(x, axis=axis, keepdims=keepdims, **kwargs)
        if ddof and spread:
            axes = (
                range(x.ndim)
                if axis is None
                else axis
                if isinstance(axis, (tuple, list))
                else (axis,)
            )
            count = 1
            for a in axes:
                count *= x.shape[a]
            factor = count / (count - ddof) if count > ddof else float("inf")
            result = result * (factor if spread == 1 else factor**0.5)
        return result

    method.__name__ = name
    return method


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
        "sum": _reduction_method(reduce.sum, "sum", 0),
        "mean": _reduction_method(reduce.mean, "mean", 0),
        "max": _reduction_method(reduce.max, "max", 0),
        "min": _reduction_method(reduce.min, "min", 0),
        "var": _reduction_method(reduce.var, "var", 1),
        "std": _reduction_method(reduce.std, "std", 2),
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
