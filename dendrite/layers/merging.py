"""Merging layers: combine a list of tensors into one.

Element-wise (all inputs broadcast to one shape; inputs of lower rank get size-1 axes
inserted after the batch axis, as in Keras): Add ``y = sum_i x_i``, Subtract
``y = x_1 - x_2``, Multiply ``y = prod_i x_i``, Average ``y = (1/n) sum_i x_i``, Maximum
``y = max_i x_i``, Minimum ``y = min_i x_i``. Concatenate joins along an axis; Dot takes
per-sample dot products along given axes. The lower-case functions (``add([a, b])``, ...)
build the layer and call it at once, as ``keras.layers.add`` does.

Masks: the element-wise layers OR the input masks (when every input has one);
Concatenate concatenates the masks, treating an unmasked input as all-True; Dot drops them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer


def _mask_array(mask: Any) -> np.ndarray:
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)


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
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._describe()} should be called on a list of inputs. Received: "
                f"inputs of shape {tuple(inputs.shape)} (not a list of tensors)"
            )
        shapes = self._check_list([tuple(x.shape) for x in inputs])
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
        result = _mask_array(mask[0])
        for m in mask[1:]:
            result = np.logical_or(result, _mask_array(m))
        return Tensor._make(result)


@register_layer
class Add(_Merge):
    """Element-wise sum of a list of tensors: ``y = x_1 + x_2 + ... + x_n``."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


@register_layer
class Subtract(_Merge):
    """Element-wise difference of exactly two tensors: ``y = x_1 - x_2``."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}
    _min_inputs = 2
    _max_inputs = 2

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        return inputs[0] - inputs[1]


@register_layer
class Multiply(_Merge):
    """Element-wise product of a list of tensors: ``y = x_1 * x_2 * ... * x_n``."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out


@register_layer
class Average(_Merge):
    """Element-wise mean of a list of tensors: ``y = (x_1 + ... + x_n) / n``."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out * (1.0 / len(inputs))


@register_layer
class Maximum(_Merge):
    """Element-wise maximum of a list of tensors: ``y = max(x_1, ..., x_n)`` (a tie shares
    the gradient evenly)."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        return functools.reduce(ops.maximum, inputs)


@register_layer
class Minimum(_Merge):
    """Element-wise minimum of a list of tensors: ``y = min(x_1, ..., x_n)``."""

    example = {"kwargs": {}, "input_shape": [(2, 3), (2, 3)]}

    def _merge_function(self, inputs: list[Tensor]) -> Tensor:
        return functools.reduce(ops.minimum, inputs)


@register_layer
class Concatenate(_Merge):
    """Joins a list of tensors along ``axis``; every other axis must match.

    Args:
        axis: the axis to join along (default -1, the features).
    """

    example = {"kwargs": {"axis": -1}, "input_shape": [(2, 3), (2, 4)]}

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _concat_shape(self, shapes: list[tuple]) -> tuple:
        ranks = {len(s) for s in shapes}
        rank = len(shapes[0])
        if len(ranks) != 1 or not -rank <= self.axis < rank:
            raise ValueError(
                f"{self._describe()} requires inputs of the same rank, with axis "
                f"{self.axis} in range. Received: input_shape={shapes}"
            )
        axis = self.axis % rank
        out = list(shapes[0])
        for shape in shapes[1:]:
            for a, (i, j) in enumerate(zip(out, shape)):
                if a == axis:
                    out[a] = None if i is None or j is None else i + j
                elif i is not None and j is not None and i != j:
                    raise ValueError(
                        f"{self._describe()} requires inputs with matching shapes except for "
                        f"the concatenation axis {self.axis}. Received: input_shape={shapes}"
                    )
                elif i is None:
                    out[a] = j
        return tuple(out)

    def build(self, input_shape: Any) -> None:
        self._concat_shape(self._check_list(input_shape))
        self.built = True

    def call(self, inputs: Any) -> Tensor:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._describe()} should be called on a list of inputs. Received: "
                f"inputs of shape {tuple(inputs.shape)} (not a list of tensors)"
            )
        self._concat_shape(self._check_list([tuple(x.shape) for x in inputs]))
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return self._concat_shape(self._check_list(input_shape))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None or not isinstance(mask, (list, tuple)) or len(mask) != len(inputs):
            return None
        if all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask):
            if m is None:
                masks.append(np.ones(x.shape, dtype=bool))
                continue
            m = _mask_array(m)
            if m.ndim < x.ndim:
                m = np.broadcast_to(m[..., None], x.shape)
            masks.append(m)
        joined = np.concatenate(masks, axis=self.axis)
        return Tensor._make(np.any(joined, axis=-1))

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    # Keras: x / max(||x||, epsilon), written with rsqrt so that a zero vector gives 0, not
    # NaN.
    square_sum = ops.sum(x * x, axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, _settings.epsilon() ** 2))


@register_layer
class Dot(_Merge):
    """Per-sample dot product of two tensors along ``axes``.

    For ``x_1`` of shape (batch, n) and ``x_2`` of shape (batch, n) with ``axes=1``:
    ``y[b, 0] = sum_i x_1[b, i] x_2[b, i]`` (shape (batch, 1)). In general the output has
    ``x_1``'s axes without ``axes[0]``, then ``x_2``'s without the batch axis and
    ``axes[1]`` (Keras' ``batch_dot``), computed as one batched matrix product.

    Args:
        axes: int, or a pair (axis of ``x_1``, axis of ``x_2``); never the batch axis 0.
        normalize: L2-normalise both inputs along ``axes`` first, so that ``y`` is the
            cosine similarity.
    """

    example = {"kwargs": {"axes": 1}, "input_shape": [(2, 3), (2, 3)]}
    _min_inputs = 2
    _max_inputs = 2

    def __init__(self, axes: int | tuple[int, int], normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(axes, (int, np.integer)):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(
                    "Invalid type for argument `axes` of Dot: it should be a list or an int. "
                    f"Received: axes={axes}"
                )
            if len(axes) != 2 or not all(isinstance(a, (int, np.integer)) for a in axes):
                raise ValueError(
                    "Invalid format for argument `axes` of Dot: it should contain two "
                    f"integers. Received: axes={axes}"
                )
            axes = [int(a) for a in axes]
        else:
            axes = int(axes)
        self.axes = axes
        self.normalize = bool(normalize)

    def _resolved_axes(self, shapes: list[tuple]) -> tuple[int, int]:
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else tuple(self.axes)
        resolved = []
        for axis, shape in zip(pair, shapes):
            rank = len(shape)
            if rank < 2 or not -rank <= axis < rank or axis % rank == 0:
                raise ValueError(
                    f"{self._describe()}: cannot take a dot product over axis {axis} of an "
                    f"input of shape {shape} (inputs need rank >= 2, and the batch axis 0 "
                    f"cannot be reduced). Received shapes {shapes}."
                )
            resolved.append(axis % rank)
        a1, a2 = resolved
        d1, d2 = shapes[0][a1], shapes[1][a2]
        if d1 is not None and d2 is not None and d1 != d2:
            raise ValueError(
                f"{self._describe()}: incompatible input shapes: axis values {d1} (at axis "
                f"{a1}) != {d2} (at axis {a2}). Full input shapes: {shapes[0]}, {shapes[1]}"
            )
        return a1, a2

    def build(self, input_shape: Any) -> None:
        self._resolved_axes(self._check_list(input_shape))
        self.built = True

    def call(self, inputs: Any) -> Tensor:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._describe()} should be called on a list of 2 inputs. Received: "
                f"inputs of shape {tuple(inputs.shape)} (not a list of tensors)"
            )
        shapes = self._check_list([tuple(x.shape) for x in inputs])
        a1, a2 = self._resolved_axes(shapes)
        x1, x2 = inputs
        if self.normalize:
            x1 = _l2_normalize(x1, a1)
            x2 = _l2_normalize(x2, a2)
        # (batch, rest_1, k) @ (batch, k, rest_2): one batched matmul (BLAS).
        x1 = ops.moveaxis(x1, a1, -1)
        x2 = ops.moveaxis(x2, a2, 1)
        rest1, rest2 = x1.shape[1:-1], x2.shape[2:]
        batch, k = x1.shape[0], x1.shape[-1]
        x1 = ops.reshape(x1, (batch, int(np.prod(rest1)), k))
        x2 = ops.reshape(x2, (batch, k, int(np.prod(rest2))))
        out = ops.matmul(x1, x2)
        out_shape = (batch, *rest1, *rest2)
        if len(out_shape) == 1:
            out_shape = (batch, 1)
        return ops.reshape(out, out_shape)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shapes = self._check_list(input_shape)
        a1, a2 = self._resolved_axes(shapes)
        first = [s for i, s in enumerate(shapes[0]) if i != a1]
        second = [s for i, s in enumerate(shapes[1]) if i not in (0, a2)]
        out = first + second
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Add``: ``add([a, b]) = a + b``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Subtract``: ``subtract([a, b]) = a - b``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Multiply``: the element-wise product."""
    return Multiply(**kwargs)(inputs)


def average(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Average``: the element-wise mean."""
    return Average(**kwargs)(inputs)


def maximum(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Maximum``: the element-wise maximum."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list, **kwargs: Any) -> Tensor:
    """Functional interface to ``Minimum``: the element-wise minimum."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Tensor:
    """Functional interface to ``Concatenate``: join ``inputs`` along ``axis``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: list, axes: int | tuple[int, int] = -1, **kwargs: Any) -> Tensor:
    """Functional interface to ``Dot``: per-sample dot products along ``axes``."""
    return Dot(axes=axes, **kwargs)(inputs)
