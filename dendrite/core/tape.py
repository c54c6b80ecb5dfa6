"""``GradientTape``: TensorFlow's custom-training-loop idiom over dendrite's graph.

    with dendrite.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)

Recording is on inside the tape. Trainable variables are watched automatically; any other
floating tensor can be watched with ``tape.watch``. ``gradient`` returns fresh arrays
(as Tensors) and leaves ``.grad`` untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core.backprop import backprop
from dendrite.core.function import GRAD_MODE
from dendrite.core.tensor import Tensor, as_array, owned_gradient


class GradientTape:
    """Records operations for automatic differentiation (TensorFlow's API).

    Args:
        persistent: allow several ``gradient`` calls (the graph is kept until the tape is
            deleted); by default one call releases it.
        watch_accessed_variables: accepted for compatibility; trainable variables always
            record.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._used = False
        self._previous = True
        self._watched: list[Tensor] = []

    def __enter__(self) -> GradientTape:
        self._previous = GRAD_MODE.enabled
        GRAD_MODE.enabled = True
        return self

    def __exit__(self, *exc: Any) -> None:
        GRAD_MODE.enabled = self._previous
        # Watching lasts as long as the tape records (TensorFlow's rule); what was recorded
        # stays differentiable, since each node keeps which of its inputs needed gradients.
        for item in self._watched:
            item.requires_grad = False
        self._watched.clear()

    def watch(self, tensor: Any) -> None:
        """Record operations on ``tensor`` (or each tensor of a list) until the tape closes."""
        for item in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            if not isinstance(item, Tensor):
                raise TypeError(f"tape.watch expects Tensors, got {type(item).__name__}.")
            if not np.issubdtype(item.dtype, np.inexact):
                raise TypeError(f"tape.watch needs a floating tensor, got dtype {item.dtype}.")
            if not item.requires_grad:
                item.requires_grad = True
                self._watched.append(item)

    def gradient(
        self,
        target: Tensor,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """d(target)/d(sources), shaped like ``sources`` (a tensor, list, tuple or dict).

        A non-scalar target is summed (TensorFlow's rule) unless ``output_gradients`` is
        given. Sources the target does not depend on get ``None`` (or zeros with
        ``unconnected_gradients='zero'``).
        """
        if self._used and not self.persistent:
            raise RuntimeError(
                "A non-persistent GradientTape can only compute one set of gradients; use "
                "GradientTape(persistent=True) to call gradient() several times."
            )
        self._used = True
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(
                f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}."
            )
        flat, rebuild = _flatten(sources)
        if not isinstance(target, Tensor) or not target.requires_grad:
            found: dict[int, tuple[Any, np.ndarray]] = {}
        else:
            seed = (
                np.ones_like(target.data)
                if output_gradients is None
                else as_array(output_gradients, target.dtype)
            )
            found = backprop(
                target,
                seed,
                retain_graph=self.persistent,
                wanted=[s for s in flat if isinstance(s, Tensor)],
            )
        grads = []
        for source in flat:
            hit = found.get(id(source))
            if hit is not None:
                grads.append(Tensor._make(owned_gradient(hit[1], source.dtype)))
            elif unconnected_gradients == "zero":
                grads.append(Tensor._make(np.zeros_like(source.data)))
            else:
                grads.append(None)
        return rebuild(grads)


def _flatten(sources: Any) -> tuple[list, Any]:
    if isinstance(sources, dict):
        keys = list(sources)
        return [sources[k] for k in keys], lambda g: dict(zip(keys, g))
    if isinstance(sources, (list, tuple)):
        kind = type(sources)
        return list(sources), lambda g: kind(g) if kind is tuple else list(g)
    return [sources], lambda g: g[0]
