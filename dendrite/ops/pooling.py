"""Pooling primitives, channels_last: ``MaxPool`` and ``AvgPool`` over 1-D or 2-D windows,
and Keras' ``max_pool`` / ``average_pool`` ops on them.

With windows of size (ph, pw) moved by strides (sh, sw) over the padded input ``xp``, each
kernel offset (i, j) reads one strided slab ``xp_ij[n, p, q, c] = xp[n, p sh + i, q sw + j,
c]``, so a pool is a loop over the ph * pw offsets of whole-array operations (never over
pixels):

- max: ``y = max_ij xp_ij``. Its VJP routes ``g`` to the first maximum of each window in
  row-major order (as TensorFlow and PyTorch do): ``dL/dxp_ij += g * [argmax = (i, j)]``.
  'same' padding pads with -inf, so a padded value is never the maximum.
- average: ``y = (sum_ij xp_ij) / count``, where ``count`` counts the window positions
  inside the unpadded input (Keras/TensorFlow 'same' leaves the padding out of the mean);
  ``dL/dxp_ij += g / count``.

A rank-3 input (N, L, C) is the 1-D case (a height of 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops.conv import (
    Geometry,
    crop_spatial,
    explicit_padding,
    normalize_tuple,
    pad_spatial,
    standardize_data_format,
    standardize_padding,
    to_channels_first,
    to_channels_last,
    window,
)


def _setup(x: np.ndarray, pool: tuple, strides: tuple, padding: tuple, op: str) -> tuple:
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a channels_last input of rank 3 (batch, length, channels) or 4 "
            f"(batch, height, width, channels), got shape {x.shape}."
        )
    one_d = x.ndim == 3
    if one_d:
        x = x[:, None]
    (ph, pw), (sh, sw) = pool, strides
    (pt, pb), (pl, pr) = padding
    oh = (x.shape[1] + pt + pb - ph) // sh + 1
    ow = (x.shape[2] + pl + pr - pw) // sw + 1
    if oh <= 0 or ow <= 0:
        size = x.shape[2:3] if one_d else x.shape[1:3]
        raise ValueError(
            f"{op}: the pool size {pool[1:] if one_d else pool} does not fit the input "
            f"(spatial size {size}, full shape {x.shape}); the output would be empty."
        )
    return x, one_d, Geometry(ph, pw, sh, sw, 1, 1, oh, ow)


def _offsets(geom: Geometry) -> list[tuple[int, int]]:
    return [(i, j) for i in range(geom.kh) for j in range(geom.kw)]


@register("max_pool")
class MaxPool(Function):
    """Max over each window (see the module docstring). Options: pool, strides (2 ints
    each), padding (((top, bottom), (left, right)))."""

    def forward(
        self,
        x: np.ndarray,
        pool: tuple = (2, 2),
        strides: tuple = (2, 2),
        padding: tuple = ((0, 0), (0, 0)),
    ) -> np.ndarray:
        x, one_d, geom = _setup(x, pool, strides, padding, "max_pool")
        xp = pad_spatial(x, padding, fill=-np.inf)
        offsets = _offsets(geom)
        out = xp[window(0, 0, geom)].copy()
        for i, j in offsets[1:]:
            np.maximum(out, xp[window(i, j, geom)], out=out)
        if self.needs_grad:
            # Boolean routes: offset k takes the gradient where it holds the window's
            # maximum and no earlier offset does (the first maximum, as TF and PyTorch).
            routes = []
            taken = None
            for k, (i, j) in enumerate(offsets):
                hit = np.equal(xp[window(i, j, geom)], out)
                if taken is None:
                    routes.append(hit)
                    taken = hit.copy() if len(offsets) > 1 else hit
                    continue
                routes.append(np.greater(hit, taken))  # hit and not taken
                if k < len(offsets) - 1:
                    np.logical_or(taken, hit, out=taken)
            self.saved = (routes, xp.shape, x.shape, padding, geom, one_d)
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> np.ndarray:
        routes, xp_shape, x_shape, padding, geom, one_d = self.saved
        if one_d:
            g = g[:, None]
        disjoint = geom.sh >= geom.kh and geom.sw >= geom.kw
        tiled = (
            geom.sh == geom.kh
            and geom.sw == geom.kw
            and geom.oh * geom.sh == xp_shape[1]
            and geom.ow * geom.sw == xp_shape[2]
        )
        # Windows that tile the input exactly write every element once: no zero fill.
        gx = np.empty(xp_shape, g.dtype) if tiled else np.zeros(xp_shape, g.dtype)
        for route, (i, j) in zip(routes, _offsets(geom)):
            slab = gx[window(i, j, geom)]
            if disjoint:
                np.multiply(g, route, out=slab)
            else:
                slab += g * route
        gx = crop_spatial(gx, padding, x_shape)
        return gx[:, 0] if one_d else gx


def _window_counts(size: int, pool: int, stride: int, pad: tuple, out: int) -> np.ndarray:
    """How many positions of each window along one axis fall inside the unpadded input."""
    start = np.arange(out) * stride - pad[0]
    return np.minimum(start + pool, size) - np.maximum(start, 0)


@register("average_pool")
class AvgPool(Function):
    """Mean over each window, padding excluded (see the module docstring)."""

    def forward(
        self,
        x: np.ndarray,
        pool: tuple = (2, 2),
        strides: tuple = (2, 2),
        padding: tuple = ((0, 0), (0, 0)),
    ) -> np.ndarray:
        x, one_d, geom = _setup(x, pool, strides, padding, "average_pool")
        xp = pad_spatial(x, padding)
        out = xp[window(0, 0, geom)].copy()
        for i, j in _offsets(geom)[1:]:
            out += xp[window(i, j, geom)]
        if any(p for pair in padding for p in pair):
            rows = _window_counts(x.shape[1], geom.kh, geom.sh, padding[0], geom.oh)
            cols = _window_counts(x.shape[2], geom.kw, geom.sw, padding[1], geom.ow)
            scale = (1.0 / (rows[:, None] * cols[None, :])).astype(out.dtype)[..., None]
        else:
            scale = np.asarray(1.0 / (geom.kh * geom.kw), out.dtype)
        out *= scale
        if self.needs_grad:
            self.saved = (scale, xp.shape, x.shape, padding, geom, one_d)
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> np.ndarray:
        scale, xp_shape, x_shape, padding, geom, one_d = self.saved
        if one_d:
            g = g[:, None]
        share = g * scale
        gx = np.zeros(xp_shape, share.dtype)
        for i, j in _offsets(geom):
            gx[window(i, j, geom)] += share
        gx = crop_spatial(gx, padding, x_shape)
        return gx[:, 0] if one_d else gx


def _pool(
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
    rank = len(inputs.shape) - 2
    if rank not in (1, 2):
        raise ValueError(
            f"{name}: expected an input of rank 3 (1-D) or 4 (2-D) including the batch and "
            f"channel axes, got shape {tuple(inputs.shape)}."
        )
    pool = normalize_tuple(pool_size, rank, "pool_size")
    steps = pool if strides is None else normalize_tuple(strides, rank, "strides")
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, rank)
    pads = explicit_padding(padding, tuple(x.shape[1:-1]), pool, steps, (1,) * rank)
    if rank == 1:
        pool, steps, pads = (1, *pool), (1, *steps), ((0, 0), *pads)
    out = cls.apply(x, pool=pool, strides=steps, padding=pads)
    return out if data_format == "channels_last" else to_channels_first(out, rank)


def max_pool(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Keras' ``ops.max_pool``: the maximum of each window (strides default to pool_size)."""
    return _pool(MaxPool, "max_pool", inputs, pool_size, strides, padding, data_format)


def average_pool(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Keras' ``ops.average_pool``: the mean of each window, padding left out of the count."""
    return _pool(AvgPool, "average_pool", inputs, pool_size, strides, padding, data_format)
