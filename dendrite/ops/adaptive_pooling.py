"""Adaptive pooling (``keras.ops.adaptive_average_pool`` / ``adaptive_max_pool``): pools to a
fixed output size whatever the input size.

Along a spatial axis of length ``L`` pooled to ``n`` outputs, output ``i`` reduces the
window ``[s_i, e_i) = [floor(i L / n), ceil((i + 1) L / n))`` (PyTorch's adaptive windows,
which Keras' backends all use; they cover the axis, may overlap, and need not be equal,
though their widths differ by at most one):

- average: ``y_i = (1 / (e_i - s_i)) sum_{s_i <= k < e_i} x_k``;
  VJP ``dL/dx_k = sum_{i: s_i <= k < e_i} g_i / (e_i - s_i)``;
- max: ``y_i = max_{s_i <= k < e_i} x_k``; VJP routes ``g_i`` to the window's first
  maximum (``dL/dx_k = sum_{i: k = argmax_i} g_i``, overlapping windows adding up).

A 2-D or 3-D window is the product of one such window per axis, so the ops pool one spatial
axis at a time with the primitive ``AdaptivePoolAxis`` (a mean of means over a rectangle is
the rectangle's mean, and a max of maxes its max). Inputs are (batch, spatial..., channels)
or, with ``data_format="channels_first"``, (batch, channels, spatial...), of rank 3, 4 or
5. The layers ``keras.layers.AdaptiveAveragePooling{1,2,3}D`` /
``AdaptiveMaxPooling{1,2,3}D`` call these ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.creation import cast
from dendrite.ops.windows import standardize_data_format

_REDUCTIONS = ("average", "max")


def adaptive_windows(length: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) of each of ``size`` adaptive windows over ``length`` positions."""
    return [(i * length // size, -(-(i + 1) * length // size)) for i in range(size)]


def _bounds(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(size, dtype=np.int64)
    starts = i * length // size
    ends = -(-(i + 1) * length // size)
    return starts, ends


@register("adaptive_pool_axis")
class AdaptivePoolAxis(Function):
    """``x`` pooled along ``axis`` to ``size`` adaptive windows (see the module docstring).

    The forward pass groups the windows by width (at most two widths), reads each group as
    a strided sliding-window view gathered at the group's starts, and reduces the window
    axis; the backward pass adds the (averaged or routed) gradients back window position
    by window position."""

    def forward(
        self, x: np.ndarray, axis: int = 1, size: int = 1, reduce: str = "average"
    ) -> np.ndarray:
        length = x.shape[axis]
        starts, ends = _bounds(length, size)
        widths = ends - starts
        moved = np.moveaxis(x, axis, -1)
        out = np.empty(moved.shape[:-1] + (size,), dtype=x.dtype)
        positions = np.empty(out.shape, dtype=np.int64) if reduce == "max" else None
        groups = []
        for width in np.unique(widths):
            pick = np.flatnonzero(widths == width)
            windows = np.lib.stride_tricks.sliding_window_view(moved, int(width), axis=-1)
            chosen = windows[..., starts[pick], :]  # (..., len(pick), width)
            if reduce == "average":
                out[..., pick] = chosen.mean(axis=-1)  # float16: float32 partial sums
            else:
                where = chosen.argmax(axis=-1)
                out[..., pick] = np.take_along_axis(chosen, where[..., None], -1)[..., 0]
                positions[..., pick] = where + starts[pick]
            groups.append((int(width), pick))
        self.saved = (x.shape, x.dtype, axis, starts, groups, positions)
        return np.moveaxis(out, -1, axis)

    def backward(self, g: np.ndarray) -> np.ndarray:
        shape, dtype, axis, starts, groups, positions = self.saved
        moved_g = np.moveaxis(g, axis, -1)
        length = shape[axis]
        if positions is not None:  # max: each window's gradient to its first maximum
            rows = int(np.prod(moved_g.shape[:-1], dtype=np.int64))
            flat = (np.arange(rows, dtype=np.int64)[:, None] * length).reshape(
                moved_g.shape[:-1] + (1,)
            ) + positions
            gx = np.bincount(
                flat.ravel(), weights=moved_g.ravel().astype(np.float64), minlength=rows * length
            ).astype(dtype, copy=False)
            gx = gx.reshape(moved_g.shape[:-1] + (length,))
            return np.moveaxis(gx, -1, axis)
        gx = np.zeros(moved_g.shape[:-1] + (length,), dtype=dtype)
        for width, pick in groups:
            share = moved_g[..., pick] / np.asarray(width, dtype)
            for k in range(width):  # the starts of one width are distinct: no collisions
                gx[..., starts[pick] + k] += share
        return np.moveaxis(gx, -1, axis)


def adaptive_pool_axis(x: Any, axis: int, size: int, reduce: str) -> Tensor:
    """``x`` pooled along ``axis`` to ``size`` adaptive windows, by ``reduce`` ("average"
    or "max")."""
    return AdaptivePoolAxis.apply(x, axis=int(axis), size=int(size), reduce=reduce)


def _output_size(output_size: Any, rank: int, op: str) -> tuple[int, ...]:
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(output_size):
        sizes: tuple = (int(output_size),) * rank
    elif isinstance(output_size, (tuple, list)) and len(output_size) == rank:
        sizes = tuple(output_size)
    else:
        raise ValueError(
            f"{op}: `output_size` must be an integer or a tuple/list of {rank} integers for "
            f"inputs with {rank} spatial dimension(s). Received: output_size={output_size!r}"
        )
    if not all(is_int(s) and s > 0 for s in sizes):
        raise ValueError(
            f"{op}: every `output_size` must be a positive integer. Received: "
            f"output_size={output_size!r}"
        )
    return tuple(int(s) for s in sizes)


def _adaptive_pool(
    inputs: Any, output_size: Any, data_format: str | None, reduce: str, op: str
) -> Tensor:
    data_format = standardize_data_format(data_format)
    shape = np.shape(raw(inputs))
    if len(shape) not in (3, 4, 5):
        raise ValueError(
            f"{op}: inputs must have ndim=3, 4 or 5 (batch, spatial dims, channels). "
            f"Received input shape: {shape}."
        )
    rank = len(shape) - 2
    sizes = _output_size(output_size, rank, op)
    first = 2 if data_format == "channels_first" else 1
    x = inputs
    if raw(inputs).dtype.kind not in "f" and reduce == "average":
        x = cast(inputs, _settings.floatx())
    for offset, size in enumerate(sizes):
        axis = first + offset
        if shape[axis] < 1:
            raise ValueError(
                f"{op}: cannot pool inputs of shape {shape}: spatial axis {axis} is empty."
            )
        x = adaptive_pool_axis(x, axis, size, reduce)
    return x


def adaptive_average_pool(inputs: Any, output_size: Any, data_format: str | None = None) -> Tensor:
    """Average pooling to ``output_size`` (an int, or one per spatial axis) over adaptive
    windows (see the module docstring); rank 3, 4 or 5 inputs."""
    return _adaptive_pool(inputs, output_size, data_format, "average", "adaptive_average_pool")


def adaptive_max_pool(inputs: Any, output_size: Any, data_format: str | None = None) -> Tensor:
    """Max pooling to ``output_size`` (an int, or one per spatial axis) over adaptive
    windows (see the module docstring); rank 3, 4 or 5 inputs."""
    return _adaptive_pool(inputs, output_size, data_format, "max", "adaptive_max_pool")
