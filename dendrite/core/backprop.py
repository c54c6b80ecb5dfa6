"""The reverse sweep: chain rule over the recorded graph, without recursion.

For an output ``y`` and seed ``g = dL/dy`` every node ``z = f(a, b, ...)`` passes on
``dL/da = g_z * dz/da`` (its vector-Jacobian product); where a tensor feeds several nodes
the contributions add up. A node may run its VJP only once the gradient of its output is
complete, that is after every node that consumed that output has run.

``Function.apply`` stamps each recorded node with an increasing sequence number, so a
consumer always carries a larger number than the nodes it consumes. The sweep keeps the
nodes that have received some gradient in a heap and always runs the one with the largest
number: by then every consumer that could still add to its gradient has run (any such
consumer, or a node upstream of it, would have a larger number and be run first). One pass,
no recursion, no separate topological sort: a 10,000-step chain needs no deep Python stack.
Nodes that no gradient reaches are never visited.

A gradient takes the dtype of the floating tensor it is for (as PyTorch's do): where a
float32 output meets a float64 tensor, the float64 gradient that comes back is cast to
float32 at that edge, so a VJP always receives its output's dtype, and the C kernels
(which take arrays of one dtype) stay in use.

Gradients are keyed by the node that produced a tensor (a non-leaf tensor has exactly one),
and by ``id`` for leaves; both dicts live only in this call, so calling it twice on a
retained graph gives the same result twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any

import numpy as np

_RELEASED = (
    "Trying to back-propagate through a graph a second time, but its saved arrays were "
    "released by the first backward(). Pass retain_graph=True to the first call (or use "
    "GradientTape(persistent=True))."
)


def _in_dtype_of(tensor: Any, grad: np.ndarray) -> np.ndarray:
    """``grad`` in ``tensor``'s dtype when both are real floating arrays of two precisions."""
    dtype, given = tensor.data.dtype, getattr(grad, "dtype", None)
    if given is None or given == dtype or dtype.kind != "f" or given.kind != "f":
        return grad
    return grad.astype(dtype)


def backprop(
    root: Any,
    seed: np.ndarray,
    retain_graph: bool = False,
    wanted: Iterable[Any] = (),
) -> dict[int, tuple[Any, np.ndarray]]:
    """Gradients of ``root`` (seeded with ``seed``) with respect to the tensors it depends on.

    Returns ``{id(tensor): (tensor, gradient)}`` for every leaf (a tensor that requires
    gradients and was not computed by a recorded op) that a gradient reaches, and for each
    tensor of ``wanted`` (intermediate tensors included) that one reaches.
    """
    result: dict[int, tuple[Any, np.ndarray]] = {}
    root_ctx = root._ctx
    if root_ctx is None:
        if root.requires_grad:
            result[id(root)] = (root, seed)
        return result
    watched = {t._ctx: t for t in wanted if t._ctx is not None}
    grads = {root_ctx: seed}
    leaves: dict[int, list] = {}
    heap = [(-root_ctx.seq, root_ctx)]
    while heap:
        node = heappop(heap)[1]
        grad = grads.pop(node)
        inputs = node.inputs
        if inputs is None:
            raise RuntimeError(_RELEASED)
        if watched and node in watched:
            tensor = watched[node]
            result[id(tensor)] = (tensor, grad)
        parent_grads = node.backward(grad)
        if type(parent_grads) is not tuple:
            parent_grads = (parent_grads,)
        if len(parent_grads) != len(inputs):
            raise RuntimeError(
                f"{type(node).__name__}.backward returned {len(parent_grads)} gradients for "
                f"{len(inputs)} inputs."
            )
        for parent, parent_grad, needed in zip(inputs, parent_grads, node.needs_grad):
            if parent_grad is None or not needed:
                continue
            parent_grad = _in_dtype_of(parent, parent_grad)
            ctx = parent._ctx
            if ctx is None:
                entry = leaves.get(id(parent))
                if entry is None:
                    leaves[id(parent)] = [parent, parent_grad]
                else:
                    entry[1] = entry[1] + parent_grad
                continue
            previous = grads.get(ctx)
            if previous is None:
                grads[ctx] = parent_grad
                heappush(heap, (-ctx.seq, ctx))
            else:
                grads[ctx] = previous + parent_grad
        if not retain_graph:
            node.release()
    for key, (tensor, grad) in leaves.items():
        result[key] = (tensor, grad)
    return result
