"""The convolution primitive, channels_last: ``Conv`` (1-D and 2-D; a 1-D input is a 2-D one
of height 1), with its grouped and depthwise paths, and the Keras ops built on it
(``conv``, ``depthwise_conv``, ``separable_conv``). Transposed convolution
(``ConvTranspose``, ``conv_transpose``) is in ``dendrite.ops.conv_transposed`` and the
argument checks the primitives share in ``dendrite.ops.conv_common``; their names are
importable from here too.

A convolution layer computes a cross-correlation (as Keras and every framework do). With
``x`` zero-padded to ``xp`` of shape (N, Hp, Wp, C), a kernel ``K`` of shape
(kh, kw, C, F) (Keras' layout), strides ``s`` and dilation ``d``:

    y[n, p, q, f] = b[f] + sum_{i, j, c} xp[n, p s_h + i d_h, q s_w + j d_w, c] K[i, j, c, f]

**im2col.** The windows of ``xp`` are read through a strided view (no copy) and laid out
once as the rows of ``X = cols(xp)`` of shape (N OH OW, kh kw C); then the whole batch is
ONE matrix product ``Y = X K_2 + b`` with ``K_2 = K.reshape(kh kw C, F)`` (BLAS), and ``Y``
reshapes to (N, OH, OW, F) without a transpose. The bias usually rides inside the product:
``[X 1] [K_2; b]`` (a column of ones, a bias row), which saves a pass over ``Y``.

**VJP.** With ``G = dL/dY`` of shape (N OH OW, F) (times ``[Y > 0]`` after a fused ReLU):

- ``dL/dK_2 = X^T G`` (one product); ``dL/db = sum_rows G``, the last row of
  ``[X 1]^T G`` when the bias is folded in;
- ``dL/dX = G K_2^T``, and ``dL/dxp`` is its col2im: every kernel offset (i, j) read a
  strided slab of ``xp``, so its column block is added back onto that slab, kh * kw
  slice-adds in all (no scatter, no loop over pixels); the padding is then cropped.

**3x3, stride 1** (from ``winograd.MIN_CHANNELS`` channels and ``MIN_FILTERS`` filters,
the kernels loaded): Winograd's F(2x2, 3x3) (``dendrite.ops.winograd``), 16 products at an
inner axis of C over 2x2 output tiles in place of the product at 9 C, 2.25 times fewer
multiplications; within float rounding of the im2col path.

**Few filters** (at most ``_NARROW_MAX_FILTERS``, and at most 1/``_NARROW`` of the
window's columns): csrc/narrow.c, one dot product per output, no window matrix.

**Groups** split the C input channels and F filters into ``groups`` contiguous blocks
convolved separately (a loop over the few groups); when every group holds one input
channel (depthwise) the sum runs over kernel offsets as whole-array products instead.

**Transposed convolution** is the input-gradient above run as a forward pass (see
``dendrite.ops.conv_transposed``).

Padding follows Keras (TensorFlow): 'same' pads ``max((ceil(n/s) - 1) s + (k - 1) d + 1 - n,
0)`` in total, the odd pixel at the end; 'causal' (1-D) pads ``(k - 1) d`` at the start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Function, Tensor, register
from dendrite.ops import winograd
from dendrite.ops._products import product
from dendrite.ops._util import sum_rows
from dendrite.ops.conv_common import (
    _finish,
    _relu_mask,
    as_2d,
    checked_output_size,
    spatial_rank,
)

# Transposed convolution has its own module; its names stay importable from here.
from dendrite.ops.conv_transposed import ConvTranspose as ConvTranspose
from dendrite.ops.conv_transposed import conv_transpose as conv_transpose
from dendrite.ops.conv_transposed import fused_conv_transpose as fused_conv_transpose
from dendrite.ops.movement import reshape
from dendrite.ops.windows import (
    Geometry,
    col2im,
    crop_spatial,
    explicit_padding,
    im2col,
    input_grad,
    kernel_geometry,
    normalize_tuple,
    pad_spatial,
    standardize_data_format,
    to_channels_first,
    to_channels_last,
    window,
)

# --- the primitives -----------------------------------------------------------------------
# Products with at most this many columns (kh kw C) fold the bias into the kernel matrix.
_FOLD_BIAS_WIDTH = 512
# Values per chunk of samples in the chunked paths (256 KiB of float32: well inside a
# core's L2 cache with the chunk's other arrays).
_CHUNK_VALUES = 1 << 16
# A convolution with at most 1/_NARROW of its window columns as filters, and a window
# matrix of more than _NARROW_FROM values, builds that matrix a chunk at a time.
_NARROW = 8
_NARROW_FROM = 1 << 20
# ... and at most this many filters: one dot product per output loses to BLAS beyond it
# (batch 32, 28x28, 'same', forward + backward: 5x5 64 -> 16 filters 74 ms narrow against
# 95 im2col, 64 -> 24 123 against 112; 1x1 256 -> 32 38 against 22).
_NARROW_MAX_FILTERS = 16


@register("conv")
class Conv(Function):
    """Fused ``relu?(conv(x, K) + b)`` on channels_last input (see the module docstring).

    Options: strides, dilation (2 ints each), padding (((top, bottom), (left, right))),
    groups, relu. A rank-3 input (N, L, C) with a (k, C/groups, F) kernel is the 1-D case.
    """

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None = None,
        strides: tuple = (1, 1),
        padding: tuple = ((0, 0), (0, 0)),
        dilation: tuple = (1, 1),
        groups: int = 1,
        relu: bool = False,
    ) -> np.ndarray:
        one_d = x.ndim == 3
        x, kernel = as_2d(x, kernel, "conv")
        n, h, w, c = x.shape
        kh, kw, cg, f = kernel.shape
        oh, ow = checked_output_size(x, kernel, bias, padding, strides, dilation, groups, "conv")
        (sh, sw), (dh, dw) = strides, dilation
        geom = Geometry(kh, kw, sh, sw, dh, dw, oh, ow)
        (pt, pb), (pl, pr) = padding
        xp_shape = (n, h + pt + pb, w + pl + pr, c)
        needs = self.needs_grad or (False, False, False)
        fold = False
        narrow = False
        width = kh * kw * c
        wino = None
        if groups == 1:
            k2 = kernel.reshape(width, f)
            wino = winograd.conv_winograd_args(x, k2, bias, padding, geom)
        if wino:  # F(2x2, 3x3); the VJP needs the transformed input V and filter U
            out, v, u = winograd.conv_forward(x, kernel, wino, (oh, ow))
            kept = v if needs[1] else None
        elif groups == 1:
            # The bias rides in the product as one more row of the kernel matrix (times a
            # column of ones): no separate pass over the output, and dL/db comes out of
            # the kernel-gradient product as its last row.
            fold = bias is not None and width <= _FOLD_BIAS_WIDTH
            if fold:
                k2 = np.concatenate([k2, bias.reshape(1, f).astype(k2.dtype, copy=False)])
            narrow = f * _NARROW <= width and f <= _NARROW_MAX_FILTERS
            narrow = narrow and n * oh * ow * width > _NARROW_FROM
            if narrow:  # keeps the unpadded input (csrc/narrow.c pads virtually)
                out = _narrow_forward(x, padding, k2, geom, fold)
                kept = x if needs[1] or (fold and len(needs) > 2 and needs[2]) else None
            else:
                cols = im2col(pad_spatial(x, padding), geom, ones_column=fold)
                out = product(cols, k2)
                kept = cols if needs[1] or (fold and len(needs) > 2 and needs[2]) else None
        elif cg == 1:  # as narrow, the unpadded input
            out = _depthwise_forward(x, padding, kernel, geom)
            kept = x if needs[1] else None
        else:
            kept, out = _grouped_forward(pad_spatial(x, padding), kernel, geom, groups, needs[1])
        _finish(out, None if fold else bias, relu)
        out = out.reshape(n, oh, ow, f)
        if self.needs_grad:
            self.saved = (
                fold,
                narrow,
                wino,
                kept,
                (u if wino else kernel) if needs[0] else None,
                out if relu else None,
                xp_shape,
                x.shape,
                kernel.shape,
                padding,
                geom,
                groups,
                one_d,
            )
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> tuple:
        fold, narrow, wino, kept, kernel, out, xp_shape, x_shape, k_shape = self.saved[:9]
        padding, geom, groups, one_d = self.saved[9:]
        if one_d:
            g = g[:, None]
        g = _relu_mask(g, out)
        n, oh, ow, f = g.shape
        g2 = g.reshape(n * oh * ow, f)
        needs = self.needs_grad
        need_bias = len(needs) > 2 and needs[2]
        gb = sum_rows(g2) if need_bias and not fold else None
        cg = k_shape[2]
        gx = gk = None
        if wino:  # kept and kernel are the transformed input V and filter U
            gx, gk = winograd.conv_backward(g2, kept, kernel, wino, (oh, ow), needs[0], needs[1])
            if gk is not None:
                gk = gk.reshape(k_shape)
        elif groups == 1 and narrow:
            need_k = needs[1] or (fold and need_bias)
            gx, kernel_rows = _narrow_backward(
                g2, kept, kernel, k_shape, x_shape, padding, geom, fold, needs[0], need_k
            )
            if kernel_rows is not None:
                gk = kernel_rows[: len(kernel_rows) - fold].reshape(k_shape) if needs[1] else None
                gb = kernel_rows[-1] if fold and need_bias else gb
        elif groups == 1:
            if fold and (needs[1] or need_bias):
                # (kh kw C + 1, F): the kernel rows, then the bias row
                kernel_rows = product(kept.T, g2)
                gk = kernel_rows[:-1].reshape(k_shape) if needs[1] else None
                gb = kernel_rows[-1] if need_bias else None
            elif needs[1]:
                gk = product(kept.T, g2).reshape(k_shape)
            if needs[0]:
                gx = input_grad(g2, kernel, xp_shape, geom)
        elif cg == 1:
            gx, gk = _depthwise_backward(g2, kept, kernel, x_shape, padding, k_shape, geom, needs)
        else:
            gx, gk = _grouped_backward(g2, kept, kernel, xp_shape, k_shape, geom, groups, needs)
        if gx is not None:
            gx = crop_spatial(gx, padding, x_shape)
            if one_d:
                gx = gx[:, 0]
        if gk is not None and one_d:
            gk = gk[0]
        return (gx, gk, gb)[: len(self.needs_grad)]


def _sample_chunks(n: int, per_sample: int) -> list[slice]:
    """Slices of the batch whose arrays of ``per_sample`` values each hold about
    ``_CHUNK_VALUES``: the passes over one chunk stay in the core's cache, where the same
    passes over the whole batch would stream every temporary through memory."""
    step = max(1, _CHUNK_VALUES // max(1, per_sample))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def _depthwise_forward(
    x: np.ndarray, padding: tuple, kernel: np.ndarray, geom: Geometry
) -> np.ndarray:
    """One input channel per group: y[..., c, m] = sum_ij xp_ij[..., c] K[i, j, c, m] (xp
    the padded input), summed over the offsets (i, j) in order, by csrc/depthwise.c or a
    chunk of samples at a time."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    mult = f // c
    k = kernel.reshape(kh, kw, c, mult)
    dtype = np.result_type(x, kernel)
    out = np.empty((n, geom.oh, geom.ow, c, mult), dtype)
    native = kernel_geometry(x.shape, mult, geom, padding)
    # csrc/depthwise.c: the same sums, one pass a sample
    if n and _native.usable(x, kernel) and native:
        _native.kernels.depthwise_forward(x, kernel, out, *native)
        return out.reshape(-1, f)
    xp = pad_spatial(x, padding)
    # With one filter per channel the size-1 filter axis is dropped: NumPy's inner loops
    # then run along the channels instead of over one value at a time.
    rows, k = (out[..., 0], k[..., 0]) if mult == 1 else (out, k)
    for part in _sample_chunks(n, geom.oh * geom.ow * f):
        o, x = rows[part], xp[part]
        term = np.empty_like(o)
        for index, (i, j) in enumerate(np.ndindex(kh, kw)):
            slab = x[window(i, j, geom)]
            slab = slab if mult == 1 else slab[..., None]
            np.multiply(slab, k[i, j], out=o if index == 0 else term)
            if index:
                o += term
    return out.reshape(-1, f)


def _depthwise_backward(g2, x, kernel, x_shape, padding, k_shape, geom, needs) -> tuple:
    """dL/dK[i, j, c, m] = sum over samples and places of xp_ij[..., c] G[..., c, m], and
    dL/dxp_ij[..., c] += sum_m G[..., c, m] K[i, j, c, m]: by csrc/depthwise.c (dL/dx
    unpadded), else a chunk of samples at a time (dL/dxp, which the caller crops). ``x`` is
    the unpadded input (None when dL/dK is not needed)."""
    kh, kw, _, f = k_shape
    n, h, w, c = x_shape
    (pt, pb), (pl, pr) = padding
    xp_shape = (n, h + pt + pb, w + pl + pr, c)
    mult = f // c
    g5 = g2.reshape(n, geom.oh, geom.ow, c, mult)
    # csrc/depthwise.c, which reads xp only for dL/dK and the kernel only for dL/dxp (a
    # copy of a strided gradient costs less than NumPy's passes)
    given = tuple(a for a in (x, kernel) if a is not None)
    g2c = np.ascontiguousarray(g2) if n and _native.kernels is not None else g2
    native = kernel_geometry(x_shape, mult, geom, padding)
    if n and _native.usable(g2c, *given) and native:
        g2 = g2c
        gx = np.empty(x_shape, g2.dtype) if needs[0] else None
        gk = np.empty(k_shape, g2.dtype) if needs[1] else None
        _native.kernels.depthwise_backward(g2, x, kernel, gx, gk, *native)
        return gx, gk
    xp = None if x is None else pad_spatial(x, padding)
    gx = np.zeros(xp_shape, g2.dtype) if needs[0] else None
    gk = np.zeros((kh, kw, c, mult), g2.dtype) if needs[1] else None
    k = kernel.reshape(kh, kw, c, mult) if needs[0] else None
    one = mult == 1  # drop the size-1 filter axis (see _depthwise_forward)
    grads = g5[..., 0] if one else g5
    for part in _sample_chunks(n, geom.oh * geom.ow * f):
        g = grads[part]
        x = xp[part] if xp is not None else None  # kept only when dL/dK is needed
        gx_part = gx[part] if gx is not None else None
        term = np.empty_like(g)
        for i, j in np.ndindex(kh, kw):
            slab = window(i, j, geom)
            if gk is not None:
                np.multiply(x[slab] if one else x[slab][..., None], g, out=term)
                gk[i, j] += term.sum(axis=(0, 1, 2)).reshape(c, mult)
            if gx_part is not None:
                if one:
                    np.multiply(g, k[i, j, :, 0], out=term)
                    gx_part[slab] += term
                else:
                    gx_part[slab] += (g * k[i, j]).sum(axis=-1)
    return gx, None if gk is None else gk.reshape(k_shape)


def _narrow_forward(
    x: np.ndarray, padding: tuple, k2: np.ndarray, geom: Geometry, fold: bool
) -> np.ndarray:
    """``cols(xp) K_2`` for a kernel with few filters, whose window matrix is far larger
    than its output: csrc/narrow.c's direct convolution (one dot product per output, the
    windows read in place), else a chunk of samples at a time, each chunk's window matrix
    built, used and dropped while it is still in cache (backward builds them again)."""
    n = x.shape[0]
    places, f = geom.oh * geom.ow, k2.shape[1]
    out = np.empty((n * places, f), np.result_type(x, k2))
    width = k2.shape[0] - fold
    kt = np.ascontiguousarray(k2[:width].T)  # (F, kh kw C), each filter's window a row
    bias = np.ascontiguousarray(k2[width]) if fold else None
    native = kernel_geometry(x.shape, f, geom, padding)
    usable = _native.usable(x, kt, *([bias] if fold else [])) and out.dtype == x.dtype
    if n and usable and native:
        _native.kernels.narrow_forward(x, kt, bias, out, *native)
        return out
    xp = pad_spatial(x, padding)
    for part in _sample_chunks(n, places * k2.shape[0]):
        rows = slice(part.start * places, part.stop * places)
        product(im2col(xp[part], geom, ones_column=fold), k2, out=out[rows])
    return out


def _narrow_backward(g2, x, kernel, k_shape, x_shape, padding, geom, fold, need_x, need_k) -> tuple:
    """The VJP of ``_narrow_forward``: ``[X 1]^T G`` (kernel rows, then the bias row when
    folded) and col2im of ``G K_2^T``, by csrc/narrow.c, else chunk by chunk (``G K_2^T``
    an outer product, computed as one, when there is a single filter). dL/dx comes
    unpadded from the kernel, else padded (the caller crops it); ``x`` is the unpadded
    input."""
    n, h, w, c = x_shape
    (pt, pb), (pl, pr) = padding
    xp_shape = (n, h + pt + pb, w + pl + pr, c)
    places = geom.oh * geom.ow
    kh, kw, _, f = k_shape
    k2t = np.ascontiguousarray(kernel.reshape(kh * kw * c, f).T) if need_x else None
    given = [a for a in (x if need_k else None, k2t) if a is not None]
    native = kernel_geometry(x_shape, f, geom, padding)
    # csrc/narrow.c, as _narrow_forward
    if n and _native.usable(g2, *given) and native:
        gx = np.empty(x_shape, g2.dtype) if need_x else None
        gkt = np.empty((f, kh * kw * c), g2.dtype) if need_k else None
        gb = np.empty(f, g2.dtype) if need_k and fold else None
        _native.kernels.narrow_backward(g2, x if need_k else None, k2t, gx, gkt, gb, *native)
        kernel_rows = None
        if need_k:
            kernel_rows = np.concatenate([gkt.T, gb[None]]) if fold else np.ascontiguousarray(gkt.T)
        return gx, kernel_rows
    kernel_rows = np.zeros((kh * kw * c + fold, f), g2.dtype) if need_k else None
    gx = np.empty(xp_shape, g2.dtype) if need_x else None
    xp = pad_spatial(x, padding) if need_k else None
    for part in _sample_chunks(n, places * (kh * kw * c + fold)):
        g = g2[part.start * places : part.stop * places]
        if need_k:
            kernel_rows += product(im2col(xp[part], geom, ones_column=fold).T, g)
        if need_x:
            cols_grad = np.multiply(g, k2t) if f == 1 else product(g, k2t)
            shape = (part.stop - part.start, *xp_shape[1:])
            gx[part] = col2im(cols_grad, shape, geom)
    return gx, kernel_rows


def _grouped_forward(xp, kernel, geom, groups, keep) -> tuple:
    n, _, _, c = xp.shape
    kh, kw, cg, f = kernel.shape
    fg = f // groups
    out = np.empty((n * geom.oh * geom.ow, f), np.result_type(xp, kernel))
    kept = []
    for k in range(groups):
        cols = im2col(xp[..., k * cg : (k + 1) * cg], geom)
        out[:, k * fg : (k + 1) * fg] = product(
            cols, kernel[..., k * fg : (k + 1) * fg].reshape(-1, fg)
        )
        kept.append(cols if keep else None)
    return (kept if keep else None), out


def _grouped_backward(g2, kept, kernel, xp_shape, k_shape, geom, groups, needs) -> tuple:
    kh, kw, cg, f = k_shape
    fg = f // groups
    gx = np.zeros(xp_shape, g2.dtype) if needs[0] else None
    gk = np.empty(k_shape, g2.dtype) if needs[1] else None
    for k in range(groups):
        gg = g2[:, k * fg : (k + 1) * fg]
        if gk is not None:
            gk[..., k * fg : (k + 1) * fg] = product(kept[k].T, gg).reshape(kh, kw, cg, fg)
        if gx is not None:
            shape = (*xp_shape[:3], cg)
            part = input_grad(gg, kernel[..., k * fg : (k + 1) * fg], shape, geom)
            gx[..., k * cg : (k + 1) * cg] += part
    return gx, gk


# --- functional API -----------------------------------------------------------------------
def fused_conv(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    relu: bool = False,
) -> Tensor:
    """``relu?(conv(x, kernel) + bias)`` for channels_last x of rank 3 or 4, as one node.

    Args:
        x: (batch, length, channels) or (batch, height, width, channels).
        kernel: (k, channels / groups, filters) or (kh, kw, channels / groups, filters).
        bias: (filters,) or None.
        strides, dilation_rate: an int or one per spatial axis.
        padding: 'valid', 'same', 'causal' (1-D) or explicit (before, after) pairs.
        groups: number of channel groups.
        relu: apply max(., 0) in place.
    """
    rank = spatial_rank(x, "conv")
    kernel_size = tuple(kernel.shape[:rank])
    strides = normalize_tuple(strides, rank, "strides")
    dilation = normalize_tuple(dilation_rate, rank, "dilation_rate")
    pads = explicit_padding(padding, tuple(x.shape[1:-1]), kernel_size, strides, dilation)
    if rank == 1:
        strides, dilation, pads = (1, *strides), (1, *dilation), ((0, 0), *pads)
    args = (x, kernel) if bias is None else (x, kernel, bias)
    return Conv.apply(
        *args, strides=strides, padding=pads, dilation=dilation, groups=int(groups), relu=relu
    )


def conv(
    inputs: Any,
    kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Tensor:
    """Keras' ``ops.conv``: a 1-D, 2-D or 3-D convolution; kernel (k..., C / groups, F), with
    the number of groups read off the kernel (``C // kernel.shape[-2]``)."""
    data_format = standardize_data_format(data_format)
    rank = spatial_rank(inputs, "conv", volumes=True)
    channels = inputs.shape[-1] if data_format == "channels_last" else inputs.shape[1]
    if channels % kernel.shape[-2]:
        raise ValueError(
            f"conv: the number of input channels ({channels}, input shape "
            f"{tuple(inputs.shape)}) must be divisible by kernel.shape[-2] "
            f"({kernel.shape[-2]}, kernel shape {tuple(kernel.shape)})."
        )
    groups = channels // kernel.shape[-2]
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, rank)
    if rank == 3:  # conv3d.py builds on this module, hence the import here
        from dendrite.ops.conv3d import fused_conv3d as convolve
    else:
        convolve = fused_conv
    out = convolve(
        x, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate, groups=groups
    )
    return out if data_format == "channels_last" else to_channels_first(out, rank)


def depthwise_conv(
    inputs: Any,
    kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Tensor:
    """Keras' ``ops.depthwise_conv``: each channel convolved with its own ``depth_multiplier``
    filters; kernel (k..., C, M), output channel ``c M + m``."""
    data_format = standardize_data_format(data_format)
    rank = spatial_rank(inputs, "depthwise_conv")
    *spatial, channels, mult = kernel.shape
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, rank)
    if x.shape[-1] != channels:
        raise ValueError(
            f"depthwise_conv: the input has {x.shape[-1]} channels (shape "
            f"{tuple(inputs.shape)}), but the kernel of shape {tuple(kernel.shape)} expects "
            f"{channels}."
        )
    grouped = reshape(kernel, (*spatial, 1, channels * mult))
    out = fused_conv(
        x,
        grouped,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        groups=channels,
    )
    return out if data_format == "channels_last" else to_channels_first(out, rank)


def separable_conv(
    inputs: Any,
    depthwise_kernel: Any,
    pointwise_kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Tensor:
    """Keras' ``ops.separable_conv``: a depthwise convolution, then a 1x1 (pointwise) one."""
    data_format = standardize_data_format(data_format)
    rank = spatial_rank(inputs, "separable_conv")
    x = inputs if data_format == "channels_last" else to_channels_last(inputs, rank)
    depthwise = depthwise_conv(x, depthwise_kernel, strides, padding, None, dilation_rate)
    out = fused_conv(depthwise, pointwise_kernel)
    return out if data_format == "channels_last" else to_channels_first(out, rank)
