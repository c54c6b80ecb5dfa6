"""The merging layers that work along axes: Concatenate joins a list of tensors along one
axis; Dot takes per-sample dot products along a pair of axes. With their functional forms
``concatenate([a, b])`` and ``dot([a, b], axes)``, which build the layer and call it at
once, as ``keras.layers.concatenate`` does.

Dot, for ``x_1``, ``x_2`` of shape (batch, n) and ``axes=1``:
``y[b, 0] = sum_i x_1[b, i] x_2[b, i]``; with ``normalize=True`` both inputs are first
divided by their L2 norm along the axes (``x / max(||x||, epsilon)``), giving the cosine
similarity.

Masks: Concatenate concatenates the masks, treating an unmasked input as all-True; Dot
drops them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.calling import mask_array
from dendrite.layers.merging_base import _Merge
from dendrite.layers.registry import register_layer


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
        self._concat_shape(self._input_shapes(inputs))
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
            m = mask_array(m)
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
        shapes = self._input_shapes(inputs, "2 inputs")
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


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Tensor:
    """Functional interface to ``Concatenate``: join ``inputs`` along ``axis``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: list, axes: int | tuple[int, int] = -1, **kwargs: Any) -> Tensor:
    """Functional interface to ``Dot``: per-sample dot products along ``axes``."""
    return Dot(axes=axes, **kwargs)(inputs)
