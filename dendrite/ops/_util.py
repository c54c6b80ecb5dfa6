"""Helpers shared by the primitives: undoing broadcasting, normalising axes, shape errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Tensor
from dendrite.core.tensor import as_array


def raw(value: Any) -> np.ndarray:
    """The ndarray behind ``value`` (a Tensor's data; anything else under dendrite's dtype
    policy), for the non-differentiable ops that return plain tensors."""
    return value.data if isinstance(value, Tensor) else as_array(value)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the VJP of NumPy broadcasting.

    If ``x`` of shape ``shape`` was broadcast to ``grad.shape``, every copy of an element
    received a gradient, and dL/dx is their sum: over the leading axes that broadcasting
    added, and over the axes where ``shape`` has size 1.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = _add_reduce(grad, axis=0 if extra == 1 else tuple(range(extra)))
        if grad.shape == shape:  # the usual bias case: only leading axes were added
            return grad
    axes = tuple([i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1])
    if axes:
        grad = _sum_repeats(grad, axes)
    return grad.reshape(shape)


def _sum_repeats(grad: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed over ``axes``, keeping them as size 1. A few repeats on axes with a
    block of at least 8 values inside them (a nearest upsampling's 2 x 2) as whole-slab
    additions, in the order NumPy's reduction takes them (the same bits): NumPy reduces
    such axes one short strided loop at a time, about twice as slow."""
    sizes = [grad.shape[a] for a in axes]
    # Only repeats with a contiguous block of at least 8 values inside them: NumPy sums an
    # innermost reduced axis with 8 interleaved partial sums, in another order.
    inner = math.prod(grad.shape[max(axes) + 1 :])
    if not 0 < math.prod(sizes) <= 16 or inner < 8:
        return _add_reduce(grad, axis=axes, keepdims=True)
    total = None
    for position in np.ndindex(*sizes):
        index = [slice(None)] * grad.ndim
        for axis, k in zip(axes, position):
            index[axis] = slice(k, k + 1)
        term = grad[tuple(index)]
        total = term.copy() if total is None else np.add(total, term, out=total)
    return total


# The ufunc's own reduce skips the Python wrappers of np.sum / ndarray.sum (hot path).
_add_reduce = np.add.reduce


SUM_ROWS_WIDTH = 1024  # elements of one folded row: long enough for NumPy's inner loop


def sum_rows(g2: np.ndarray) -> np.ndarray:
    """The column sums of a 2-D ``g2`` (the gradient of a bias added to every row).

    A few rows (a dense layer's batch) directly. Many rows (a convolution's (N H W, C)
    gradient) are read as (N H W / r, r C) so that NumPy's reduction over the outer axis
    runs long inner loops (over one row of C it runs one short loop per row, about five
    times slower), then the r partial sums are added. Not as BLAS' matrix-vector product,
    which is as fast but sums in an order that depends on BLAS' threads (see
    ``ops._products``)."""
    rows, width = g2.shape
    if rows < 1024 or width == 0:
        return _add_reduce(g2, axis=0)
    fold = max(1, SUM_ROWS_WIDTH // width)
    whole = rows - rows % fold
    partial = _add_reduce(g2[:whole].reshape(-1, fold * width), axis=0)
    total = _add_reduce(partial.reshape(fold, width), axis=0)
    if whole < rows:
        total += _add_reduce(g2[whole:], axis=0)
    return total


def bias_relu_(out: np.ndarray, bias: np.ndarray | None, relu: bool) -> None:
    """The products' epilogue in place: ``out += bias`` (over the last axis), then
    ``out = max(out, 0)`` when ``relu``. csrc/relu.c makes one pass with NumPy's bits;
    without it (or for arrays it cannot take) NumPy makes two."""
    if bias is None and not relu:
        return
    given = () if bias is None else (bias,)
    if (
        out.size
        and (bias is None or bias.shape == out.shape[-1:])
        and _native.usable(*given, written=(out,))
    ):
        _native.kernels.bias_relu(out, bias, out.size, out.shape[-1], relu)
        return
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, 0, out=out)


def relu_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient through a ReLU from its output ``y``: ``g * [y > 0]`` (a new array),
    in one pass by csrc/relu.c when it can, with NumPy's bits."""
    if g.shape == y.shape and g.size and g.dtype == y.dtype and _native.usable(y):
        out = np.empty_like(y)
        if not g.flags.c_contiguous:  # a cropped gradient: one copy, the product in place
            np.copyto(out, g)
            g = out
        _native.kernels.relu_grad(g, y, out, g.size)
        return out
    return g * (y > 0)


def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` (None, int or sequence; negatives allowed) as a sorted tuple of positives."""
    if axis is None:
        return None
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}.")
        result.append(int(a) % max(ndim, 1))
    return tuple(sorted(result))


def broadcast_error(op: str, *arrays: np.ndarray) -> ValueError:
    """The error for operands whose shapes do not broadcast: names the op and each shape."""
    shapes = " and ".join(str(a.shape) for a in arrays)
    return ValueError(
        f"{op}: incompatible shapes {shapes}; they cannot be broadcast together (each "
        f"trailing axis must match or be 1)."
    )


def reduced_grad(grad: np.ndarray, shape: tuple[int, ...], axes: Any, keepdims: bool) -> Any:
    """Put back the reduced axes of ``grad`` (size 1) so it broadcasts against ``shape``."""
    if axes is None:
        return grad.reshape((1,) * len(shape))
    if keepdims:
        return grad
    return grad.reshape(tuple([1 if i in axes else n for i, n in enumerate(shape)]))


def expand_to(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` broadcast to ``shape``, as a fresh writable array.

    (``np.broadcast_to`` gives a read-only view but costs several microseconds of Python
    per call; the copy is cheaper at the sizes where that matters, and leaves need a
    writable gradient anyway.)
    """
    out = np.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out
