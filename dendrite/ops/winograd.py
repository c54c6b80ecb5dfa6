"""A 3x3 convolution (stride 1) with its 2x2 max pooling by Winograd's F(2x2, 3x3), for
``ConvMaxPool`` (ops/conv_pool.py) with the C kernels loaded.

Each 2x2 pooling window of the convolution's output is one output tile ``Y``; its 4x4
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
a stated tolerance. Only the 10 x 10 of an 11 x 11 output that the pooling reads are
computed, as the im2col path does.
"""

from __future__ import annotations

import numpy as np

from dendrite import _native
from dendrite.ops._products import product
from dendrite.ops._util import sum_rows
from dendrite.ops.windows import Geometry

# Below this many input channels the transforms (memory passes over 16 times the tiles)
# cost more than the products save; such layers go to csrc/shallow.c or im2col.
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
    output's sizes as (PH, PW)), or None where another path computes it: a window other
    than 3x3, a stride or dilation other than 1, a pool other than 2x2, fewer than
    ``MIN_CHANNELS`` channels or ``MIN_FILTERS`` filters, an empty batch, dtypes the kernels
    do not take, sizes beyond ``_native.GEOMETRY_LIMIT``."""
    n, h, w, c = x.shape
    f = k2.shape[1]
    if (geom.kh, geom.kw, geom.sh, geom.sw, geom.dh, geom.dw) != (3, 3, 1, 1, 1, 1):
        return None
    if tuple(pool) != (2, 2) or c < MIN_CHANNELS or f < MIN_FILTERS or n == 0:
        return None
    if not _native.usable(x, *(() if bias is None else (bias,))) or k2.dtype != x.dtype:
        return None
    sizes = (n, h, w, c, f, 3, 3, geom.oh, geom.ow)
    steps = (1, 1, 1, 1, padding[0][0], padding[1][0])
    return (sizes, steps) if _native.geometry_fits(sizes, steps) else None


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


def winograd_forward(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, relu: bool, args: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``relu?(max_d z_d + b)`` and the winners, (N PH PW, F) each, and the transformed
    input V (16, tiles, C) and filter U (16, C, F) the VJP reuses."""
    sizes, steps = args
    n, _, _, c, f, _, _, ph, pw = sizes
    tiles = n * ph * pw
    v = np.empty((16, tiles, c), x.dtype)
    _native.kernels.winograd_input(x, v, sizes, steps)
    u = filter_transform(kernel)
    m = product(v, u)
    out = np.empty((tiles, f), x.dtype)
    winner = np.empty((tiles, f), np.uint8)
    _native.kernels.winograd_pool(m, bias, out, winner, relu, sizes, steps)
    return out, winner, v, u


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
    None where ``needs`` (x, kernel, bias) does not ask for it; V is needed for dL/dK and
    U for dL/dx."""
    sizes, steps = args
    n, h, w, c, f, *_ = sizes
    g2 = np.ascontiguousarray(g2)
    need_x, need_k = needs[0], needs[1]
    need_b = len(needs) > 2 and needs[2]
    gx = gk = gb = None
    if not (need_x or need_k):
        if need_b:
            gb = sum_rows(g2 if relu_out is None else g2 * (relu_out > 0))
        return gx, gk, gb
    d = np.empty((16, *g2.shape), g2.dtype)
    masked = None if relu_out is None else np.empty_like(g2)
    _native.kernels.winograd_unpool(g2, winner, relu_out, masked, d, sizes, steps)
    if need_b:
        gb = sum_rows(g2 if masked is None else masked)
    if need_k:
        gk = filter_gradient(product(v.transpose(0, 2, 1), d))
    if need_x:
        dv = product(d, u.transpose(0, 2, 1))
        gx = np.empty((n, h, w, c), g2.dtype)
        _native.kernels.winograd_input_grad(dv, gx, sizes, steps)
    return gx, gk, gb
