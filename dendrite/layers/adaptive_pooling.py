"""Adaptive pooling layers (Keras 3.13+): pool to a fixed output size whatever the input size.

Along a spatial axis of length ``L`` pooled to ``n`` outputs, output ``i`` reduces the
window ``[floor(i L / n), ceil((i + 1) L / n))`` (PyTorch's adaptive windows): its mean
(AdaptiveAveragePooling) or its max (AdaptiveMaxPooling). The maths and its gradients live
in the ops ``keras.ops.adaptive_average_pool`` / ``adaptive_max_pool``
(``dendrite.ops.adaptive_pooling``), which these layers call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.ops.adaptive_pooling import (  # noqa: F401 (adaptive_windows: the exporter's)
    adaptive_average_pool,
    adaptive_max_pool,
    adaptive_pool_axis,
    adaptive_windows,
)
from dendrite.ops.windows import standardize_data_format

_OPS = {"average": adaptive_average_pool, "max": adaptive_max_pool}


class AdaptivePooling(Layer):
    """Shared by the six layers: ``output_size`` (an int or one per spatial axis) and
    ``data_format`` ('channels_last' (batch, spatial..., channels) or 'channels_first');
    None means ``keras.config.image_data_format()``."""

    rank = 2
    reduce = "average"

    def __init__(self, output_size: Any, data_format: str | None = None, **kwargs: Any) -> None:
        name = type(self).__name__
        if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
            sizes = (int(output_size),) * self.rank
        elif isinstance(output_size, (tuple, list)) and len(output_size) == self.rank:
            sizes = tuple(output_size)
        else:
            raise TypeError(
                f"{name}: `output_size` must be an integer or a tuple of {self.rank} integers. "
                f"Received: {output_size!r} of type {type(output_size)}"
            )
        if not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(
                f"{name}: every `output_size` must be a positive integer. Received: "
                f"output_size={output_size!r}"
            )
        super().__init__(**kwargs)
        self.output_size = tuple(int(s) for s in sizes)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _spatial_axes(self) -> list[int]:
        first = 2 if self.data_format == "channels_first" else 1
        return list(range(first, first + self.rank))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        input_shape = tuple(input_shape)
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def call(self, inputs: Tensor) -> Tensor:
        for axis in self._spatial_axes():
            if inputs.shape[axis] < 1:
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}) cannot pool inputs of shape "
                    f"{tuple(inputs.shape)}: spatial axis {axis} is empty."
                )
        return _OPS[self.reduce](inputs, self.output_size, self.data_format)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "output_size": list(self.output_size),
            "data_format": self.data_format,
        }


def _doc(kind: str, rank: int, shape: str) -> str:
    return (
        f"Adaptive {kind} pooling over {rank} spatial axes to ``output_size`` ({shape}): "
        f"see ``dendrite.layers.adaptive_pooling`` for the windows and the maths."
    )


@register_layer
class AdaptiveAveragePooling1D(AdaptivePooling):
    __doc__ = _doc("average", 1, "steps")
    rank, reduce = 1, "average"
    example = {"kwargs": {"output_size": 3}, "input_shape": (2, 7, 2)}


@register_layer
class AdaptiveAveragePooling2D(AdaptivePooling):
    __doc__ = _doc("average", 2, "rows, cols")
    rank, reduce = 2, "average"
    example = {"kwargs": {"output_size": (2, 3)}, "input_shape": (2, 5, 7, 2)}


@register_layer
class AdaptiveAveragePooling3D(AdaptivePooling):
    __doc__ = _doc("average", 3, "depth, rows, cols")
    rank, reduce = 3, "average"
    example = {"kwargs": {"output_size": 2}, "input_shape": (2, 3, 5, 4, 2)}


@register_layer
class AdaptiveMaxPooling1D(AdaptivePooling):
    __doc__ = _doc("max", 1, "steps")
    rank, reduce = 1, "max"
    example = {"kwargs": {"output_size": 3}, "input_shape": (2, 7, 2)}


@register_layer
class AdaptiveMaxPooling2D(AdaptivePooling):
    __doc__ = _doc("max", 2, "rows, cols")
    rank, reduce = 2, "max"
    example = {"kwargs": {"output_size": (2, 3)}, "input_shape": (2, 5, 7, 2)}


@register_layer
class AdaptiveMaxPooling3D(AdaptivePooling):
    __doc__ = _doc("max", 3, "depth, rows, cols")
    rank, reduce = 3, "max"
    example = {"kwargs": {"output_size": 2}, "input_shape": (2, 3, 5, 4, 2)}
