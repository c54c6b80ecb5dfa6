"""Control flow and tensor queries with Keras 3's names.

dendrite runs eagerly, so control flow is Python's: ``cond`` calls one branch,
``fori_loop`` / ``while_loop`` loop, ``scan`` and ``map`` iterate over the leading axis and
stack the results. Gradients flow through whatever the branches and bodies compute.
``stop_gradient(x)`` is the identity with a zero gradient: y = x, dL/dx = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.joining import stack


def stop_gradient(x: Any) -> Tensor:
    """``x``'s value, cut from the graph: no gradient flows back through it."""
    return Tensor._make(raw(x))


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a dendrite Tensor (Variables included)."""
    return isinstance(x, Tensor)


def size(x: Any) -> int:
    """The number of elements of ``x``."""
    return int(np.size(raw(x)))


def ndim(x: Any) -> int:
    """The number of axes of ``x``."""
    return int(np.ndim(raw(x)))


def cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """``true_fn()`` if ``pred`` else ``false_fn()`` (``pred`` a bool or a 0-d tensor)."""
    value = raw(pred)
    if np.size(value) != 1:
        raise ValueError(f"cond: pred must be a scalar; received shape {np.shape(value)}.")
    return true_fn() if bool(value) else false_fn()


def fori_loop(lower: int, upper: int, body_fun: Callable[[int, Any], Any], init_val: Any) -> Any:
    """``val = body_fun(i, val)`` for i in [lower, upper); returns the final ``val``."""
    value = init_val
    for i in range(int(lower), int(upper)):
        value = body_fun(i, value)
    return value


def while_loop(
    cond: Callable[..., Any],  # noqa: A002 (Keras' name)
    body: Callable[..., Any],
    loop_vars: Any,
    maximum_iterations: int | None = None,
) -> Any:
    """Apply ``body`` to ``loop_vars`` while ``cond(*loop_vars)`` holds (at most
    ``maximum_iterations`` times). A tuple or list of loop variables is passed unpacked,
    as in Keras; the result has the structure of ``loop_vars``."""
    packed = isinstance(loop_vars, (list, tuple))
    values = tuple(loop_vars) if packed else (loop_vars,)
    count = 0
    while bool(raw(cond(*values))):
        if maximum_iterations is not None and count >= maximum_iterations:
            break
        result = body(*values)
        values = tuple(result) if isinstance(result, (list, tuple)) else (result,)
        count += 1
    if not packed:
        return values[0]
    return type(loop_vars)(values)


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[Any, Any]:
    """``carry, y = f(carry, x)`` over the leading axis of ``xs`` (or ``length`` steps with
    x None); returns the final carry and the stacked ys (JAX's and Keras' ``scan``)."""
    if xs is None and length is None:
        raise ValueError("scan: give xs or length.")
    steps = length if xs is None else len(raw(xs))
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    carry, ys = init, []
    for i in order:
        carry, y = f(carry, None if xs is None else xs[i])
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys or ys[0] is None:
        return carry, None
    return carry, stack(ys, axis=0)


def map(f: Callable[[Any], Any], xs: Any) -> Tensor:  # noqa: A001 (Keras' name)
    """``f`` applied to each slice of ``xs`` along its leading axis, results stacked."""
    return stack([f(xs[i]) for i in range(len(raw(xs)))], axis=0)
