"""What the merging layers share: ``_Merge``, the base that checks the list of inputs (their
number, one batch size) and, for the element-wise merges, their broadcast shape and masks.

Element-wise shapes follow Keras: after the batch axis, every axis must match or be 1, and
inputs of lower rank get size-1 axes inserted after the batch axis. The output mask is the
OR of the input masks when every input has one (else none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.calling import mask_array


class _Merge(Layer):
    """Base of the merging layers: checks the list of inputs and their shapes."""

    _min_inputs = 1
    _max_inputs: int | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def _describe(self) -> str:
        return f"Layer '{self.name}' ({type(self).__name__})"

    def _check_list(self, input_shape: Any) -> list[tuple]:
        if not isinstance(input_shape, (list, tuple)) or not input_shape:
            received = input_shape
            raise ValueError(
                f"{self._describe()} should be called on a list of inputs. Received: "
                f"input_shape={received} (not a list of shapes)"
            )
        if not isinstance(input_shape[0], (list, tuple)) or any(
            s is not None and not isinstance(s, (int, np.integer)) for s in input_shape[0]
        ):
            raise ValueError(
                f"{self._describe()} should be called on a list of inputs. Received: "
                f"input_shape={tuple(input_shape)} (not a list of shapes)"
            )
        shapes = [tuple(s) for s in input_shape]
        count = len(shapes)
        low, high = self._min_inputs, self._max_inputs
        if count < low or (high is not None and count > high):
            if high == low:
                expected = f"exactly {low}"
            else:
                expected = f"at least {low}"
            raise ValueError(
                f"{self._describe()} should be called on a list of {expected} inputs. "
                f"Received {count} inputs with shapes {shapes}."
            )
        batch_sizes = {s[0] for s in shapes if s} - {None}
        if len(batch_sizes) > 1:
            raise ValueError(
                f"{self._describe()} cannot merge tensors with different batch sizes. "
                f"Received tensors with shapes {shapes}"
            )
        return shapes

    def _input_shapes(self, inputs: Any, expected: str = "inputs") -> list[tuple]:
        """The checked shapes of the tensors a call received (``_check_list``), or an error
        when ``inputs`` is not a list of tensors."""
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._describe()} should be called on a list of {expected}. Received: "
                f"inputs of shape {tuple(inputs.shape)} (not a list of tensors)"
            )
        return self._check_list([tuple(x.shape) for x in inputs])

    def _elementwise_shape(self, shapes: list[tuple]) -> tuple:
        """The broadcast shape of the inputs (without the batch axis), Keras' rules."""
        out = shapes[0][1:]
        for shape in shapes[1:]:
            other = shape[1:]
            longer, shorter = (out, other) if len(out) >= len(other) else (other, out)
            result = list(longer[: len(longer) - len(shorter)])
            for i, j in zip(longer[len(longer) - len(shorter) :], shorter):
                if i is None or j is None:
                    result.append(None if i != 1 and j != 1 else (j if i == 1 else i))
                elif i == 1 or j == 1 or i == j:
                    result.append(j if i == 1 else i)
                else:
                    raise ValueError(
                        f"{self._describe()}: inputs have incompatible shapes. Received "
                        f"shapes {shapes}: every axis after the batch axis must match or be "
                        f"1."
                    )
            out = tuple(result)
        return out

    def build(self, input_shape: Any) -> None:
        shapes = self._check_list(input_shape)
        self._elementwise_shape(shapes)
        self.built = True

    def call(self, inputs: Any) -> Tensor:
        shapes = self._input_shapes(inputs)
        self._elementwise_shape(shapes)
        rank = max(len(s) for s in shapes)
        xs = []
        for x in inputs:
            if x.ndim < rank:
                # Keras: lower-rank inputs get size-1 axes right after the batch axis.
                x = ops.reshape(x, (x.shape[0], *([1] * (rank - x.ndim)), *x.shape[1:]))
            xs.append(x)
        return self._merge_function(xs)

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shapes = self._check_list(input_shape)
        batch = next((s[0] for s in shapes if s and s[0] is not None), None)
        return (batch, *self._elementwise_shape(shapes))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or len(mask) != len(inputs):
            return None
        if any(m is None for m in mask):
            return None
        result = mask_array(mask[0])
        for m in mask[1:]:
            result = np.logical_or(result, mask_array(m))
        return Tensor._make(result)
