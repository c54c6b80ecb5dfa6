"""3-D max and average pooling as two passes of the 2-D primitives (``dendrite.ops.pooling``):
over height and width, then over depth.

A 3-D window is the product of one window per axis, so both poolings separate. For ``x``
(N, D, H, W, C), windows (pd, ph, pw), strides (sd, sh, sw), 'valid' or 'same' padding:

- max: ``y[n, p, q, r, c] = max_i max_{j, l} xp[n, p sd + i, q sh + j, r sw + l, c]``: the
  2-D max pool of every depth slice, then the max over each depth window of the result
  (its positions (q, r) and channels laid out as the columns of one wide image of height
  D). Ties go to the first maximum in (depth, height, width) order, as in the 3-D
  primitives of TensorFlow and PyTorch: the depth pass picks the first slice holding the
  maximum and the 2-D pass its first maximum in row-major order; 'same' pads with -inf.
- average: ``y = (1 / (n_d n_h n_w)) sum_i sum_{j, l} xp[...]``, with ``n_*`` the window
  positions inside the unpadded input along each axis (Keras/TensorFlow 'same' leaves
  the padding out of the mean): the mean of the 2-D means over the depth window is
  exactly that, as the counts multiply.

The gradients are those of the two passes (each routes or shares ``g`` as its docstring
says).
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Function, Tensor
from dendrite.ops.movement import reshape
from dendrite.ops.pooling import AvgPool, MaxPool
from dendrite.ops.windows import (
    conv_output_length,
    explicit_padding,
    normalize_tuple,
    standardize_data_format,
    standardize_padding,
    to_channels_first,
    to_channels_last,
)


def _pool3d(
    cls: type[Function],
    name: str,
    inputs: Any,
    pool_size: Any,
    strides: Any,
    padding: str,
    data_format: str | None,
) -> Tensor:
    data_format = standardize_data_format(data_format)
    padding = standardize_padding(padding)
    if len(inputs.shape) != 5:
        raise ValueError(
            f"{name}: expected an input of rank 5 (batch, 3 spatial axes, channels), got "
            f"shape {tuple(inputs.shape)}."
        )
    pool = normalize_tuple(pool_size, 3, "pool_size")
    steps = pool if strides is None else normalize_tuple(strides, 3, "strides")
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, 3)
    n, depth, h, w, c = x.shape
    sizes = [conv_output_length(*args) for args in zip((depth, h, w), pool, [padding] * 3, steps)]
    if min(sizes) <= 0:
        raise ValueError(
            f"{name}: the pool size {pool} does not fit the input (spatial size "
            f"{(depth, h, w)}, full shape {tuple(inputs.shape)}); the output would be empty."
        )
    pads = explicit_padding(padding, (depth, h, w), pool, steps, (1, 1, 1))
    slices = cls.apply(
        reshape(x, (n * depth, h, w, c)), pool=pool[1:], strides=steps[1:], padding=pads[1:]
    )
    _, oh, ow, _ = slices.shape
    columns = reshape(slices, (n, depth, 1, oh * ow * c))
    out = cls.apply(columns, pool=(pool[0], 1), strides=(steps[0], 1), padding=(pads[0], (0, 0)))
    out = reshape(out, (n, out.shape[1], oh, ow, c))
    return out if data_format == "channels_last" else to_channels_first(out, 3)


def max_pool3d(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """The maximum of each 3-D window (strides default to pool_size); see the module
    docstring. ``inputs``: (batch, depth, height, width, channels), or channels first."""
    return _pool3d(MaxPool, "max_pool", inputs, pool_size, strides, padding, data_format)


def average_pool3d(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """The mean of each 3-D window, padding left out of the count; see the module
    docstring."""
    return _pool3d(AvgPool, "average_pool", inputs, pool_size, strides, padding, data_format)
