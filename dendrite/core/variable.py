"""``Variable``: a named, mutable tensor that layers own and optimizers update in place."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core.tensor import Tensor, as_array


class Variable(Tensor):
    """A model weight: a leaf Tensor with a name, a ``trainable`` flag and ``assign``.

    ``requires_grad`` follows ``trainable``, so every operation on a trainable variable is
    recorded (as TensorFlow's tape watches trainable variables). ``assign`` writes into the
    existing buffer, so references held by optimizers stay valid.
    """

    __slots__ = ("trainable", "path", "constraint")

    def __init__(
        self,
        initial_value: Any,
        dtype: Any = None,
        trainable: bool = True,
        name: str | None = None,
        constraint: Any = None,
    ) -> None:
        value = initial_value() if callable(initial_value) else initial_value
        data = np.array(as_array(value, dtype), copy=True)
        if trainable and not np.issubdtype(data.dtype, np.inexact):
            raise TypeError(f"A trainable Variable must be floating point; got {data.dtype}.")
        super().__init__(data, requires_grad=trainable, name=name)
        self.trainable = bool(trainable)
        self.path = name
        # Applied by the optimizer after each update, as Keras does: ``w <- constraint(w)``.
        self.constraint = constraint

    @property
    def value(self) -> Tensor:
        return Tensor._make(self.data)

    def _checked(self, value: Any) -> np.ndarray:
        array = as_array(value)
        if array.shape != self.data.shape:
            raise ValueError(
                f"Cannot assign a value of shape {array.shape} to variable {self.name!r} of "
                f"shape {self.data.shape}."
            )
        return array

    def assign(self, value: Any) -> Variable:
        self.data[...] = self._checked(value)
        return self

    def assign_add(self, delta: Any) -> Variable:
        self.data += self._checked(delta)
        return self

    def assign_sub(self, delta: Any) -> Variable:
        self.data -= self._checked(delta)
        return self

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path!r}, shape={self.data.shape}, dtype={self.data.dtype}, "
            f"trainable={self.trainable}>"
        )
