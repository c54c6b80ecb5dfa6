"""A convolution followed by max pooling as one primitive: ``relu?(maxpool(conv(x, K)) + b)``,
channels_last, for pooling windows that tile the convolution's output (strides equal to
the pool size, 'valid' padding), the usual ``Conv2D(..., activation="relu")`` then
``MaxPooling2D()`` of image and sequence models.

It equals the two ops run one after the other, value and gradient, because

- a per-channel bias and ReLU commute with the maximum of a window: ``max_k(z_k + b) =
  max_k(z_k) + b`` and ``max_k relu(z_k) = relu(max_k z_k)``, so both run on the pooled
  output, a quarter of the convolution's size for 2x2 windows;
- the gradient still goes to the first maximum of each window in row-major order (as
  TensorFlow and PyTorch route it), and where the window's maximum is <= 0 the ReLU sends
  nothing back, as ReLU's gradient (0 at 0) does when applied first.

**Layout.** The convolution's output rows are computed in the order (di, dj, n, p, q):
output pixel (ph p + di, pw q + dj), see ``windows.im2col(..., pool=)``. Each place (di,
dj) in a pooling window is then one contiguous (N PH PW, F) block of ``Z = cols K_2``,
so the pooling is ph * pw - 1 element-wise maxima of contiguous blocks, and its VJP
writes ``dL/dZ_k = g * [winner = k]`` block by block. Output pixels that no pooling window
covers (the last row of an odd-sized output) are never computed: their gradient is 0.

**VJP.** With ``G`` = dL/dZ (its rows in the same order) the convolution's VJP is the
usual ``dL/dK_2 = cols^T G`` and ``dL/dxp = col2im(G K_2^T)``.

**Shallow windows** (``kh kw C <= SHALLOW_WIDTH``: an image model's first layer, one to
three channels in). There BLAS runs far below its speed (the product's inner axis is 9 to
75 long), and ``Z`` (ph pw times the pooled output) goes to memory and back twice. With
the C kernels loaded, csrc/shallow.c computes each pooled output's ph pw candidates
straight from the input, pools them in cache, and sums ``dL/dK_2 = sum_k cols_k^T (g
[winner = k])`` and ``dL/db`` from the pooled gradient: no window matrix, no ``Z``, no
scatter. Its sums run in another order than BLAS' (the tests compare within float
rounding); dL/dx still goes through ``_unpool`` and col2im.

**3x3 windows, stride 1, 2x2 pooling** (from ``winograd.MIN_CHANNELS`` channels, in effect
9 since the shallow path takes 8, and ``MIN_FILTERS`` filters: a CNN's deeper layers).
With the C kernels loaded, each pooling window is one output tile of Winograd's F(2x2,
3x3) (ops/winograd.py): 16 products at an inner axis of C in the transform domain in place
of the (N PH PW 4, 9 C) window matrix's, 2.25 times fewer multiplications, forward and for
both gradients. Within float rounding of the im2col path (the transforms add and
subtract).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Function, Tensor, register
from dendrite.ops._products import product
from dendrite.ops._util import sum_rows
from dendrite.ops.conv import as_2d, checked_output_size, spatial_rank
from dendrite.ops.windows import (
    Geometry,
    crop_spatial,
    explicit_padding,
    im2col,
    input_grad,
    kernel_geometry,
    normalize_tuple,
    pad_spatial,
)
from dendrite.ops.winograd import winograd_args, winograd_backward, winograd_forward

# The winner of each pooling window is kept as a uint8: at most this many places.
MAX_PLACES = 256

# csrc/shallow.c computes convolutions whose window (kh kw C) has at most SHALLOW_WIDTH
# values, and whose pooling window's windows at most SHALLOW_VALUES in all; deeper ones go
# through im2col and BLAS. Forward and backward alone (outside a training loop), batch 128,
# 2x2 pooling and ReLU, 2 cores: im2col's time over shallow.c's is 5.0 at width 9 (1
# channel, 3x3), 3.7 at 27 (RGB, 3x3), 2.4 at 75 (RGB, 5x5), 1.5 at 72 and 1.4 at 144 (8
# and 16 channels). Inside the CNN's loop, whose allocator spares im2col its page faults,
# the width-9 layer made the whole step 11% faster. The limit stops at RGB 5x5: deeper
# windows were measured alone only, where BLAS' share grows with the depth.
SHALLOW_WIDTH = 75
SHALLOW_VALUES = 1024
SHALLOW_CANDIDATES = 2048  # filters times the pooling window's places


def _first_max(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The element-wise maximum of ``candidates`` (K, ...) and, when K > 1, the index of the
    first candidate that holds it (uint8): a later candidate takes over only where it is
    strictly greater, so the winner is the last k that took over, ``max_k k [took over]``."""
    best = candidates[0].copy()
    if len(candidates) == 1:
        return best, None
    winner = None
    for k in range(1, len(candidates)):
        took_over = np.greater(candidates[k], best).view(np.uint8)
        if winner is None:
            winner = took_over  # k = 1: the index is the flag itself
        else:
            np.maximum(winner, took_over * np.uint8(k), out=winner)
        np.maximum(best, candidates[k], out=best)
    return best, winner


def _pool(
    z: np.ndarray, bias: np.ndarray | None, relu: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """``relu?(max_k z[k] + bias)`` over the places k of z (K, rows, F), and the winners."""
    places, rows, features = z.shape
    if places > 1 and _native.usable(z, *(() if bias is None else (bias,))):
        out = np.empty((rows, features), z.dtype)
        winner = np.empty((rows, features), np.uint8)
        _native.kernels.pool_max(z, bias, out, winner, places, features, relu)
        return out, winner
    out, winner = _first_max(z)
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, 0, out=out)
    return out, winner


def _unpool(
    g: np.ndarray, winner: np.ndarray | None, places: int, relu_out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The VJP of the pooling (and of the ReLU before it, when ``relu_out`` is the pooled
    ReLU output): ``g`` masked by ``relu_out > 0``, and (places, *g.shape) holding that
    masked gradient times ``[winner == k]`` in block k."""
    out = np.empty((places, *g.shape), g.dtype)
    relu = () if relu_out is None else (relu_out,)
    if winner is not None and _native.usable(g, *relu, indices=(winner,)):
        masked = None if relu_out is None else np.empty_like(g)
        _native.kernels.pool_scatter(g, winner, out, places, relu_out, masked)
        return (g if masked is None else masked), out
    if relu_out is not None:
        g = g * (relu_out > 0)
    if winner is None:
        out[0] = g
    else:
        for k in range(places):
            np.multiply(g, winner == k, out=out[k])
    return g, out


@register("conv_max_pool")
class ConvMaxPool(Function):
    """Fused ``relu?(maxpool(conv(x, K)) + b)`` (see the module docstring).

    Options: strides, dilation (2 ints each), padding (((top, bottom), (left, right))) of
    the convolution; pool (2 ints, the tiling windows of the max pooling); relu. A rank-3
    input (N, L, C) with a (k, C, F) kernel is the 1-D case.
    """

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None = None,
        strides: tuple = (1, 1),
        padding: tuple = ((0, 0), (0, 0)),
        dilation: tuple = (1, 1),
        pool: tuple = (2, 2),
        relu: bool = False,
    ) -> np.ndarray:
        one_d = x.ndim == 3
        x, kernel = as_2d(x, kernel, "conv_max_pool")
        n, _, _, c = x.shape
        kh, kw, _, f = kernel.shape
        op = "conv_max_pool"
        oh, ow = checked_output_size(x, kernel, bias, padding, strides, dilation, 1, op)
        (sh, sw), (dh, dw), (ph, pw) = strides, dilation, pool
        if ph * pw > MAX_PLACES:
            raise ValueError(
                f"conv_max_pool: a pool window of {ph} x {pw} = {ph * pw} places is larger than "
                f"the {MAX_PLACES} this op indexes (the winner of each window is a uint8); "
                f"run the convolution and MaxPooling as separate ops."
            )
        if oh // ph <= 0 or ow // pw <= 0:
            raise ValueError(
                f"conv_max_pool: the pool size {tuple(pool)} does not fit the convolution's "
                f"output of size {(oh, ow)} (input shape {x.shape}, kernel {kernel.shape})."
            )
        geom = Geometry(kh, kw, sh, sw, dh, dw, oh // ph, ow // pw)
        (pt, pb), (pl, pr) = padding
        xp_shape = (n, x.shape[1] + pt + pb, x.shape[2] + pl + pr, c)
        k2 = kernel.reshape(kh * kw * c, f)
        needs = self.needs_grad
        shallow = _shallow_args(x, k2, bias, padding, geom, (ph, pw))
        winograd = None if shallow else winograd_args(x, k2, bias, padding, geom, (ph, pw))
        if shallow:  # csrc/shallow.c: the unpadded input, read as if padded
            out, winner = _shallow_forward(x, k2, bias, relu, shallow)
            kept = x
        elif winograd:  # the VJP needs the transformed input V and filter U, not x and K
            out, winner, kept, kernel = winograd_forward(x, kernel, bias, relu, winograd)
        else:
            kept = im2col(pad_spatial(x, padding), geom, pool=(ph, pw))
            z = product(kept, k2)
            out, winner = _pool(z.reshape(ph * pw, -1, f), bias, relu)
        if needs:
            path = ("shallow", shallow) if shallow else ("winograd", winograd) if winograd else None
            self.saved = (
                path,
                kept if needs[1] else None,
                kernel if needs[0] else None,
                winner,
                out if relu else None,
                xp_shape,
                x.shape,
                padding,
                geom,
                (ph, pw),
                one_d,
            )
        out = out.reshape(n, geom.oh, geom.ow, f)
        return out[:, 0] if one_d else out

    def backward(self, g: np.ndarray) -> tuple:
        path, cols, kernel, winner, out, xp_shape, x_shape, padding, geom, pool, one_d = self.saved
        f = g.shape[-1]
        g2 = g.reshape(-1, f)
        needs = self.needs_grad
        if not (needs[0] or needs[1]):  # the bias' gradient alone, whichever path ran
            return (None, None, sum_rows(g2 if out is None else g2 * (out > 0)))[: len(needs)]
        if path is not None and path[0] == "winograd":
            gx, gk, gb = winograd_backward(g2, winner, out, cols, kernel, path[1], needs)
            return (gx, gk, gb)[: len(needs)]
        if path is not None:
            return self._shallow_backward(g2)
        gx = gk = None
        g2, gz = _unpool(g2, winner, pool[0] * pool[1], out)
        gz = gz.reshape(-1, f)
        gb = sum_rows(g2) if len(needs) > 2 and needs[2] else None
        if needs[1]:
            k_shape = (geom.kh, geom.kw, cols.shape[1] // (geom.kh * geom.kw), f)
            gk = product(cols.T, gz).reshape(k_shape)
            if one_d:
                gk = gk[0]
        if needs[0]:
            gx = input_grad(gz, kernel, xp_shape, geom, pool)
            gx = crop_spatial(gx, padding, x_shape)
            if one_d:
                gx = gx[:, 0]
        return (gx, gk, gb)[: len(needs)]

    def _shallow_backward(self, g2: np.ndarray) -> tuple:
        """The VJP of ``_shallow_forward``: dL/dK_2 and dL/db in one pass by csrc/shallow.c
        (from the pooled gradient and the input, no window matrix; for a frozen kernel dL/db
        as the im2col path sums it), dL/dx as in the im2col path (``_unpool``, then
        col2im). ``backward`` has answered the case without dL/dx or dL/dK."""
        (_, shallow), x, kernel, winner, out, xp_shape, x_shape, padding, geom, pool, one_d = (
            self.saved
        )
        needs = self.needs_grad
        f = g2.shape[1]
        k_shape = (geom.kh, geom.kw, x_shape[-1], f)
        gx = gk = gb = None
        wants_bias = len(needs) > 2 and needs[2]
        if needs[1]:
            g2 = np.ascontiguousarray(g2)
            gk = np.empty((geom.kh * geom.kw * x_shape[-1], f), g2.dtype)
            gb = np.empty(f, g2.dtype) if wants_bias else None
            _native.kernels.shallow_pool_backward(g2, x, winner, out, gk, gb, *shallow)
            gk = gk.reshape(k_shape)[0] if one_d else gk.reshape(k_shape)
        if needs[0]:
            masked, gz = _unpool(g2, winner, pool[0] * pool[1], out)
            if wants_bias and not needs[1]:  # a frozen kernel: summed as the im2col path
                gb = sum_rows(masked)
            gx = input_grad(gz.reshape(-1, f), kernel, xp_shape, geom, pool)
            gx = crop_spatial(gx, padding, x_shape)
            if one_d:
                gx = gx[:, 0]
        return (gx, gk if needs[1] else None, gb)[: len(needs)]


def _shallow_args(
    x: np.ndarray,
    k2: np.ndarray,
    bias: np.ndarray | None,
    padding: tuple,
    geom: Geometry,
    pool: tuple,
) -> tuple | None:
    """csrc/shallow.c's (sizes, steps, pool) for this convolution and pooling (the pooled
    output's sizes as (oh, ow)), or None where the im2col path computes it: a window of more
    than ``SHALLOW_WIDTH`` values (or ``SHALLOW_VALUES`` for all the pooling window's
    places, or more than ``SHALLOW_CANDIDATES`` filters times places), an empty batch,
    dtypes the kernels do not take, sizes beyond ``_native.GEOMETRY_LIMIT``."""
    width, f = k2.shape
    places = pool[0] * pool[1]
    fits = (
        width <= SHALLOW_WIDTH
        and width * places <= SHALLOW_VALUES
        and f * places <= SHALLOW_CANDIDATES
        and x.shape[0] > 0
        and _native.usable(x, *(() if bias is None else (bias,)))
        and k2.dtype == x.dtype
    )
    native = kernel_geometry(x.shape, f, geom, padding) if fits else None
    return (*native, tuple(pool)) if native else None


def _shallow_forward(
    x: np.ndarray, k2: np.ndarray, bias: np.ndarray | None, relu: bool, shallow: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """``relu?(max_d z_d + b)`` and the winners, (N PH PW, F) each, by csrc/shallow.c: each
    pooled output's candidates summed directly from the unpadded input x; ``shallow`` is
    ``_shallow_args``' answer."""
    (n, *_, f, _, _, oh, ow), _, _ = shallow
    out = np.empty((n * oh * ow, f), x.dtype)
    winner = np.empty((n * oh * ow, f), np.uint8)
    _native.kernels.shallow_pool_forward(
        x, np.ascontiguousarray(k2), bias, out, winner, relu, *shallow
    )
    return out, winner


def conv_max_pool(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    pool_size: Any = 2,
    relu: bool = False,
) -> Tensor:
    """``relu?(max_pool(conv(x, kernel) + bias))`` for channels_last x of rank 3 or 4, as one
    node; the pooling windows tile the convolution's output ('valid', strides = pool_size).

    Args:
        x: (batch, length, channels) or (batch, height, width, channels).
        kernel: (k, channels, filters) or (kh, kw, channels, filters).
        bias: (filters,) or None.
        strides, dilation_rate: the convolution's, an int or one per spatial axis.
        padding: the convolution's: 'valid', 'same', 'causal' (1-D) or (before, after) pairs.
        pool_size: the max pooling's window (and stride), an int or one per spatial axis.
        relu: apply max(., 0).
    """
    rank = spatial_rank(x, "conv_max_pool")
    kernel_size = tuple(kernel.shape[:rank])
    strides = normalize_tuple(strides, rank, "strides")
    dilation = normalize_tuple(dilation_rate, rank, "dilation_rate")
    pool = normalize_tuple(pool_size, rank, "pool_size")
    pads = explicit_padding(padding, tuple(x.shape[1:-1]), kernel_size, strides, dilation)
    if rank == 1:
        strides, dilation, pool, pads = (1, *strides), (1, *dilation), (1, *pool), ((0, 0), *pads)
    args = (x, kernel) if bias is None else (x, kernel, bias)
    return ConvMaxPool.apply(
        *args, strides=strides, padding=pads, dilation=dilation, pool=pool, relu=relu
    )
