"""Reshaping layers for sequences, images and volumes: ZeroPadding1D/2D/3D,
Cropping1D/2D/3D, UpSampling1D/2D/3D, Permute, RepeatVector.

All are compositions of differentiable ops (pad, slicing, broadcast, matmul, transpose),
so their gradients come for free:

- ZeroPadding: ``y = x`` surrounded by zeros (the gradient is the matching crop of ``g``);
- Cropping: ``y = x[..., a : n - b, ...]`` (the gradient pads ``g`` back with zeros);
- UpSampling 'nearest': ``y[t] = x[floor(t / s)]`` (a broadcast; the gradient sums each
  block of s); 'bilinear' (2-D): ``y = A_h x A_w^T`` per channel with the interpolation
  matrices of half-pixel centres (TensorFlow's and PyTorch's ``align_corners=False``);
- Permute: ``y = transpose(x, (0, *dims))``; RepeatVector: ``y[n, r, f] = x[n, f]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.ops.windows import normalize_tuple, standardize_data_format


def _pairs(value: Any, rank: int, name: str, cls: str) -> tuple[tuple[int, int], ...]:
    """An int, ``rank`` ints (symmetric) or ``rank`` (before, after) pairs -> pairs."""
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"`{name}` cannot be negative. Received: {name}={value}.")
        return ((int(value), int(value)),) * rank
    if rank == 1:
        before, after = normalize_tuple(value, 2, name, allow_zero=True)
        return ((before, after),)
    if not hasattr(value, "__len__") or len(value) != rank:
        raise ValueError(
            f"`{name}` of {cls} should be an int, a tuple of {rank} ints, or a tuple of "
            f"{rank} tuples of 2 ints. Received: {name}={value!r}."
        )
    return tuple(
        normalize_tuple(item, 2, f"entry {i} of {name}", allow_zero=True)
        for i, item in enumerate(value)
    )


class _Spatial(Layer):
    """A layer acting on the ``rank`` spatial axes of a rank ``rank + 2`` input."""

    keeps_input_dtype = True

    rank = 2

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _spatial_axes(self) -> tuple[int, ...]:
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.rank))


class _ZeroPadding(_Spatial):
    """Adds rows/columns of zeros: ``padding`` (before, after) per spatial axis."""

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs(padding, self.rank, "padding", type(self).__name__)

    def call(self, inputs: Tensor) -> Tensor:
        widths = [(0, 0)] * (self.rank + 2)
        for axis, pair in zip(self._spatial_axes(), self.padding):
            widths[axis] = pair
        return ops.pad(inputs, widths)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        for axis, (a, b) in zip(self._spatial_axes(), self.padding):
            shape[axis] = None if shape[axis] is None else shape[axis] + a + b
        return tuple(shape)

    def get_config(self) -> dict:
        padding = self.padding[0] if self.rank == 1 else self.padding
        return {**super().get_config(), "padding": padding, "data_format": self.data_format}


@register_layer
class ZeroPadding1D(_ZeroPadding):
    """Zeros at the start and end of the steps axis. ``padding``: an int or (left, right)."""

    rank = 1
    example = {"kwargs": {"padding": (1, 2)}, "input_shape": (2, 3, 4)}


@register_layer
class ZeroPadding2D(_ZeroPadding):
    """Zeros around images. ``padding``: an int, (symmetric_height, symmetric_width), or
    ((top, bottom), (left, right))."""

    rank = 2
    example = {"kwargs": {"padding": ((1, 0), (2, 1))}, "input_shape": (2, 3, 3, 2)}


@register_layer
class ZeroPadding3D(_ZeroPadding):
    """Zeros around volumes (batch, depth, height, width, channels). ``padding``: an int,
    3 ints (symmetric per axis), or ((before, after),) * 3; Keras' default pads one on each
    side of every axis."""

    rank = 3
    example = {"kwargs": {"padding": ((1, 0), 2, (0, 1))}, "input_shape": (2, 2, 3, 2, 2)}

    def __init__(
        self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(padding, data_format=data_format, **kwargs)


class _Cropping(_Spatial):
    """Removes ``cropping`` (before, after) elements from each spatial axis."""

    def __init__(self, cropping: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs(cropping, self.rank, "cropping", type(self).__name__)

    def build(self, input_shape: tuple) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) == self.rank + 2:
            for axis, (a, b) in zip(self._spatial_axes(), self.cropping):
                if input_shape[axis] is not None and a + b >= input_shape[axis]:
                    raise ValueError(
                        f"`cropping` parameter of {type(self).__name__} layer '{self.name}' "
                        f"must be smaller than the input shape. Received: inputs.shape="
                        f"{input_shape}, and cropping={self.cropping}"
                    )
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        index = [slice(None)] * (self.rank + 2)
        for axis, (a, b) in zip(self._spatial_axes(), self.cropping):
            index[axis] = slice(a, inputs.shape[axis] - b)
        return ops.getitem(inputs, tuple(index))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        for axis, (a, b) in zip(self._spatial_axes(), self.cropping):
            shape[axis] = None if shape[axis] is None else shape[axis] - a - b
        return tuple(shape)

    def get_config(self) -> dict:
        cropping = self.cropping[0] if self.rank == 1 else self.cropping
        return {**super().get_config(), "cropping": cropping, "data_format": self.data_format}


@register_layer
class Cropping1D(_Cropping):
    """Crops the steps axis of (batch, steps, features). ``cropping``: an int or
    (start, end)."""

    rank = 1
    example = {"kwargs": {"cropping": (1, 2)}, "input_shape": (2, 6, 3)}

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any) -> None:
        super().__init__(cropping, **kwargs)


@register_layer
class Cropping2D(_Cropping):
    """Crops images. ``cropping``: an int, (symmetric_height, symmetric_width), or
    ((top, bottom), (left, right))."""

    rank = 2
    example = {"kwargs": {"cropping": ((1, 0), (1, 2))}, "input_shape": (2, 4, 5, 2)}

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), **kwargs: Any) -> None:
        super().__init__(cropping, **kwargs)


@register_layer
class Cropping3D(_Cropping):
    """Crops volumes (batch, depth, height, width, channels). ``cropping``: an int, 3 ints
    (symmetric per axis), or ((before, after),) * 3; Keras' default crops one from each side
    of every axis."""

    rank = 3
    example = {"kwargs": {"cropping": ((1, 0), 1, (0, 2))}, "input_shape": (2, 3, 4, 5, 2)}

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), **kwargs: Any) -> None:
        super().__init__(cropping, **kwargs)


def _nearest(x: Tensor, axes: tuple[int, ...], sizes: tuple[int, ...]) -> Tensor:
    """Repeat every element ``sizes[k]`` times along ``axes[k]``: a broadcast and reshape."""
    shape = list(x.shape)
    expanded, target, final = [], [], []
    for axis, n in enumerate(shape):
        expanded.append(n)
        target.append(n)
        final.append(n)
        if axis in axes:
            size = sizes[axes.index(axis)]
            expanded.append(1)
            target.append(size)
            final[-1] = n * size
    out = ops.broadcast_to(ops.reshape(x, tuple(expanded)), tuple(target))
    return ops.reshape(out, tuple(final))


def _bilinear_matrix(size: int, scale: int, dtype: Any) -> np.ndarray:
    """(size * scale, size) weights of half-pixel-centre linear interpolation."""
    out = size * scale
    source = np.maximum((np.arange(out) + 0.5) / scale - 0.5, 0.0)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, size - 1)
    frac = source - lower
    matrix = np.zeros((out, size))
    np.add.at(matrix, (np.arange(out), lower), 1.0 - frac)
    np.add.at(matrix, (np.arange(out), upper), frac)
    return matrix.astype(dtype)


@register_layer
class UpSampling1D(Layer):
    """Repeats each step ``size`` times: (batch, steps, features) -> (batch, steps * size,
    features)."""

    keeps_input_dtype = True

    example = {"kwargs": {"size": 3}, "input_shape": (2, 4, 3)}

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 1, "size")[0]
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs: Tensor) -> Tensor:
        return _nearest(inputs, (1,), (self.size,))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        steps = None if input_shape[1] is None else input_shape[1] * self.size
        return (input_shape[0], steps, input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size}


@register_layer
class UpSampling2D(_Spatial):
    """Enlarges images by ``size`` = (rows, cols) factors.

    Args:
        size: an int or 2 ints.
        data_format: 'channels_last' (default) or 'channels_first'.
        interpolation: 'nearest' (repeat rows and columns) or 'bilinear' (half-pixel
            centres, as TensorFlow's resize and PyTorch's ``align_corners=False``).
    """

    rank = 2
    example = {"kwargs": {"size": (2, 3), "interpolation": "bilinear"}, "input_shape": (2, 3, 2, 2)}

    def __init__(
        self,
        size: Any = (2, 2),
        data_format: str | None = None,
        interpolation: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.size = normalize_tuple(size, 2, "size")
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in ("nearest", "bilinear"):
            raise ValueError(
                f"UpSampling2D supports interpolation 'nearest' and 'bilinear'. Received: "
                f"interpolation={interpolation!r}."
            )

    def call(self, inputs: Tensor) -> Tensor:
        if self.interpolation == "nearest":
            return _nearest(inputs, self._spatial_axes(), self.size)
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        n, h, w, c = x.shape
        rows = _bilinear_matrix(h, self.size[0], x.dtype)
        cols = _bilinear_matrix(w, self.size[1], x.dtype)
        y = ops.matmul(rows, ops.reshape(x, (n, h, w * c)))  # (n, H, w c)
        y = ops.matmul(cols, ops.reshape(y, (n * h * self.size[0], w, c)))  # (n H, W, c)
        y = ops.reshape(y, (n, h * self.size[0], w * self.size[1], c))
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 3, 1, 2))
        return y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        for axis, size in zip(self._spatial_axes(), self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * size
        return tuple(shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "size": self.size,
            "data_format": self.data_format,
            "interpolation": self.interpolation,
        }


@register_layer
class UpSampling3D(_Spatial):
    """Enlarges volumes by ``size`` = (depth, rows, cols) factors, repeating each element:
    ``y[n, d, h, w, c] = x[n, floor(d / s_d), floor(h / s_h), floor(w / s_w), c]`` (the
    gradient sums each block of s_d s_h s_w).

    Args:
        size: an int or 3 ints.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    rank = 3
    example = {"kwargs": {"size": (2, 1, 3)}, "input_shape": (2, 2, 3, 2, 2)}

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format=data_format, **kwargs)
        self.size = normalize_tuple(size, 3, "size")

    def call(self, inputs: Tensor) -> Tensor:
        return _nearest(inputs, self._spatial_axes(), self.size)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        for axis, size in zip(self._spatial_axes(), self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * size
        return tuple(shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


@register_layer
class Permute(Layer):
    """Permutes the non-batch axes: ``dims`` is a permutation of 1..rank-1 (1-indexed,
    as in Keras), e.g. ``Permute((2, 1))`` swaps the two axes of (batch, a, b)."""

    keeps_input_dtype = True

    example = {"kwargs": {"dims": (2, 1)}, "input_shape": (2, 3, 4)}

    def __init__(self, dims: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"Invalid permutation argument `dims` for Permute Layer. The set of indices "
                f"in `dims` must be consecutive and start from 1. Received dims={dims}"
            )
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": self.dims}


@register_layer
class RepeatVector(Layer):
    """Repeats a (batch, features) input ``n`` times: (batch, n, features)."""

    keeps_input_dtype = True

    example = {"kwargs": {"n": 3}, "input_shape": (2, 4)}

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise TypeError(f"Expected an integer value > 0 for `n` of RepeatVector. Got {n!r}.")
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs: Tensor) -> Tensor:
        batch, features = inputs.shape
        return ops.broadcast_to(ops.expand_dims(inputs, 1), (batch, self.n, features))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}
