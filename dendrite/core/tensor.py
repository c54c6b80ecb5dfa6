"""``Tensor``: an ndarray that remembers how it was computed.

A tensor holds ``data`` (an ndarray), ``requires_grad``, the accumulated ``grad`` of a leaf,
and ``_ctx``: the Function node that produced it (None for leaves and for results computed
without gradient recording). Operators (``+ - * / ** @``, indexing, ...) are attached by
``dendrite.ops`` when it registers its primitives, so this module knows nothing about them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core.backprop import backprop


def as_array(value: Any, dtype: Any = None) -> np.ndarray:
    """Convert ``value`` to an ndarray under dendrite's dtype policy.

    Tensors give their data; ndarrays keep their dtype (float64 stays float64, for gradient
    checks); Python numbers and nested lists of floats become ``floatx()``; lists of ints
    stay integer (labels, indices). An explicit ``dtype`` wins.
    """
    if isinstance(value, Tensor):
        value = value.data
    if dtype is not None:
        return np.asarray(value, dtype=dtype)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(_settings.floatx())
    return array


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: array-like (ndarray, list, number, or another Tensor).
        dtype: optional dtype; by default float64 ndarrays stay float64, Python floats become
            ``floatx()`` (float32).
        requires_grad: record operations on this tensor so ``backward`` can reach it.
        name: optional label, shown in ``repr``.
    """

    # _keras_mask: the boolean (batch, time) mask a masking layer attached (Keras' protocol).
    # _origin: what a probability came from, (kind, logits, axis) for the softmax and
    # sigmoid ops, set whether or not the op was recorded, so a cross-entropy starts from
    # the logits in training and evaluation alike (Keras' ``_keras_logits``).
    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "_ctx",
        "name",
        "_keras_mask",
        "_origin",
        "__weakref__",
    )
    # Lets ``ndarray + Tensor`` defer to ``Tensor.__radd__`` instead of broadcasting over it.
    __array_priority__ = 1000

    def __init__(
        self,
        data: Any,
        dtype: Any = None,
        requires_grad: bool = False,
        name: str | None = None,
    ) -> None:
        self.data = as_array(data, dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.inexact):
            raise TypeError(
                f"Only floating-point tensors can require gradients; got dtype {self.data.dtype}."
            )
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._ctx = None
        self.name = name
        self._keras_mask = None
        self._origin = None

    @classmethod
    def _make(cls, data: np.ndarray, ctx: Any = None) -> Tensor:
        """Wrap an already-converted array without the checks of ``__init__`` (hot path)."""
        out = object.__new__(Tensor)
        out.data = data
        out.grad = None
        out.name = None
        out._keras_mask = None
        out._origin = None
        out._ctx = ctx
        out.requires_grad = ctx is not None
        return out

    # --- array-like properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (the tensor's own buffer: copy it before changing it)."""
        return self.data

    def item(self) -> Any:
        return self.data.item()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        # np.asarray: a 0-d result may be held as a NumPy scalar, which __array__ may not return.
        return np.array(self.data) if copy else np.asarray(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        name = f", name={self.name!r}" if self.name else ""
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{grad}{name})"

    __hash__ = object.__hash__

    # --- graph ------------------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same data, cut from the graph (no gradient flows through the result)."""
        return Tensor._make(self.data)

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Back-propagate from this tensor, accumulating ``.grad`` on every leaf it depends on.

        Args:
            gradient: the upstream gradient dL/dself; may be omitted only for a scalar (it
                is then 1).
            retain_graph: keep the graph so ``backward`` can be called on it again; by
                default the graph (and the arrays it saved) is released.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require gradients: no input of the "
                "computation had requires_grad=True, or it ran under no_grad()."
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, but this tensor has "
                    f"shape {self.data.shape}; pass gradient= with that shape (for example "
                    f"ones) or reduce it first (sum, mean)."
                )
            seed = np.ones(self.data.shape, dtype=self.data.dtype)
        else:
            seed = as_array(gradient, self.data.dtype)
            if seed.shape != self.data.shape:
                raise ValueError(
                    f"backward(): gradient has shape {seed.shape} but the tensor has shape "
                    f"{self.data.shape}."
                )
        grads = backprop(self, seed, retain_graph=retain_graph)
        for leaf, grad in grads.values():
            grad = owned_gradient(grad, leaf.data.dtype)
            leaf.grad = grad if leaf.grad is None else leaf.grad + grad

    def zero_grad(self) -> None:
        self.grad = None


def owned_gradient(grad: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A writable gradient array of ``dtype`` (VJPs may return broadcast, read-only views)."""
    if grad.dtype != dtype:
        return grad.astype(dtype)
    if not grad.flags.writeable:
        return np.array(grad)
    return grad


def attach(name: str, fn: Any) -> None:
    """Install ``fn`` as ``Tensor.<name>``; how ``dendrite.ops`` adds operators and methods."""
    setattr(Tensor, name, fn)


class SymbolicValue:
    """A value with a shape and a dtype but no data: the base of ``KerasTensor`` (from
    ``keras.Input``). A public op given one (``keras.ops.add(x, 1)`` in a functional
    model) computes nothing: it hands itself to ``_apply_op``, which records the call as a
    node of the graph (``layers/op_layer.py``) and returns the symbolic result."""

    __slots__ = ()

    def _apply_op(self, name: str, args: tuple, kwargs: dict) -> Any:
        raise NotImplementedError
