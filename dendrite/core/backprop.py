"""The reverse sweep: chain rule over the recorded graph, without recursion.

For an output ``y`` and seed ``g = dL/dy`` every node ``z = f(a, b, ...)`` passes on
``dL/da = g_z * dz/da`` (its vector-Jacobian product); where a tensor feeds several nodes
the contributions add up. A node may run its VJP only once the gradient of its output is
complete, that is after every node that consumed that output has run. So the sweep first
counts, for each node, the edges that consume its output (one pass with an explicit stack),
then runs the nodes whose count has dropped to zero (Kahn's order). Neither pass recurses,
so a 10,000-step chain needs no deep Python stack.

Gradients are keyed by the node that produced a tensor (a non-leaf tensor has exactly one),
and by ``id`` for leaves; both dicts live only in this call, so calling it twice on a
retained graph gives the same result twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

_RELEASED = (
    "Trying to back-propagate through a graph a second time, but its saved arrays were "
    "released by the first backward(). Pass retain_graph=True to the first call (or use "
    "GradientTape(persistent=True))."
)


def _consumer_counts(root_ctx: Any) -> dict:
    """For each node reachable from ``root_ctx``: how many recorded edges consume its output."""
    counts = {root_ctx: 0}
    stack = [root_ctx]
    pop, push = stack.pop, stack.append
    while stack:
        inputs = pop().inputs
        if inputs is None:
            raise RuntimeError(_RELEASED)
        for parent in inputs:
            ctx = parent._ctx
            if ctx is not None:
                if ctx in counts:
                    counts[ctx] += 1
                else:
                    counts[ctx] = 1
                    push(ctx)
    return counts


def backprop(
    root: Any,
    seed: np.ndarray,
    retain_graph: bool = False,
    wanted: Iterable[Any] = (),
) -> dict[int, tuple[Any, np.ndarray]]:
    """Gradients of ``root`` (seeded with ``seed``) with respect to the tensors it depends on.

    Returns ``{id(tensor): (tensor, gradient)}`` for every leaf (a tensor that requires
    gradients and was not computed by a recorded op) that the root depends on, and for each
    tensor of ``wanted`` (intermediate tensors included) that it depends on.
    """
    result: dict[int, tuple[Any, np.ndarray]] = {}
    root_ctx = root._ctx
    if root_ctx is None:
        if root.requires_grad:
            result[id(root)] = (root, seed)
        return result
    watched = {t._ctx: t for t in wanted if t._ctx is not None}
    counts = _consumer_counts(root_ctx)
    grads = {root_ctx: seed}
    leaves: dict[int, list] = {}
    ready = [root_ctx]
    while ready:
        node = ready.pop()
        inputs = node.inputs
        grad = grads.pop(node, None)
        if grad is None:  # nothing flowed into this node: just let its inputs' counts drop
            for parent in inputs:
                ctx = parent._ctx
                if ctx is not None:
                    counts[ctx] -= 1
                    if counts[ctx] == 0:
                        ready.append(ctx)
        else:
            if watched and node in watched:
                tensor = watched[node]
                result[id(tensor)] = (tensor, grad)
            parent_grads = node.backward(grad)
            if type(parent_grads) is not tuple:
                parent_grads = (parent_grads,)
            if len(parent_grads) != len(inputs):
                raise RuntimeError(
                    f"{type(node).__name__}.backward returned {len(parent_grads)} gradients "
                    f"for {len(inputs)} inputs."
                )
            for parent, parent_grad, needed in zip(inputs, parent_grads, node.needs_grad):
                ctx = parent._ctx
                if ctx is None:
                    if needed and parent_grad is not None:
                        entry = leaves.get(id(parent))
                        if entry is None:
                            leaves[id(parent)] = [parent, parent_grad]
                        else:
                            entry[1] = entry[1] + parent_grad
                    continue
                if needed and parent_grad is not None:
                    previous = grads.get(ctx)
                    grads[ctx] = parent_grad if previous is None else previous + parent_grad
                remaining = counts[ctx] - 1
                counts[ctx] = remaining
                if remaining == 0:
                    ready.append(ctx)
        if not retain_graph:
            node.release()
    for key, (tensor, grad) in leaves.items():
        result[key] = (tensor, grad)
    return result
