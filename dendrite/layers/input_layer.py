"""``Input`` and ``InputLayer``: where a model's data enters.

``Input(shape=(784,))`` returns a symbolic ``KerasTensor`` of shape (None, 784) for the
functional API; inside a ``Sequential`` list it fixes the input shape so the model builds
(and ``summary`` works) before seeing data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.base import Layer, dtype_name
from dendrite.layers.registry import register_layer
from dendrite.layers.symbolic import KerasTensor, Node


@register_layer
class InputLayer(Layer):
    """The entry point of a model: passes its input through unchanged.

    Args:
        shape: shape of one sample (without the batch axis); None axes are free.
        batch_size: optional fixed batch size.
        dtype: dtype of the input (default floatx).
        sparse: not supported (must be falsy).
        name: layer name.
    """

    example = {"kwargs": {"shape": (4,)}, "input_shape": (3, 4)}

    def __init__(
        self,
        shape: Any = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: bool | None = None,
        batch_shape: Any = None,
        input_tensor: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if sparse:
            raise ValueError("InputLayer: sparse inputs are not supported by dendrite.")
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs and batch_shape is None:
            batch_shape = kwargs.pop("batch_input_shape")
        if input_tensor is not None:
            # Keras' input_tensor: a bare KerasTensor (keras.KerasTensor(shape=...)) becomes
            # this layer's output, so graphs built on it start here.
            if not isinstance(input_tensor, KerasTensor):
                raise ValueError(
                    "Argument `input_tensor` must be a KerasTensor. Received: "
                    f"{input_tensor!r} of type {type(input_tensor).__name__}"
                )
            if input_tensor._keras_history is not None:
                raise ValueError(
                    f"Argument `input_tensor` {input_tensor!r} already comes from a layer "
                    f"call; pass a bare KerasTensor."
                )
            batch_shape = tuple(input_tensor.shape)
            dtype = dtype or input_tensor.dtype
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer needs `shape` (or `batch_shape`).")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            batch_shape = (batch_size, *tuple(shape))
        self.batch_shape = tuple(None if s is None else int(s) for s in batch_shape)
        self._batch_input_shape = self.batch_shape
        self.built = True
        # Its one node holds the symbolic tensor (``layer.output``, as for any layer).
        if input_tensor is not None:
            output = input_tensor
            output._keras_history = (self, 0, 0)
        else:
            output = KerasTensor(self.batch_shape, self.dtype, name=self.name, history=(self, 0, 0))
        self._inbound_nodes: list[Node] = [Node(self, [], (), {}, output)]

    def call(self, inputs: Tensor) -> Tensor:
        return inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        dtype = dtype_name(self.dtype)
        return {"name": self.name, "dtype": dtype, "batch_shape": list(self.batch_shape)}


def Input(  # noqa: N802 (Keras' name)
    shape: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Any = None,
    name: str | None = None,
    tensor: Any = None,
) -> KerasTensor:
    """A symbolic input of shape ``(batch_size, *shape)`` for building models."""
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        name=name,
        input_tensor=tensor,
    )
    return layer.output
