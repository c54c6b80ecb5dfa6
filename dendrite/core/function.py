"""``Function``: one differentiable primitive, forward and vector-Jacobian product together.

A primitive subclasses ``Function`` and implements

- ``forward(self, *arrays, **options) -> ndarray``: the value, on raw arrays; it may keep
  what the backward pass needs on ``self`` (``self.saved`` or its own slots);
- ``backward(self, grad) -> ndarray | tuple``: given ``g = dL/d(output)``, the gradient
  with respect to each array input (``None`` where an input needs none; ``self.needs_grad``
  says which do).

``MyOp.apply(*inputs, **options)`` runs it on Tensors (or numbers/arrays) and records the
node when gradients are being recorded and some input requires them.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dendrite import registry
from dendrite.core.tensor import Tensor, as_array


class _GradMode(threading.local):
    """Whether operations are recorded, per thread (as PyTorch's grad mode): inference under
    ``no_grad`` in one thread never changes what another thread records."""

    enabled = True


GRAD_MODE = _GradMode()


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for backpropagation."""
    return GRAD_MODE.enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) under which no operation is recorded."""

    def __enter__(self) -> no_grad:
        self._previous = GRAD_MODE.enabled
        GRAD_MODE.enabled = False
        return self

    def __exit__(self, *exc: Any) -> None:
        GRAD_MODE.enabled = self._previous


class enable_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns recording back on inside ``no_grad``."""

    def __enter__(self) -> enable_grad:
        self._previous = GRAD_MODE.enabled
        GRAD_MODE.enabled = True
        return self

    def __exit__(self, *exc: Any) -> None:
        GRAD_MODE.enabled = self._previous


def _to_tensor_like(value: Any, reference_dtype: np.dtype | None) -> Tensor:
    """Wrap a non-Tensor operand; Python numbers take the dtype of the tensor they meet.

    So ``x * 2.0`` stays float32 for a float32 ``x`` (no silent upcast), and ``i + 1`` stays
    integer for an integer ``i``.
    """
    if reference_dtype is not None and isinstance(value, (int, float)):
        kind = reference_dtype.kind
        if kind in "fc" or (kind in "iu" and isinstance(value, int)):
            return Tensor._make(np.asarray(value, dtype=reference_dtype))
    return Tensor._make(as_array(value))


class Function:
    """Base class of differentiable primitives (see the module docstring)."""

    # seq: the recording order, stamped by ``apply``; the backward sweep runs nodes from the
    # largest number down (see ``dendrite.core.backprop``).
    __slots__ = ("inputs", "needs_grad", "saved", "seq")

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the inputs and saved arrays once the backward pass no longer needs them."""
        self.inputs = None
        self.saved = None

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run the primitive on ``inputs`` and record the node when some input needs it.

        This is the hot path of every operation, so it stays lean: Tensors are recognised by
        their ``requires_grad`` attribute (numbers and ndarrays have none; only they take
        the slower conversion path), and the one- and two-input cases, nearly every call,
        skip the generic loops (about half a microsecond a call).
        """
        ctx = _new(cls)
        ctx.saved = None
        if len(inputs) == 2:
            a, b = inputs
            need_a = getattr(a, "requires_grad", None)
            need_b = getattr(b, "requires_grad", None)
            if need_a is not None and need_b is not None:
                if (need_a or need_b) and GRAD_MODE.enabled:
                    ctx.needs_grad = (need_a, need_b)
                    ctx.inputs = inputs
                    ctx.seq = _next_seq()
                    return _make(ctx.forward(a.data, b.data, **options), ctx)
                ctx.needs_grad = ()
                ctx.inputs = None
                return _make(ctx.forward(a.data, b.data, **options))
        elif len(inputs) == 1:
            a = inputs[0]
            need_a = getattr(a, "requires_grad", None)
            if need_a is not None:
                if need_a and GRAD_MODE.enabled:
                    ctx.needs_grad = (True,)
                    ctx.inputs = inputs
                    ctx.seq = _next_seq()
                    return _make(ctx.forward(a.data, **options), ctx)
                ctx.needs_grad = ()
                ctx.inputs = None
                return _make(ctx.forward(a.data, **options))
        needs = tuple([getattr(t, "requires_grad", None) for t in inputs])
        if None in needs:
            inputs = _as_tensors(inputs)
            needs = tuple([t.requires_grad for t in inputs])
        if GRAD_MODE.enabled and True in needs:
            ctx.needs_grad = needs
            ctx.inputs = inputs
            ctx.seq = _next_seq()
            return _make(ctx.forward(*[t.data for t in inputs], **options), ctx)
        ctx.needs_grad = ()
        ctx.inputs = None
        return _make(ctx.forward(*[t.data for t in inputs], **options))


_new = object.__new__
_make = Tensor._make
_next_seq = itertools.count().__next__


def _as_tensors(inputs: tuple) -> tuple:
    """Wrap the non-Tensor inputs; numbers take the dtype of the first Tensor among them."""
    reference = None
    for value in inputs:
        if isinstance(value, Tensor):
            reference = value.data.dtype
            break
    return tuple(
        [
            value if isinstance(value, Tensor) else _to_tensor_like(value, reference)
            for value in inputs
        ]
    )


def register(name: str | None = None) -> Callable[[type[Function]], type[Function]]:
    """Class decorator: record a Function in the registry as the op ``name`` (default: its
    class name in lower case), where the op-case tests and the docs find it. Two different
    Functions under one name raise a ValueError."""

    def decorate(cls: type[Function]) -> type[Function]:
        return registry.register("op", name or cls.__name__.lower())(cls)

    return decorate


#: The registered primitives, op name -> Function class: a live, read-only view of the
#: registry's "op" kind.
OP_REGISTRY: Mapping[str, type[Function]] = registry.table("op")
