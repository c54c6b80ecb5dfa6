"""A 3x3 convolution (stride 1) by Winograd's F(2x2, 3x3), with the C kernels loaded: with
its 2x2 max pooling for ``ConvMaxPool`` (ops/conv_pool.py), or alone for ``Conv``
(ops/conv.py).

Each 2x2 pooling window (or 2x2 block of the output) is one output tile ``Y``; its 4x4
input tile ``d`` and the filter ``g`` give ``Y = A^T [(G g G^T) . (B^T d B)] A`` (csrc/
winograd.c's header has the matrices). Summed over the input channels in the transform
domain, the convolution is 16 products, one per place ``e`` of the 4x4 tile:

    M_e = V_e U_e,   V_e = (B^T d B)_e  (tiles, C),   U_e = (G g G^T)_e  (C, F)

4 x 4 = 16 multiplications per tile and channel pair where the direct convolution takes 2
x 2 x 9 = 36: 2.25 times fewer, in BLAS at an inner axis of C. The VJP runs the same way
backwards, with ``dM`` from the pooled gradient (nonzero only where the winner was):

    dL/dU_e = V_e^T dM_e,   dL/dg = G^T dL/dU G,   dL/dV_e = dM_e U_e^T,
    dL/dx = sum over tiles of B dL/dV B^T  (csrc/winograd.c).

The transforms add and subtract, so the results differ from the direct sums by float
rounding (a few ulps of the largest term): the tests compare with the im2col path within
a stated tolerance. With pooling, only the 10 x 10 of an 11 x 11 output that the pooling
reads are computed, as the im2col path does; without, a last row or column of tiles stands
half outside an odd-sized output (its outside half is computed and dropped, and has no
gradient).

Measured alone (forward + backward, batch 128 or 32, in dendrite's allocator, 2 cores):
the CNN's second layer with its pooling (13x13x32 -> 64) 4.0-4.8 + 6.3-7.6 ms against
im2col's 6.7-7.0 + 10.8-11.3 ms; without pooling, 'same', 14x14x32 -> 32 14-21 ms against
im2col's 26-35 and narrow.c's 46-53, 28x28x64 -> 64 35-43 against 61-68 and 115-121, 8x8x128
-> 128 18-23 against 30-33, 28x28x8 -> 8 16-18 against 27-28.
"""

from __future__ import annotations

import numpy as np

from dendrite import _native
from dendrite.ops._products import stacked_product
from dendrite.ops._util import sum_rows
from dendrite.ops.windows import Geometry, kernel_geometry

# The fewest input channels and filters Winograd takes: measured faster than im2col from
# there (28x28x8 -> 8 filters, batch 128: 16-18 ms against 27-28), not measured below,
# where the transforms' passes over 16 planes weigh more against the products; an image
# model's first layer (1 to 3 channels) goes to csrc/shallow.c.
MIN_CHANNELS = 8
MIN_FILTERS = 8


def winograd_args(
    x: np.ndarray,
    k2: np.ndarray,
    bias: np.ndarray | None,
    padding: tuple,
    geom: Geometry,
    pool: tuple,
) -> tuple | None:
    """csrc/winograd.c's (sizes, steps) for this convolution and pooling (the pooled
    output's sizes as (PH, PW): one tile per pooling window), or None where another path
    computes it: a pool other than 2x2, or a convolution ``_fits`` refuses."""
    if tuple(pool) != (2, 2):
        return None
    return _fits(x, k2, bias, padding, geom, (geom.oh, geom.ow))


def conv_winograd_args(
    x: np.ndarray, k2: np.ndarray, bias: np.ndarray | None, padding: tuple, geom: Geometry
) -> tuple | None:
    """The same for a convolution without pooling (its output (OH, OW) in ``geom``): the
    tiles cover it, half outside it along an odd size."""
    return _fits(x, k2, bias, padding, geom, ((geom.oh + 1) // 2, (geom.ow + 1) // 2))


def _fits(
    x: np.ndarray,
    k2: np.ndarray,
    bias: np.ndarray | None,
    padding: tuple,
    geom: Geometry,
    tiles: tuple,
) -> tuple | None:
    """(sizes, steps) for ``tiles`` (rows, columns) of output tiles, or None: a window other
    than 3x3, a stride or dilation other than 1, fewer than ``MIN_CHANNELS`` channels or
    ``MIN_FILTERS`` filters, an empty batch, dtypes the kernels do not take, sizes beyond
    ``_native.GEOMETRY_LIMIT``."""
    n, _, _, c = x.shape
    f = k2.shape[1]
    if (geom.kh, geom.kw, geom.sh, geom.sw, geom.dh, geom.dw) != (3, 3, 1, 1, 1, 1):
        return None
    if c < MIN_CHANNELS or f < MIN_FILTERS or n == 0:
        return None
    # Any layout: the input is copied to C order when it is not (a channels_first layer's
    # transposed view), which costs far less than the im2col path's window matrix.
    dtypes = {x.dtype, k2.dtype} | (set() if bias is None else {bias.dtype})
    if _native.kernels is None or len(dtypes) > 1 or x.dtype not in (np.float32, np.float64):
        return None
    return kernel_geometry(x.shape, f, geom, padding, tiles)


def filter_transform(kernel: np.ndarray) -> np.ndarray:
    """``U = G g G^T`` for every (channel, filter) of a (3, 3, C, F) kernel: (16, C, F)."""

    def rows(k: np.ndarray) -> np.ndarray:  # G k along axis 0: (3, ...) -> (4, ...)
        ends = k[0] + k[2]
        return np.stack([k[0], (ends + k[1]) * 0.5, (ends - k[1]) * 0.5, k[2]])

    half = rows(kernel)  # (4, 3, C, F)
    u = rows(half.swapaxes(0, 1))  # (4 b, 4 a, C, F)
    return np.ascontiguousarray(u.swapaxes(0, 1)).reshape(16, *kernel.shape[2:])


def filter_gradient(du: np.ndarray) -> np.ndarray:
    """The VJP of ``filter_transform``: ``G^T dU G`` from dU (16, C, F), (3, 3, C, F)."""

    def rows(d: np.ndarray) -> np.ndarray:  # G^T d along axis 0: (4, ...) -> (3, ...)
        inner = (d[1] + d[2]) * 0.5
        return np.stack([d[0] + inner, (d[1] - d[2]) * 0.5, d[3] + inner])

    half = rows(du.reshape(4, 4, *du.shape[1:]))  # (3 i, 4 b, C, F)
    return np.ascontiguousarray(rows(half.swapaxes(0, 1)).swapaxes(0, 1))


def _transformed(x: np.ndarray, kernel: np.ndarray, args: tuple) -> tuple:
    """(M, V, U): the 16 transform-domain products M_e = V_e U_e (16, tiles, F), with the
    transformed input V (16, tiles, C) and filter U (16, C, F) the VJP reuses."""
    sizes, steps = args
    n, _, _, c, _, _, _, th, tw = sizes
    v = np.empty((16, n * th * tw, c), x.dtype)
    _native.kernels.winograd_input(np.ascontiguousarray(x), v, sizes, steps)
    u = filter_transform(kernel)
    return stacked_product(v, u), v, u


def winograd_forward(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, relu: bool, args: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``relu?(max_d z_d + b)`` and the winners, (N PH PW, F) each, and the transformed
    input V and filter U the VJP reuses."""
    sizes, steps = args
    m, v, u = _transformed(x, kernel, args)
    out = np.empty((m.shape[1], sizes[4]), x.dtype)
    winner = np.empty(out.shape, np.uint8)
    bias = None if bias is None else np.ascontiguousarray(bias)
    _native.kernels.winograd_pool(m, bias, out, winner, relu, sizes, steps)
    return out, winner, v, u


def conv_forward(
    x: np.ndarray, kernel: np.ndarray, args: tuple, output: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A convolution without pooling: its output (N OH OW, F) for ``output`` = (OH, OW),
    and V and U."""
    sizes, steps = args
    m, v, u = _transformed(x, kernel, args)
    out = np.empty((sizes[0] * output[0] * output[1], sizes[4]), x.dtype)
    _native.kernels.winograd_output(m, out, sizes, steps, tuple(output))
    return out, v, u


def conv_backward(
    g2: np.ndarray,
    v: np.ndarray | None,
    u: np.ndarray | None,
    args: tuple,
    output: tuple,
    need_x: bool,
    need_k: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dL/dx, dL/dK) of ``conv_forward`` from dL/dY (N OH OW, F) (the ReLU's mask already
    applied), each None unless asked for."""
    sizes, steps = args
    if not (need_x or need_k):
        return None, None
    g2 = np.ascontiguousarray(g2)
    d = np.empty((16, _tiles(sizes), sizes[4]), g2.dtype)
    _native.kernels.winograd_output_grad(g2, d, sizes, steps, tuple(output))
    return _input_and_filter_gradients(d, v, u, args, need_x, need_k)


def _tiles(sizes: tuple) -> int:
    n, *_, th, tw = sizes
    return n * th * tw


def _input_and_filter_gradients(
    d: np.ndarray,
    v: np.ndarray | None,
    u: np.ndarray | None,
    args: tuple,
    need_x: bool,
    need_k: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """dL/dx (through csrc/winograd.c) and dL/dK from dM (16, tiles, F)."""
    sizes, steps = args
    n, h, w, c, *_ = sizes
    gx = gk = None
    if need_k:
        gk = filter_gradient(stacked_product(v.transpose(0, 2, 1), d))
    if need_x:
        dv = stacked_product(d, u.transpose(0, 2, 1))
        gx = np.empty((n, h, w, c), d.dtype)
        _native.kernels.winograd_input_grad(dv, gx, sizes, steps)
    return gx, gk


def winograd_backward(
    g2: np.ndarray,
    winner: np.ndarray,
    relu_out: np.ndarray | None,
    v: np.ndarray | None,
    u: np.ndarray | None,
    args: tuple,
    needs: tuple,
) -> tuple:
    """(dL/dx, dL/dK (3, 3, C, F), dL/db) from the pooled gradient g2 (N PH PW, F), each
    None where ``needs`` (x, kernel, bias; x or kernel among them) does not ask for it; V
    is needed for dL/dK and U for dL/dx."""
    sizes, steps = args
    g2 = np.ascontiguousarray(g2)
    need_x, need_k = needs[0], needs[1]
    need_b = len(needs) > 2 and needs[2]
    gb = None
    d = np.empty((16, *g2.shape), g2.dtype)
    masked = None if relu_out is None else np.empty_like(g2)
    _native.kernels.winograd_unpool(g2, winner, relu_out, masked, d, sizes, steps)
    if need_b:
        gb = sum_rows(g2 if masked is None else masked)
    gx, gk = _input_and_filter_gradients(d, v, u, args, need_x, need_k)
    return gx, gk, gb
