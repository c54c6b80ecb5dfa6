"""Keras 3's ContrastLimitedAdaptiveHistogramEqualization (CLAHE): histogram equalization
computed per tile of a grid, with each histogram's peaks clipped, and the tiles' lookup
tables blended bilinearly so that no tile boundary shows.

Images are (batch, H, W, C) or one image (H, W, C) (``data_format="channels_first"``: the
channels before H and W), values in ``value_range`` = (low, high), default (0, 255). Each
channel of each image is handled on its own. The maths, as Keras 3.15 computes it (in
float32):

1. Scale: ``u = 255 (x - low) / (high - low)`` (skipped, ``u = x`` in its own dtype, when
   ``value_range`` is (0, 255)).
2. Tiles: with the grid ``(gh, gw)`` = ``tile_grid_size``, a tile is
   ``th = ceil(H / gh)`` rows by ``tw = ceil(W / gw)`` columns; the image is padded at the
   bottom and right to ``(gh th, gw tw)`` by symmetric reflection (``d c b a | a b c d |
   d c b a``, the edge pixel repeated). The grid need not divide the image.
3. Histograms: tile ``(i, j)`` counts ``n_k``, k = 0..255, of its ``N = th tw`` levels
   ``q = clip(trunc(u), 0, 255)``.
4. Clip: when ``clip_limit > 0``, with ``l = trunc(clip_limit N / 256)``, each count
   becomes ``min(n_k, l) + E / 256`` with ``E = sum_k max(n_k - l, 0)`` (one
   redistribution pass; the total stays N). ``clip_limit <= 0`` (or infinite) clips
   nothing: plain adaptive equalization. The limit is an integer because Keras' histograms
   are integer counts on its PyTorch backend (the reference here); on TensorFlow they are
   float32 and ``l`` keeps its fraction. The two agree whenever ``clip_limit N / 256`` is
   an integer (the defaults on 256 x 256 images: ``l = 16``); otherwise the PyTorch rule
   clips harder, and ``l = 0`` (``clip_limit N < 256``) flattens every histogram, which
   leaves ``T_k = k``: the image comes back as its levels. ``clahe(...,
   integer_limit=False)`` computes the TensorFlow variant.
5. Tables: ``c_k = sum_(m <= k) n_m``, ``T_k = clip(255 (c_k - c_0) / (N - c_0), 0, 255)``
   (the denominator 1 where it is 0; note ``c_0`` is the first bin's count, empty or not).
6. Blend: tile centres sit at ``(i + 1/2) th``; with ``gy = (y - th / 2) / th`` and
   ``gx = (x - tw / 2) / tw``, a pixel's four nearest centres are rows
   ``floor(gy), floor(gy) + 1`` and columns ``floor(gx), floor(gx) + 1`` (indices clamped to
   the grid, so the border half-tiles use the edge tiles' tables), with weights
   ``wy = gy - floor(gy)``, ``wx = gx - floor(gx)``:
   ``v = (1 - wy)((1 - wx) T00[q] + wx T01[q]) + wy((1 - wx) T10[q] + wx T11[q])``.
7. Back: ``y = low + (high - low) v / 255`` (skipped for (0, 255)), cast to the input's
   dtype: uint8 and other integer images come back as such (truncated), float images as
   the layer's float dtype.

As in Keras, the layer acts in training *and* in inference (``training`` is ignored: it
is a deterministic preprocessing step, applied by ``predict`` too). The output depends on
the input only through the integer levels ``q``: it is piecewise constant, so no gradient
reaches the input (the output is a constant of the graph).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.augmentation import _data_format, _ImageLayer
from dendrite.layers.registry import register_layer

_LEVELS = 256
_F32 = np.float32


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _check_value_range(value_range: Any, layer: str) -> list[float]:
    """Two finite, different numbers, kept in their order (Keras does not sort them: a
    reversed range maps ``low`` to 255 and so inverts the tones it equalizes)."""
    if (
        not isinstance(value_range, (list, tuple))
        or len(value_range) != 2
        or not all(_number(v) and math.isfinite(v) for v in value_range)
        or float(value_range[0]) == float(value_range[1])
    ):
        raise ValueError(
            f"{layer}: `value_range` must be a list or tuple of two different finite numbers "
            f"(low, high); received value_range={value_range!r}."
        )
    return [float(v) for v in value_range]


def _check_clip_limit(clip_limit: Any, layer: str) -> float:
    """A number, not NaN; zero or below disables the clipping (as in Keras)."""
    if not _number(clip_limit) or math.isnan(clip_limit):
        raise ValueError(
            f"{layer}: `clip_limit` must be a number (<= 0 disables the clipping); "
            f"received clip_limit={clip_limit!r}."
        )
    return float(clip_limit)


def _check_grid(tile_grid_size: Any, layer: str) -> tuple[int, int]:
    """Two positive integers (rows, columns); they need not divide the image."""
    if (
        not isinstance(tile_grid_size, (list, tuple))
        or len(tile_grid_size) != 2
        or not all(
            not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v > 0
            for v in tile_grid_size
        )
    ):
        raise ValueError(
            f"{layer}: `tile_grid_size` must be a list or tuple of two positive integers "
            f"(rows, columns); received tile_grid_size={tile_grid_size!r}."
        )
    return int(tile_grid_size[0]), int(tile_grid_size[1])


def _to_u8(x: np.ndarray, source: list[float]) -> np.ndarray:
    """Keras' ``_transform_value_range`` to (0, 255), in float32 (``x`` as it is when the
    range already is (0, 255))."""
    low, high = source
    if low == 0.0 and high == 255.0:
        return x
    unit = (x.astype(_F32) - _F32(low)) / (_F32(high) - _F32(low))
    return unit * _F32(255.0) + _F32(0.0)


def _from_u8(v: np.ndarray, target: list[float]) -> np.ndarray:
    low, high = target
    if low == 0.0 and high == 255.0:
        return v
    unit = (v - _F32(0.0)) / _F32(255.0)
    return unit * (_F32(high) - _F32(low)) + _F32(low)


def _tables(
    levels: np.ndarray, grid: tuple[int, int], clip_limit: float, integer_limit: bool
) -> np.ndarray:
    """Each tile's lookup table (steps 2 to 5): ``levels`` (n, H, W, C) int64 in [0, 255]
    gives (n, gh, gw, C, 256) float32."""
    n, h, w, c = levels.shape
    gh, gw = grid
    th, tw = -(-h // gh), -(-w // gw)
    padded = levels
    if th * gh != h or tw * gw != w:
        padded = np.pad(levels, [(0, 0), (0, th * gh - h), (0, tw * gw - w), (0, 0)], "symmetric")
    tiles = padded.reshape(n, gh, th, gw, tw, c).transpose(0, 1, 3, 5, 2, 4)
    tiles = tiles.reshape(n * gh * gw * c, th * tw)
    offsets = (np.arange(n * gh * gw * c) * _LEVELS)[:, None]
    counts = np.bincount((tiles + offsets).ravel(), minlength=n * gh * gw * c * _LEVELS)
    counts = counts.reshape(n, gh, gw, c, _LEVELS)
    size = th * tw
    hist = counts.astype(_F32)
    if clip_limit > 0 and math.isfinite(clip_limit):
        if integer_limit:  # Keras on PyTorch: int64 counts, the limit cast to int64
            clipped = np.minimum(counts, int(clip_limit * size / 256.0))
            excess = np.sum(counts - clipped, axis=-1, keepdims=True)
            hist = clipped.astype(_F32) + excess.astype(_F32) / _F32(256.0)
        else:  # Keras on TensorFlow: float32 counts and limit
            limit = _F32(clip_limit * size / 256.0)
            clipped = np.minimum(hist, limit)
            excess = np.sum((hist - clipped).astype(np.float64), axis=-1, keepdims=True)
            hist = clipped + excess.astype(_F32) / _F32(256.0)
    # float32 values accumulated in float64, as PyTorch's CPU cumsum does
    cdf = np.cumsum(hist.astype(np.float64), axis=-1).astype(_F32)
    first = cdf[..., :1]
    denominator = _F32(size) - first
    denominator = np.where(denominator == 0, _F32(1.0), denominator)
    return np.clip((cdf - first) * _F32(255.0) / denominator, 0, 255).astype(_F32)


def _axis(length: int, tile: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 6 along one axis: the two tiles around each position (clamped) and the weight
    of the second, in float32 as Keras."""
    g = (np.arange(length, dtype=_F32) - _F32(tile / 2.0)) / _F32(tile) + _F32(1.0)
    first = np.floor(g)
    weight = g - first
    lo = np.clip(first.astype(np.int64) - 1, 0, count - 1)
    hi = np.clip(first.astype(np.int64), 0, count - 1)
    return lo, hi, weight


def clahe(
    u: np.ndarray, grid: tuple[int, int], clip_limit: float, integer_limit: bool = True
) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization of channels-last images ``u``
    (n, H, W, C) whose values are on the [0, 255] scale (steps 2 to 6 of the module
    docstring), as float32. ``integer_limit``: the clip limit truncated to an integer, as
    Keras on PyTorch (the layer's rule); False keeps it fractional, as Keras on
    TensorFlow."""
    n, h, w, c = u.shape
    levels = np.clip(np.trunc(u.astype(np.float64)), 0, _LEVELS - 1).astype(np.int64)
    tables = _tables(levels, grid, clip_limit, integer_limit)
    gh, gw = grid
    y0, y1, wy = _axis(h, -(-h // gh), gh)
    x0, x1, wx = _axis(w, -(-w // gw), gw)
    b = np.arange(n)[:, None, None, None]
    ch = np.arange(c)[None, None, None, :]
    ry0, ry1 = y0[None, :, None, None], y1[None, :, None, None]
    cx0, cx1 = x0[None, None, :, None], x1[None, None, :, None]
    wy, wx = wy[None, :, None, None], wx[None, None, :, None]
    nw = tables[b, ry0, cx0, ch, levels]
    ne = tables[b, ry0, cx1, ch, levels]
    sw = tables[b, ry1, cx0, ch, levels]
    se = tables[b, ry1, cx1, ch, levels]
    one = _F32(1.0)
    top = nw * (one - wx) + ne * wx
    bottom = sw * (one - wx) + se * wx
    return top * (one - wy) + bottom * wy


@register_layer
class ContrastLimitedAdaptiveHistogramEqualization(_ImageLayer):
    """Contrast-limited adaptive histogram equalization (see the module docstring): per
    tile and channel, equalization with clipped histograms, tiles blended bilinearly.

    Applied in training and inference alike (``training`` is ignored, as in Keras). No
    gradient: the output is piecewise constant in the input.

    Args:
        value_range: (low, high) of the images' values (default (0, 255)); kept in order.
        clip_limit: a histogram bin holds at most ``clip_limit`` times the mean count
            (``tile pixels / 256``), the excess spread evenly over all bins (default 4.0);
            zero or below disables the clipping.
        tile_grid_size: (rows, columns) of tiles (default (8, 8)); the image is padded by
            reflection at the bottom and right when they do not divide it.
        data_format: "channels_last" or "channels_first" (default: the configured one).
    """

    example = {
        "kwargs": {"value_range": (0, 255), "clip_limit": 2.0, "tile_grid_size": (2, 3)},
        "input_shape": (2, 6, 7, 3),
        "input_range": (0, 255),
    }
    # integer images come back in their own dtype (also when the output is not run)
    keeps_input_dtype = True

    def __init__(
        self,
        value_range: Any = (0, 255),
        clip_limit: float = 4.0,
        tile_grid_size: Any = (8, 8),
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        self.value_range = _check_value_range(value_range, name)
        self.clip_limit = _check_clip_limit(clip_limit, name)
        self.tile_grid_size = _check_grid(tile_grid_size, name)
        self.data_format = _data_format(data_format, name)

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        shape = tuple(inputs.shape)
        if len(shape) not in (3, 4):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects images of rank 3 "
                f"(one image) or 4 (a batch), received input of shape {shape}."
            )
        x = np.asarray(inputs.data)
        dtype = x.dtype if x.dtype.kind != "f" else np.dtype(self.dtype)
        if self.data_format == "channels_first":
            x = np.moveaxis(x, -3, -1)
        single = x.ndim == 3
        if single:
            x = x[None]
        v = clahe(_to_u8(x, self.value_range), self.tile_grid_size, self.clip_limit)
        out = _from_u8(v, self.value_range)
        if dtype.kind in "iu":
            out = np.trunc(out)  # Keras' cast: toward zero
        out = out.astype(dtype)
        if single:
            out = out[0]
        if self.data_format == "channels_first":
            out = np.moveaxis(out, -1, -3)
        return Tensor._make(np.ascontiguousarray(out))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "value_range": list(self.value_range),
            "clip_limit": self.clip_limit,
            "tile_grid_size": list(self.tile_grid_size),
            "data_format": self.data_format,
        }
