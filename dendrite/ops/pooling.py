"""Pooling primitives, channels_last: ``MaxPool`` and ``AvgPool`` over 1-D or 2-D windows,
and Keras' ``max_pool`` / ``average_pool`` ops on them.

With windows of size (ph, pw) moved by strides (sh, sw) over the padded input ``xp``, each
window offset (i, j) reads one strided slab ``xp_ij[n, p, q, c] = xp[n, p sh + i, q sw + j,
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
from dendrite.ops.windows import (
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


def _first_max_routes(slabs: list[np.ndarray], best: np.ndarray) -> list[np.ndarray]:
    """Boolean masks, one per candidate: True where that candidate equals ``best`` and no
    earlier candidate does (so ties go to the first maximum, as in TensorFlow and PyTorch)."""
    if len(slabs) == 2:
        second = np.greater(slabs[1], slabs[0])
        return [np.logical_not(second), second]
    routes = []
    taken = None
    for k, slab in enumerate(slabs):
        hit = np.equal(slab, best)
        if taken is None:
            routes.append(hit)
            taken = hit
        else:
            routes.append(np.greater(hit, taken))  # hit and not taken
            if k < len(slabs) - 1:
                taken = taken | hit
    return routes


def _running_max(slabs: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """The element-wise maximum of the slabs (into ``out`` when given)."""
    if len(slabs) == 1:
        if out is None:
            return slabs[0].copy()
        np.copyto(out, slabs[0])
        return out
    out = np.maximum(slabs[0], slabs[1], out=out)
    for slab in slabs[2:]:
        np.maximum(out, slab, out=out)
    return out


def _tiles(geom: Geometry) -> bool:
    return geom.sh == geom.kh and geom.sw == geom.kw


@register("max_pool")
class MaxPool(Function):
    """Max over each window (see the module docstring). Options: pool, strides (2 ints
    each), padding (((top, bottom), (left, right))).

    When the windows tile the input (strides == pool size, the usual case) the maximum is
    taken separably: first along each window's row (j), then across its rows (i), where
    whole output rows are contiguous; picking the first maximum of the first row that
    holds the window's maximum is exactly the first maximum in row-major order.
    """

    def forward(
        self,
        x: np.ndarray,
        pool: tuple = (2, 2),
        strides: tuple = (2, 2),
        padding: tuple = ((0, 0), (0, 0)),
    ) -> np.ndarray:
        x, one_d, geom = _setup(x, pool, strides, padding, "max_pool")
        xp = pad_spatial(x, padding, fill=-np.inf)
        n, c = xp.shape[0], xp.shape[3]
        record = bool(self.needs_grad)
        out = np.empty((n, geom.oh, geom.ow, c), xp.dtype)
        if _tiles(geom):
            routes = _tiled_max(xp, geom, out, record)
        else:
            slabs = [xp[window(i, j, geom)] for i, j in _offsets(geom)]
            _running_max(slabs, out)
            routes = _first_max_routes(slabs, out) if record else None
        if record:
            self.saved = (routes, xp.shape, x.shape, padding, geom, one_d)
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> np.ndarray:
        routes, xp_shape, x_shape, padding, geom, one_d = self.saved
        if one_d:
            g = g[:, None]
        ph, pw, oh, ow = geom.kh, geom.kw, geom.oh, geom.ow
        exact = _tiles(geom) and oh * ph == xp_shape[1] and ow * pw == xp_shape[2]
        # Windows that tile the input exactly write every element once: no zero fill.
        gx = np.empty(xp_shape, g.dtype) if exact else np.zeros(xp_shape, g.dtype)
        if _tiles(geom):
            _tiled_max_backward(g, routes, gx, geom)
        else:
            disjoint = geom.sh >= ph and geom.sw >= pw
            for route, (i, j) in zip(routes, _offsets(geom)):
                slab = gx[window(i, j, geom)]
                if disjoint:
                    np.multiply(g, route, out=slab)
                else:
                    slab += g * route
        gx = crop_spatial(gx, padding, x_shape)
        return gx[:, 0] if one_d else gx


def _tiled_max(xp: np.ndarray, geom: Geometry, out: np.ndarray, record: bool) -> Any:
    """Separable max of tiling windows into ``out`` (N, oh, ow, C); returns the routes."""
    n, _, _, c = xp.shape
    ph, pw, oh, ow = geom.kh, geom.kw, geom.oh, geom.ow
    # (N, oh ph, ow, pw, C): a view, even when a remainder row/column is cut off.
    cells = xp[:, : oh * ph, : ow * pw].reshape(n, oh * ph, ow, pw, c)
    columns = [cells[:, :, :, j] for j in range(pw)]
    flat = out.reshape(n, oh, ow * c)
    if ph == 1:
        row_max = _running_max(columns, out)
        lines = None
    else:
        row_max = _running_max(columns)  # (N, oh ph, ow, C), contiguous
        rows = row_max.reshape(n, oh, ph, ow * c)
        lines = [rows[:, :, i] for i in range(ph)]
        _running_max(lines, flat)
    if not record:
        return None
    across = _first_max_routes(columns, row_max) if pw > 1 else None
    down = _first_max_routes(lines, flat) if lines is not None else None
    return across, down


def _tiled_max_backward(g: np.ndarray, routes: tuple, gx: np.ndarray, geom: Geometry) -> None:
    across, down = routes
    n, c = gx.shape[0], gx.shape[3]
    ph, pw, oh, ow = geom.kh, geom.kw, geom.oh, geom.ow
    if down is None:
        g_rows = g
    else:
        # Down the window's rows: whole output rows at a time (contiguous runs).
        g_rows = np.empty((n, oh, ph, ow * c), g.dtype)
        flat = g.reshape(n, oh, ow * c)
        for i, route in enumerate(down):
            np.multiply(flat, route, out=g_rows[:, :, i])
        g_rows = g_rows.reshape(n, oh * ph, ow, c)
    cells = gx[:, : oh * ph, : ow * pw].reshape(n, oh * ph, ow, pw, c)
    if across is None:
        cells[:, :, :, 0] = g_rows
    else:
        for j, route in enumerate(across):
            np.multiply(g_rows, route, out=cells[:, :, :, j])


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
        if any(p for pair in padding for p in pair):
            rows = _window_counts(x.shape[1], geom.kh, geom.sh, padding[0], geom.oh)
            cols = _window_counts(x.shape[2], geom.kw, geom.sw, padding[1], geom.ow)
            scale = (1.0 / (rows[:, None] * cols[None, :])).astype(xp.dtype)[..., None]
        else:
            scale = np.asarray(1.0 / (geom.kh * geom.kw), xp.dtype)
        out = xp[window(0, 0, geom)].copy()
        for i, j in _offsets(geom)[1:]:
            out += xp[window(i, j, geom)]
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
    rank = len(inputs.shape) - 2
    if rank == 3:  # pooling3d.py builds on this module, hence the import here
        from dendrite.ops.pooling3d import _pool3d

        return _pool3d(cls, name, inputs, pool_size, strides, padding, data_format)
    data_format = standardize_data_format(data_format)
    padding = standardize_padding(padding)
    if rank not in (1, 2):
        raise ValueError(
            f"{name}: expected an input of rank 3 (1-D), 4 (2-D) or 5 (3-D) including the "
            f"batch and channel axes, got shape {tuple(inputs.shape)}."
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
    """Keras' ``ops.max_pool``: the maximum of each 1-D, 2-D or 3-D window (strides default
    to pool_size)."""
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
