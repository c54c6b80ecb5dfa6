"""Activation functions as layers, with Keras 3's arguments and defaults: ReLU, LeakyReLU,
PReLU (a learned slope), ELU and Softmax (with a mask).

- ``ReLU(max_value, negative_slope, threshold)``: ``max_value`` for ``x >= max_value``,
  ``x`` for ``threshold <= x < max_value``, ``negative_slope (x - threshold)`` below;
- ``LeakyReLU(negative_slope=0.3)``: ``x`` for ``x >= 0``, ``negative_slope x`` below;
- ``PReLU``: ``max(x, 0) - alpha max(-x, 0)`` with ``alpha`` a weight of the input's
  shape (batch axis excluded; ``shared_axes`` share it along those axes), zeros at first;
- ``ELU(alpha=1.0)``: ``x`` for ``x > 0``, ``alpha (e^x - 1)`` below;
- ``Softmax(axis=-1)``: ``e^x_i / sum_j e^x_j``; a mask (True where a position counts) adds
  -1e9 to the masked logits and zeroes their outputs, as Keras does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.base import ShapePreservingLayer
from dendrite.layers.registry import register_layer


def _relu_general(x: Tensor, max_value: float | None, slope: float, threshold: float) -> Tensor:
    above = ops.cast(ops.greater_equal(x, threshold), x.dtype)
    out = above * x + (1.0 - above) * (slope * (x - threshold)) if slope else above * x
    if max_value is not None:
        out = ops.minimum(out, max_value)
    return out


@register_layer
class ReLU(ShapePreservingLayer):
    """Rectified linear unit with Keras' options (see the module docstring)."""

    example = {"kwargs": {"max_value": 1.5, "negative_slope": 0.1}, "input_shape": (3, 4)}

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(
                f"max_value of a ReLU layer cannot be a negative value. Received: {max_value}"
            )
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(
                f"negative_slope of a ReLU layer cannot be a negative value. Received: "
                f"{negative_slope}"
            )
        if threshold is None or threshold < 0.0:
            raise ValueError(
                f"threshold of a ReLU layer cannot be a negative value. Received: {threshold}"
            )
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def call(self, inputs: Tensor) -> Tensor:
        if self.max_value is None and not self.negative_slope and not self.threshold:
            return ops.relu(inputs)
        return _relu_general(inputs, self.max_value, self.negative_slope, self.threshold)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register_layer
class LeakyReLU(ShapePreservingLayer):
    """``x`` for ``x >= 0``, ``negative_slope x`` otherwise (Keras 3's default slope 0.3;
    the old name ``alpha`` is accepted)."""

    example = {"kwargs": {"negative_slope": 0.2}, "input_shape": (3, 4)}

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                f"The negative_slope value of a Leaky ReLU layer cannot be None or negative "
                f"value. Expected a float. Received: negative_slope={negative_slope}"
            )
        self.negative_slope = float(negative_slope)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


@register_layer
class PReLU(ShapePreservingLayer):
    """Parametric ReLU: ``max(x, 0) - alpha max(-x, 0)`` with a learned ``alpha``."""

    example = {
        "kwargs": {"alpha_initializer": "ones", "shared_axes": [1]},
        "input_shape": (2, 3, 4),
    }

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(a) for a in shared_axes]
        else:
            self.shared_axes = [int(shared_axes)]

    def build(self, input_shape: tuple) -> None:
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis <= len(shape):
                raise ValueError(
                    f"Layer '{self.name}' (PReLU): shared axis {axis} is out of range for "
                    f"inputs of shape {tuple(input_shape)} (axes 1 to {len(shape)})."
                )
            shape[axis - 1] = 1
        if any(s is None for s in shape):
            raise ValueError(
                f"Layer '{self.name}' (PReLU) needs every non-shared axis to be known; "
                f"received input shape {tuple(input_shape)}."
            )
        self.alpha = self.add_weight(
            tuple(shape),
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            name="alpha",
        )
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        expected = tuple(self.alpha.shape)
        if len(inputs.shape) - 1 != len(expected) or any(
            a != 1 and a != s for a, s in zip(expected, inputs.shape[1:])
        ):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"inputs of shape (batch, {', '.join(map(str, expected))}) up to the shared "
                f"axes, received {tuple(inputs.shape)}."
            )
        return ops.relu(inputs) - self.alpha * ops.relu(-inputs)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


@register_layer
class ELU(ShapePreservingLayer):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise."""

    example = {"kwargs": {"alpha": 0.5}, "input_shape": (3, 4)}

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


@register_layer
class Softmax(ShapePreservingLayer):
    """Softmax along ``axis``; masked positions (mask False) get probability 0."""

    example = {"kwargs": {"axis": -1}, "input_shape": (3, 4)}

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs: Tensor, mask: Any = None) -> Tensor:
        if mask is None:
            return ops.softmax(inputs, axis=self.axis)
        keep = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(inputs.dtype)
        while keep.ndim < len(inputs.shape):  # a (batch, steps) mask on (batch, steps, ...)
            keep = keep[..., None]
        logits = inputs + Tensor._make((1.0 - keep) * np.asarray(-1e9, inputs.dtype))
        return ops.softmax(logits, axis=self.axis) * Tensor._make(keep)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
