"""Merging layers: combine a list of tensors into one.

Element-wise (all inputs broadcast to one shape; inputs of lower rank get size-1 axes
inserted after the batch axis, as in Keras): Add ``y = sum_i x_i``, Subtract
``y = x_1 - x_2``, Multiply ``y = prod_i x_i``, Average ``y = (1/n) sum_i x_i``, Maximum
``y = max_i x_i``, Minimum ``y = min_i x_i``. Concatenate joins along an axis; Dot takes
per-sample dot products along given axes (both in ``dendrite.layers.merging_axes``, and
importable from here too, as is their base in ``dendrite.layers.merging_base``). The
lower-case functions (``add([a, b])``, ...) build the layer and call it at once, as
``keras.layers.add`` does.

Masks: the element-wise layers OR the input masks (when every input has one);
Concatenate concatenates the masks, treating an unmasked input as all-True; Dot drops them.
"""

from __future__ import annotations

import functools
from typing import Any

from dendrite import ops
from dendrite.core import Tensor

# Concatenate and Dot have their own module; they stay importable from here.
from dendrite.layers.merging_axes import Concatenate as Concatenate
from dendrite.layers.merging_axes import Dot as Dot
from dendrite.layers.merging_axes import concatenate as concatenate
from dendrite.layers.merging_axes import dot as dot
from dendrite.layers.merging_base import _Merge
from dendrite.layers.registry import register_layer


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
