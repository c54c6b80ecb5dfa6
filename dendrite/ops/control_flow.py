"""Control flow and tensor queries with Keras 3's names.

dendrite runs eagerly, so control flow is Python's: ``cond`` calls one branch,
``fori_loop`` / ``while_loop`` loop, ``scan`` and ``map`` iterate over the leading axis and
stack the results. Gradients flow through whatever the branches and bodies compute.
``stop_gradient(x)`` is the identity with a zero gradient: y = x, dL/dx = 0.

``associative_scan(f, elems, reverse, axis)``: the inclusive prefix combination
``y_k = x_0 . x_1 . ... . x_k`` under an associative ``a . b = f(a, b)``, by the recursive
odd/even algorithm of JAX's ``lax.associative_scan`` (Blelloch 1990), which Keras' backends
follow: combine neighbouring pairs ``(x_0 . x_1), (x_2 . x_3), ...``, scan those (half as
many), so that ``y_{2j+1}`` is the j-th result; then ``y_{2j} = y_{2j-1} . x_{2j}``
(``y_0 = x_0``); interleave. ``f`` is called O(log n) times on whole slices, never per
element; gradients flow through whatever ``f`` computes and the slices and joins around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite.core import SymbolicValue, Tensor
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


def associative_scan(
    f: Callable[[Any, Any], Any], elems: Any, reverse: bool = False, axis: int = 0
) -> Any:
    """The prefix scan of ``elems`` (a tensor or a nested structure of tensors, all of one
    length along ``axis``) under the associative ``f``: the k-th entry along ``axis`` is
    ``f(...f(f(x_0, x_1), x_2)..., x_k)``; ``reverse`` scans from the end. Returns the
    structure of ``elems`` (see the module docstring for the algorithm)."""
    # The public ops (symbolic-aware): on a keras.Input, the scan records its slices and
    # joins as nodes of the functional graph.
    from dendrite import ops, tree
    from dendrite.ops.creation import convert_to_tensor

    concatenate, flip, reshape, stack = ops.concatenate, ops.flip, ops.reshape, ops.stack

    if not callable(f):
        raise TypeError(f"associative_scan: `f` should be a callable. Received: f={f!r}")

    def as_tensor(value: Any) -> Any:
        return value if isinstance(value, (Tensor, SymbolicValue)) else convert_to_tensor(value)

    leaves = [as_tensor(leaf) for leaf in tree.flatten(elems)]
    if not leaves:
        raise ValueError("associative_scan: `elems` holds no arrays.")
    for leaf in leaves:
        if not -leaf.ndim <= axis < leaf.ndim:
            raise ValueError(
                f"associative_scan: axis {axis} is out of range for an input of shape {leaf.shape}."
            )
    axes = [int(axis) % leaf.ndim for leaf in leaves]
    if len({leaf.shape[a] for leaf, a in zip(leaves, axes)}) != 1:
        raise ValueError(
            f"associative_scan: array inputs must have the same length along axis {axis}. "
            f"Received shapes: {[leaf.shape for leaf in leaves]}"
        )
    if reverse:
        leaves = [flip(leaf, a) for leaf, a in zip(leaves, axes)]

    def cut(x: Tensor, a: int, start: int, stop: int | None = None, step: int = 1) -> Tensor:
        return x[(slice(None),) * a + (slice(start, stop, step),)]

    def combine(first: list, second: list) -> list:
        result = f(tree.pack_sequence_as(elems, first), tree.pack_sequence_as(elems, second))
        flat = [as_tensor(leaf) for leaf in tree.flatten(result)]
        if len(flat) != len(first):
            raise ValueError(
                f"associative_scan: `f` must return the structure of `elems` "
                f"({len(first)} arrays); it returned {len(flat)}."
            )
        return flat

    def interleave(even: Tensor, odd: Tensor, a: int) -> Tensor:
        """``even[0], odd[0], even[1], odd[1], ...`` along axis a (even one longer or not)."""
        n = odd.shape[a]
        head = even if even.shape[a] == n else cut(even, a, 0, n)
        pairs = stack([head, odd], axis=a + 1)
        shape = head.shape[:a] + (2 * n,) + head.shape[a + 1 :]
        shape = tuple(-1 if size is None else size for size in shape)  # a symbolic batch
        joined = reshape(pairs, shape)
        if even.shape[a] == n:
            return joined
        return concatenate([joined, cut(even, a, n)], axis=a)

    def scan_(xs: list) -> list:
        n = xs[0].shape[axes[0]]
        if n < 2:
            return xs
        pairs = combine(
            [cut(x, a, 0, -1, 2) for x, a in zip(xs, axes)],
            [cut(x, a, 1, None, 2) for x, a in zip(xs, axes)],
        )
        odd = scan_(pairs)
        tails = [cut(x, a, 2, None, 2) for x, a in zip(xs, axes)]
        if n % 2 == 0:
            even = combine([cut(o, a, 0, -1) for o, a in zip(odd, axes)], tails)
        else:
            even = combine(odd, tails)
        even = [concatenate([cut(x, a, 0, 1), e], axis=a) for x, e, a in zip(xs, even, axes)]
        return [interleave(e, o, a) for e, o, a in zip(even, odd, axes)]

    scanned = scan_(leaves)
    if reverse:
        scanned = [flip(leaf, a) for leaf, a in zip(scanned, axes)]
    return tree.pack_sequence_as(elems, scanned)
