"""Sliding-window machinery shared by the convolution and pooling primitives, channels_last.

- argument handling with Keras' rules and messages: tuples, data formats, padding modes;
- window arithmetic: TensorFlow's 'same' padding ``max((ceil(n/s) - 1) s + (k - 1) d + 1 -
  n, 0)`` in total, the odd pixel at the end; output lengths of (transposed) convolutions;
- raw-array blocks: zero/-inf padding and its crop, the strided slab that one kernel offset
  reads (``window``), ``im2col`` (all windows as the rows of one matrix) and its adjoint
  ``col2im`` (kh * kw slice-adds: no scatter, no loop over pixels);
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dendrite import _native, _settings
from dendrite.core import Tensor
from dendrite.ops._products import product
from dendrite.ops.movement import transpose


class Geometry(NamedTuple):
    """Kernel size, strides, dilation and output size of a 2-D window sweep."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    oh: int
    ow: int


# --- argument helpers (shared with pooling and the layers) --------------------------------
def normalize_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """``value`` (an int or n ints) as a tuple of n ints, each > 0 (>= 0 with allow_zero)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    else:
        try:
            values = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(
                f"The `{name}` argument must be an int or a tuple of {n} integers. "
                f"Received: {name}={value!r}"
            ) from None
        if len(values) != n:
            raise ValueError(
                f"The `{name}` argument must be a tuple of {n} integers. Received: {name}={value!r}"
            )
    lowest = 0 if allow_zero else 1
    if any(v < lowest for v in values):
        condition = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers, each {condition}. "
            f"Received: {name}={value!r}"
        )
    return values


def standardize_data_format(data_format: str | None) -> str:
    """'channels_last' or 'channels_first'; None gives ``image_data_format()`` (Keras'
    global default, 'channels_last' unless changed)."""
    if data_format is None:
        return _settings.image_data_format()
    value = str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            f"The `data_format` argument must be one of 'channels_first', 'channels_last'. "
            f"Received: data_format={data_format!r}"
        )
    return value


def standardize_padding(padding: Any, allow_causal: bool = False) -> str:
    """'valid', 'same' (or 'causal' where allowed), case-insensitive."""
    value = str(padding).lower() if isinstance(padding, str) else padding
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    if value not in allowed:
        raise ValueError(
            f"The `padding` argument must be one of {', '.join(map(repr, allowed))}. "
            f"Received: padding={padding!r}"
        )
    return value


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the odd pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_output_length(
    size: int | None, kernel: int, padding: str, stride: int, dilation: int = 1
) -> int | None:
    """Output length of a convolution (or pooling) window sweep; may be <= 0 (invalid)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    if padding == "causal":
        size = size + effective - 1
    return (size - effective) // stride + 1


def transpose_output_length(
    size: int | None,
    kernel: int,
    padding: str,
    stride: int,
    output_padding: int | None = None,
    dilation: int = 1,
) -> int | None:
    """Output length of a transposed convolution (Keras' formula)."""
    if size is None:
        return None
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        return (size - 1) * stride + effective + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + effective % 2 + output_padding


def explicit_padding(
    padding: Any,
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    """'valid' / 'same' / 'causal' (1-D) as one (before, after) pair per spatial axis."""
    if not isinstance(padding, str):
        pairs = tuple((int(a), int(b)) for a, b in padding)
        if len(pairs) != len(sizes) or any(a < 0 or b < 0 for a, b in pairs):
            raise ValueError(f"Invalid explicit padding {padding!r} for {len(sizes)} axes.")
        return pairs
    mode = padding.lower()
    if mode == "valid":
        return ((0, 0),) * len(sizes)
    if mode == "same":
        return tuple(same_padding(*args) for args in zip(sizes, kernel, strides, dilation))
    if mode == "causal" and len(sizes) == 1:
        return (((kernel[0] - 1) * dilation[0], 0),)
    raise ValueError(f"Unknown padding {padding!r}: expected 'valid', 'same' or 'causal' (1-D).")


# --- raw-array building blocks ------------------------------------------------------------
def pad_spatial(x: np.ndarray, pads: tuple, fill: float = 0.0) -> np.ndarray:
    """``x`` (N, H, W, C) with ``pads`` ((top, bottom), (left, right)) of ``fill`` around it."""
    (pt, pb), (pl, pr) = pads
    if not (pt or pb or pl or pr):
        return x
    n, h, w, c = x.shape
    shape = (n, h + pt + pb, w + pl + pr, c)
    out = np.zeros(shape, x.dtype) if fill == 0 else np.full(shape, fill, x.dtype)
    out[:, pt : pt + h, pl : pl + w] = x
    return out


def crop_spatial(x: np.ndarray, pads: tuple, shape: tuple) -> np.ndarray:
    """The inverse of ``pad_spatial``: the (H, W) window of ``x`` that ``pads`` surround."""
    (pt, _), (pl, _) = pads
    if x.shape[1:3] == tuple(shape[1:3]):
        return x
    return x[:, pt : pt + shape[1], pl : pl + shape[2]]


def kernel_geometry(
    x_shape: tuple, filters: int, geom: Geometry, padding: tuple, outputs: tuple | None = None
) -> tuple[tuple, tuple] | None:
    """A direct convolution's (sizes, steps) as the C kernels take them (csrc/depthwise.c,
    narrow.c, shallow.c, winograd.c), or None when they exceed ``_native.GEOMETRY_LIMIT``:
    sizes (n, h, w, c, filters, kh, kw, oh, ow), with ``outputs`` in place of (oh, ow) when
    given (a pooled output, or Winograd's tiles); steps (sh, sw, dh, dw, pt, pl), the
    unpadded input read as if padded (the padding is never built)."""
    n, h, w, c = x_shape
    oh, ow = (geom.oh, geom.ow) if outputs is None else outputs
    sizes = (n, h, w, c, filters, geom.kh, geom.kw, oh, ow)
    steps = (geom.sh, geom.sw, geom.dh, geom.dw, padding[0][0], padding[1][0])
    return (sizes, steps) if _native.geometry_fits(sizes, steps) else None


def window(i: int, j: int, geom: Geometry, di: int = 0, dj: int = 0, pool: tuple = (1, 1)) -> tuple:
    """The index of the strided slab that kernel offset (i, j) reads, for every output.

    With ``pool`` (ph, pw) the outputs are grouped by their place (di, dj) in a pooling
    window that tiles them: output (ph p + di, pw q + dj) for the (oh, ow) pooled
    positions (p, q)."""
    (ph, pw), (sh, sw) = pool, (geom.sh, geom.sw)
    top, left = di * sh + i * geom.dh, dj * sw + j * geom.dw
    step_h, step_w = ph * sh, pw * sw
    return (
        slice(None),
        slice(top, top + (geom.oh - 1) * step_h + 1, step_h),
        slice(left, left + (geom.ow - 1) * step_w + 1, step_w),
    )


def _offsets(geom: Geometry, pool: tuple) -> list[tuple[int, int, int, int]]:
    """Every (kernel row i, kernel column j, pool row di, pool column dj), the pool's place
    outermost (the order of col2im's sums)."""
    kh, kw, (ph, pw) = geom.kh, geom.kw, pool
    return [
        (i, j, di, dj) for di in range(ph) for dj in range(pw) for i in range(kh) for j in range(kw)
    ]


def im2col(
    xp: np.ndarray, geom: Geometry, ones_column: bool = False, pool: tuple = (1, 1)
) -> np.ndarray:
    """The windows of ``xp`` (N, Hp, Wp, C) as a (N OH OW, kh kw C) matrix, with a last
    column of ones when ``ones_column`` (it multiplies the bias row of a kernel matrix,
    which folds the bias into the product).

    With ``pool`` (ph, pw) the rows are ordered (di, dj, n, p, q): output (ph p + di, pw q
    + dj), so each place in a tiling pooling window is one contiguous block of rows (and
    outputs no pooling window covers are left out); ``geom.oh``, ``geom.ow`` then count
    pooled positions."""
    n, _, _, c = xp.shape
    kh, kw, sh, sw, dh, dw, oh, ow = geom
    ph, pw = pool
    rows, width = ph * pw * n * oh * ow, kh * kw * c
    if kh == kw == sh == sw == ph == pw == 1 and not ones_column:
        return xp[:, :oh, :ow].reshape(rows, width)
    if c < 8:
        # Few channels (a first layer): build the transpose, one contiguous row per kernel
        # offset and channel, copied from a slab in runs of OW values, and return its
        # (Fortran-ordered) transpose view; BLAS takes either order at the same speed.
        matrix_t = np.empty((width + ones_column, rows), xp.dtype)
        by_offset = matrix_t[:width].reshape(kh, kw, c, ph, pw, n, oh, ow)
        for i, j, di, dj in _offsets(geom, pool):
            slab = xp[window(i, j, geom, di, dj, pool)]
            np.copyto(by_offset[i, j, :, di, dj], slab.transpose(3, 0, 1, 2))
        if ones_column:
            matrix_t[width] = 1
        return matrix_t.T
    matrix = np.empty((rows, width + ones_column), xp.dtype)
    # A view, even with the ones column: splitting axes never needs a copy.
    cols = matrix[:, :width].reshape(ph, pw, n, oh, ow, kh, kw, c)
    # One copy through a strided view of all the windows: inner runs of c values.
    s_n, s_h, s_w, s_c = xp.strides
    windows = as_strided(
        xp,
        (ph, pw, n, oh, ow, kh, kw, c),
        (s_h * sh, s_w * sw, s_n, s_h * sh * ph, s_w * sw * pw, s_h * dh, s_w * dw, s_c),
        writeable=False,
    )
    np.copyto(cols, windows)
    if ones_column:
        matrix[:, width] = 1
    return matrix


def col2im(cols: np.ndarray, shape: tuple, geom: Geometry, pool: tuple = (1, 1)) -> np.ndarray:
    """The adjoint of ``im2col`` (same ``pool`` row order): add each kernel offset's column
    block back onto the slab of a zero (N, Hp, Wp, C) array that it was read from, offset
    pool place by pool place, offset by offset (kh * kw * ph * pw slice-adds; the C kernel,
    csrc/col2im.c, does the same adds in the same order, one batch sample at a time)."""
    n, hp, wp, c = shape
    kh, kw, sh, sw, dh, dw, oh, ow = geom
    ph, pw = pool
    if kh == kw == sh == sw == ph == pw == 1 and (oh, ow) == (hp, wp):
        return cols.reshape(shape)
    if _native.usable(cols):
        out = np.empty(shape, cols.dtype)
        sizes = (kh, kw, ph, pw, n, oh, ow, c)
        _native.kernels.col2im(cols, out, sizes, (sh, sw, dh, dw), (hp, wp))
        return out
    blocks = cols.reshape(ph, pw, n, oh, ow, kh, kw, c)
    out = np.zeros(shape, cols.dtype)
    for i, j, di, dj in _offsets(geom, pool):
        out[window(i, j, geom, di, dj, pool)] += blocks[di, dj, :, :, :, i, j]
    return out


def input_grad(
    g2: np.ndarray, kernel: np.ndarray, shape: tuple, geom: Geometry, pool: tuple = (1, 1)
) -> np.ndarray:
    """``col2im(g2 K_2^T)`` for a kernel (kh, kw, C, F): the gradient of a convolution with
    respect to its padded input of ``shape`` (N, Hp, Wp, C); the rows of ``g2`` are ordered
    as ``im2col(..., pool=pool)`` orders them."""
    kh, kw, c, f = kernel.shape
    return col2im(product(g2, kernel.reshape(kh * kw * c, f).T), shape, geom, pool)


def to_channels_last(x: Any, rank: int) -> Tensor:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return transpose(x, (0, *range(2, rank + 2), 1))


def to_channels_first(x: Any, rank: int) -> Tensor:
    """(N, *spatial, C) -> (N, C, *spatial)."""
    return transpose(x, (0, rank + 1, *range(1, rank + 1)))
