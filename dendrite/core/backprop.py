"""The reverse sweep: chain rule over the recorded graph, without recursion.

For an output ``y`` and seed ``g = dL/dy`` every node ``z = f(a, b, ...)`` passes on
``dL/da = g_z * dz/da`` (its vector-Jacobian product); where a tensor feeds several nodes
the contributions add up. Nodes are visited in reverse topological order, found with an
explicit stack, so a 10,000-step chain needs no deep Python recursion.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _topological_order(root: Any) -> list:
    """Tensors that ``root`` depends on (and that need gradients), inputs before outputs."""
    order: list = []
    visited: set[int] = set()
    stack: list = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is None:
            continue
        if ctx.inputs is None:
            raise RuntimeError(
                "Trying to back-propagate through a graph a second time, but its saved arrays "
                "were released by the first backward(). Pass retain_graph=True to the first "
                "call (or use GradientTape(persistent=True))."
            )
        for parent in ctx.inputs:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def backprop(
    root: Any,
    seed: np.ndarray,
    retain_graph: bool = False,
    wanted: frozenset[int] = frozenset(),
) -> dict[int, tuple[Any, np.ndarray]]:
    """Gradients of ``root`` (seeded with ``seed``) with respect to the tensors it depends on.

    Returns ``{id(tensor): (tensor, gradient)}`` for every leaf (a tensor that requires
    gradients and was not computed by a recorded op) and for every tensor whose id is in
    ``wanted``. Intermediate gradients live only in this call, so calling it twice on a
    retained graph gives the same result twice.
    """
    order = _topological_order(root)
    grads: dict[int, np.ndarray] = {id(root): seed}
    result: dict[int, tuple[Any, np.ndarray]] = {}
    for tensor in reversed(order):
        key = id(tensor)
        grad = grads.pop(key, None)
        if grad is None:
            continue
        ctx = tensor._ctx
        if ctx is None or key in wanted:
            result[key] = (tensor, grad)
        if ctx is None:
            continue
        parent_grads = ctx.backward(grad)
        if not isinstance(parent_grads, tuple):
            parent_grads = (parent_grads,)
        for parent, parent_grad, needed in zip(ctx.inputs, parent_grads, ctx.needs_grad):
            if not needed or parent_grad is None:
                continue
            pkey = id(parent)
            previous = grads.get(pkey)
            grads[pkey] = parent_grad if previous is None else previous + parent_grad
        if not retain_graph:
            ctx.release()
    return result
