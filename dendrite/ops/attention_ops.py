"""Keras 3's ``ops.nn`` functions that dendrite lacked, as compositions of existing ops
(gradients follow from theirs):

- dot_product_attention(q, k, v): ``softmax(q k^T scale + bias | mask) v`` per head, q of
  shape (B, T, N, H) and k, v of (B, S, K, H) (K dividing N: grouped-query attention, the
  key/value heads repeated); ``mask`` (True = attend) and ``is_causal`` (top-left lower
  triangle) add -0.7 * 3.38953e38 where masked, as Keras' PyTorch backend does, so a row
  with nothing to attend to averages every value;
- batch_normalization(x, mean, variance, axis, offset, scale, epsilon):
  ``(x - mean) rsqrt(variance + epsilon) scale + offset``, the 1-D statistics along axis;
- layer_normalization(x, gamma, beta, axis, epsilon): x normalised by its own mean and
  variance over ``axis`` (at least float32 inside, x's dtype out);
- depth_to_space / space_to_depth: TensorFlow's pixel (un)shuffle, reshape and transpose;
- psnr(x1, x2, max_val) = 20 log10(max_val) - 10 log10(mean((x1 - x2)^2));
- unfold / fold: PyTorch's im2col and col2im on (N, C, H, W): unfold gathers each sliding
  block into a column (N, C kh kw, L); fold adds the columns back in place (``scatter``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add, multiply, subtract
from dendrite.ops.creation import cast
from dendrite.ops.indexing import getitem, repeat
from dendrite.ops.joining import pad
from dendrite.ops.linalg import matmul
from dendrite.ops.movement import reshape, transpose
from dendrite.ops.reduce import mean
from dendrite.ops.scatter import scatter
from dendrite.ops.softmax import softmax
from dendrite.ops.unary import log, rsqrt

_LARGE_NEGATIVE = {np.dtype("float16"): -0.7 * 65500.0}


def _number(value: Any) -> float:
    """A Python float from a number or a 0-d tensor (a Python float as it is: not through
    the float32 of dendrite's conversion policy)."""
    return float(value) if isinstance(value, (int, float)) else float(raw(value))


def _large_negative(dtype: np.dtype) -> np.ndarray:
    return np.asarray(_LARGE_NEGATIVE.get(np.dtype(dtype), -0.7 * 3.38953e38), dtype)


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._make(raw(x))


def dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    bias: Any = None,
    mask: Any = None,
    scale: Any = None,
    is_causal: bool = False,
    flash_attention: Any = None,
    attn_logits_soft_cap: Any = None,
) -> Tensor:
    """Scaled dot-product attention; see the module docstring. Returns query's shape."""
    if attn_logits_soft_cap is not None:
        raise ValueError(
            "dot_product_attention: attn_logits_soft_cap is only supported for JAX on TPU. "
            "Set attn_logits_soft_cap=None."
        )
    if flash_attention:
        raise ValueError("dot_product_attention: flash attention is not available on CPU.")
    if bias is not None and mask is not None:
        raise ValueError("dot_product_attention: only one of `bias` and `mask` can be provided.")
    q, k, v = raw(query), raw(key), raw(value)
    if not (q.ndim == k.ndim == v.ndim and q.ndim in (3, 4)):
        raise ValueError(
            f"dot_product_attention: query, key and value must all be 4-D (B, T, N, H) or "
            f"3-D (T, N, H); got {q.shape}, {k.shape} and {v.shape}."
        )
    single = q.ndim == 3
    dtype = np.result_type(q, k, v)
    if dtype.kind != "f":
        dtype = np.dtype(_settings.floatx())
    query, key, value = (cast(t, dtype) for t in (query, key, value))
    if single:
        query, key, value = (reshape(t, (1,) + np.shape(raw(t))) for t in (query, key, value))
    _, t_len, heads, depth = np.shape(raw(query))
    s_len, kv_heads = np.shape(raw(key))[1], np.shape(raw(key))[2]
    if heads % kv_heads:
        raise ValueError(
            f"dot_product_attention: the query's {heads} heads must be a multiple of the "
            f"key's {kv_heads}."
        )
    q_t = transpose(query, (0, 2, 1, 3))  # (B, N, T, H)
    k_t = transpose(key, (0, 2, 3, 1))  # (B, K, H, S)
    v_t = transpose(value, (0, 2, 1, 3))  # (B, K, S, H)
    if kv_heads != heads:
        k_t = repeat(k_t, heads // kv_heads, axis=1)
        v_t = repeat(v_t, heads // kv_heads, axis=1)
    factor = 1.0 / math.sqrt(depth) if scale is None else _number(scale)
    logits = multiply(matmul(q_t, k_t), np.asarray(factor, dtype))  # (B, N, T, S)
    allowed = None
    if mask is not None:
        allowed = raw(mask).astype(bool)
    if is_causal:
        causal = np.tril(np.ones((t_len, s_len), dtype=bool))
        allowed = causal if allowed is None else np.logical_and(allowed, causal)
    if allowed is not None:
        logits = add(logits, np.where(allowed, np.zeros((), dtype), _large_negative(dtype)))
    if bias is not None:
        logits = add(logits, cast(bias, dtype))
    out = transpose(matmul(softmax(logits, axis=-1), v_t), (0, 2, 1, 3))  # (B, T, N, H)
    return reshape(out, np.shape(raw(out))[1:]) if single else out


def batch_normalization(
    x: Any,
    mean: Any,  # noqa: A002 -- Keras' argument name
    variance: Any,
    axis: int,
    offset: Any = None,
    scale: Any = None,
    epsilon: float = 1e-3,
) -> Tensor:
    """``(x - mean) rsqrt(variance + epsilon) scale + offset`` with the 1-D statistics
    (and offset, scale) laid along ``axis`` of x."""
    ndim = np.ndim(raw(x))
    if not -ndim <= axis < ndim:
        raise ValueError(f"batch_normalization: axis {axis} is out of range for rank {ndim}.")
    size = np.shape(raw(mean))[0] if np.ndim(raw(mean)) else 1
    view = [1] * ndim
    view[axis] = size

    def laid(t: Any) -> Any:
        return reshape(t, view)

    factor = rsqrt(add(laid(variance), epsilon))
    if scale is not None:
        factor = multiply(factor, laid(scale))
    out = multiply(subtract(x, laid(mean)), factor)
    return out if offset is None else add(out, laid(offset))


def layer_normalization(
    x: Any, gamma: Any = None, beta: Any = None, axis: Any = -1, epsilon: Any = None, **kwargs: Any
) -> Tensor:
    """x normalised by its mean and variance over ``axis`` (an int or a list), times
    ``gamma`` plus ``beta`` when given; computed in at least float32, returned in x's dtype."""
    rms_scaling = kwargs.pop("rms_scaling", False)
    if kwargs:
        raise TypeError(f"layer_normalization: unexpected arguments {sorted(kwargs)}.")
    eps = _settings.epsilon() if epsilon is None else float(epsilon)
    original = raw(x).dtype
    compute = np.result_type(original, np.float32) if original.kind == "f" else np.float32
    x = cast(x, compute)
    ndim = np.ndim(raw(x))
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    axes = sorted(int(a) % ndim for a in axes)
    shape = [1] * ndim
    for a in axes:
        shape[a] = np.shape(raw(x))[a]

    def laid(t: Any) -> Any:
        if t is None:
            return None
        t = cast(t, compute)
        if np.ndim(raw(t)) != ndim and axes != [ndim - 1]:
            return reshape(t, shape)
        return t

    gamma, beta = laid(gamma), laid(beta)
    centre = mean(x, axis=axes, keepdims=True)
    centred = subtract(x, centre)
    variance = mean(multiply(centred, centred), axis=axes, keepdims=True)
    inverse = rsqrt(add(variance, np.asarray(eps, compute)))
    if rms_scaling:
        out = multiply(x, inverse)
        out = out if gamma is None else multiply(out, gamma)
    else:
        out = multiply(centred, inverse)
        if gamma is not None:
            out = multiply(out, gamma)
        if beta is not None:
            out = add(out, beta)
    return cast(out, original) if original.kind == "f" else out


def _check_block(x: Any, block_size: int, data_format: str, op: str) -> tuple[int, ...]:
    shape = np.shape(raw(x))
    if len(shape) != 4:
        raise ValueError(f"{op}: requires a 4-D input tensor; got shape {shape}.")
    if int(block_size) < 2:
        raise ValueError(f"{op}: block_size must be at least 2; got {block_size}.")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{op}: data_format must be 'channels_last' or 'channels_first'; got {data_format!r}."
        )
    return shape


def depth_to_space(x: Any, block_size: int, data_format: str = "channels_last") -> Tensor:
    """(N, H, W, C r^2) -> (N, H r, W r, C) (TensorFlow's order; channels_first alike)."""
    r = int(block_size)
    shape = _check_block(x, r, data_format, "depth_to_space")
    if data_format == "channels_last":
        n, h, w, c = shape
        if c % (r * r):
            raise ValueError(f"depth_to_space: channels {c} not divisible by {r * r}.")
        out = transpose(reshape(x, (n, h, w, r, r, c // (r * r))), (0, 1, 3, 2, 4, 5))
        return reshape(out, (n, h * r, w * r, c // (r * r)))
    n, c, h, w = shape
    if c % (r * r):
        raise ValueError(f"depth_to_space: channels {c} not divisible by {r * r}.")
    out = transpose(reshape(x, (n, c // (r * r), r, r, h, w)), (0, 1, 4, 2, 5, 3))
    return reshape(out, (n, c // (r * r), h * r, w * r))


def space_to_depth(x: Any, block_size: int, data_format: str = "channels_last") -> Tensor:
    """(N, H r, W r, C) -> (N, H, W, C r^2), the inverse of ``depth_to_space``."""
    r = int(block_size)
    shape = _check_block(x, r, data_format, "space_to_depth")
    if data_format == "channels_last":
        n, h, w, c = shape
    else:
        n, c, h, w = shape
    if h % r or w % r:
        raise ValueError(
            f"space_to_depth: height {h} and width {w} must be divisible by block_size {r}."
        )
    if data_format == "channels_last":
        out = transpose(reshape(x, (n, h // r, r, w // r, r, c)), (0, 1, 3, 2, 4, 5))
        return reshape(out, (n, h // r, w // r, c * r * r))
    out = transpose(reshape(x, (n, c, h // r, r, w // r, r)), (0, 1, 3, 5, 2, 4))
    return reshape(out, (n, c * r * r, h // r, w // r))


def psnr(x1: Any, x2: Any, max_val: Any) -> Tensor:
    """Peak signal-to-noise ratio in dB: 20 log10(max_val) - 10 log10(mean((x1 - x2)^2))."""
    a, b = raw(x1), raw(x2)
    if a.shape != b.shape:
        raise ValueError(f"psnr: input shapes {a.shape} and {b.shape} must match.")
    difference = subtract(x1, x2)
    mse = mean(multiply(difference, difference))
    dtype = raw(mse).dtype
    ln10 = np.asarray(math.log(10), dtype)
    peak = np.asarray(20 * math.log10(_number(max_val)), dtype)
    return subtract(peak, multiply(log(mse), np.asarray(10, dtype) / ln10))


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    values = tuple(int(v) for v in value)
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints; got {value!r}.")
    return values


def _block_index(size: int, kernel: int, dilation: int, stride: int) -> np.ndarray:
    """(kernel, out) rows read by each kernel offset at each output position."""
    count = (size - dilation * (kernel - 1) - 1) // stride + 1
    if count < 1:
        raise ValueError("unfold/fold: the kernel does not fit in the (padded) input.")
    return np.arange(kernel)[:, None] * dilation + np.arange(count)[None, :] * stride


def unfold(
    x: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> Tensor:
    """PyTorch's im2col: sliding blocks of (N, C, H, W) as columns, (N, C kh kw, L)."""
    shape = np.shape(raw(x))
    if len(shape) != 4:
        raise ValueError(f"unfold: the input must be 4-D (N, C, H, W); got shape {shape}.")
    (kh, kw), (dh, dw) = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    (ph, pw), (sh, sw) = _pair(padding, "padding"), _pair(stride, "stride")
    n, c, h, w = shape
    padded = pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)]) if ph or pw else x
    rows = _block_index(h + 2 * ph, kh, dh, sh)  # (kh, oh)
    cols = _block_index(w + 2 * pw, kw, dw, sw)  # (kw, ow)
    index = (slice(None), slice(None), rows[:, None, :, None], cols[None, :, None, :])
    blocks = getitem(padded, index)  # (N, C, kh, kw, oh, ow)
    return reshape(blocks, (n, c * kh * kw, rows.shape[1] * cols.shape[1]))


def fold(
    x: Any,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Tensor:
    """PyTorch's col2im, the adjoint of ``unfold``: columns (N, C kh kw, L) added back
    into an (N, C, H, W) image of ``output_size`` (H, W)."""
    shape = np.shape(raw(x))
    if len(shape) != 3:
        raise ValueError(f"fold: the input must be 3-D (N, C kh kw, L); got shape {shape}.")
    (h, w), (kh, kw) = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    (dh, dw), (ph, pw) = _pair(dilation, "dilation"), _pair(padding, "padding")
    sh, sw = _pair(stride, "stride")
    n, ckk, length = shape
    if ckk % (kh * kw):
        raise ValueError(f"fold: axis 1 ({ckk}) must be divisible by kh * kw = {kh * kw}.")
    c = ckk // (kh * kw)
    hp, wp = h + 2 * ph, w + 2 * pw
    rows, cols = _block_index(hp, kh, dh, sh), _block_index(wp, kw, dw, sw)
    if rows.shape[1] * cols.shape[1] != length:
        raise ValueError(
            f"fold: {length} blocks do not match output_size {(h, w)} with this kernel, "
            f"dilation, padding and stride ({rows.shape[1] * cols.shape[1]} expected)."
        )
    flat = rows[:, None, :, None] * wp + cols[None, :, None, :]  # (kh, kw, oh, ow)
    blocks = reshape(x, (n, c, flat.size))
    values = transpose(blocks, (2, 0, 1))  # (kh kw oh ow, N, C)
    image = scatter(flat.reshape(-1, 1), values, (hp * wp, n, c))
    image = transpose(reshape(image, (hp, wp, n, c)), (2, 3, 0, 1))
    return getitem(image, (slice(None), slice(None), slice(ph, ph + h), slice(pw, pw + w)))
