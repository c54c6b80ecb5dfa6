"""The unfused maths of dendrite's fused primitives, in plain NumPy (float64), written for
reading rather than speed: the expected forward values of ``fused_cases``.

Layouts are dendrite's (Keras's): channels_last images (N, H, W, C), convolution kernels
(kh, kw, C / groups, F), transposed-convolution kernels (kh, kw, F, C), recurrent gates in
Keras's order (LSTM: i, f, c, o; GRU: z, r, h).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
Pads = tuple[tuple[int, int], tuple[int, int]]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None = None,
    strides: tuple[int, int] = (1, 1),
    pads: Pads = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """``out[n, i, j, f] = sum_{a, b, c} xp[n, i s + a d, j s + b d, c] k[a, b, c, f] + b_f``,
    with ``xp`` the zero-padded input and ``c`` running over the group of ``f``."""
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    kh, kw, per_group, filters = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, filters))
    width = filters // groups
    for g in range(groups):
        channels = slice(g * per_group, (g + 1) * per_group)
        outputs = slice(g * width, (g + 1) * width)
        for a in range(kh):
            for b in range(kw):
                rows = slice(a * dh, a * dh + (oh - 1) * sh + 1, sh)
                cols = slice(b * dw, b * dw + (ow - 1) * sw + 1, sw)
                out[..., outputs] += xp[:, rows, cols, channels] @ kernel[a, b, :, outputs]
    return out if bias is None else out + bias


def conv1d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pads: tuple) -> np.ndarray:
    """A 1-D convolution (N, L, C) as a 2-D one of height 1."""
    return conv2d(x[:, None], kernel[None], bias, pads=((0, 0), pads))[:, 0]


def conv_transpose2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray,
    strides: tuple[int, int],
    size: tuple[int, int],
    before: tuple[int, int],
) -> np.ndarray:
    """Each input pixel scatters ``x[n, i, j] @ k[a, b].T`` to ``(i s + a, j s + b)`` of the
    full output; the result is the ``size`` window starting at ``before``."""
    n, h, w, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, sw), (bh, bw) = strides, before
    full = np.zeros(
        (n, max((h - 1) * sh + kh, bh + size[0]), max((w - 1) * sw + kw, bw + size[1]), filters)
    )
    for a in range(kh):
        for b in range(kw):
            rows = slice(a, a + (h - 1) * sh + 1, sh)
            cols = slice(b, b + (w - 1) * sw + 1, sw)
            full[:, rows, cols] += x @ kernel[a, b].T
    return full[:, bh : bh + size[0], bw : bw + size[1]] + bias


def pool2d(
    x: np.ndarray, pool: tuple[int, int], strides: tuple[int, int], pads: Pads, reduce: str
) -> np.ndarray:
    """The max or the mean of each window; padding is left out (NaN, then ignored)."""
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=np.nan)
    (ph, pw), (sh, sw) = pool, strides
    oh = (xp.shape[1] - ph) // sh + 1
    ow = (xp.shape[2] - pw) // sw + 1
    windows = np.stack(
        [
            xp[:, a : a + (oh - 1) * sh + 1 : sh, b : b + (ow - 1) * sw + 1 : sw]
            for a in range(ph)
            for b in range(pw)
        ]
    )
    return np.nanmax(windows, axis=0) if reduce == "max" else np.nanmean(windows, axis=0)


def unfold_axis(x: Array, size: int, stride: int, dilation: int, pads: tuple) -> Array:
    """``u[n, o, ..., i, c] = xp[n, o s + i d, ..., c]``, ``xp`` zero-padded on axis 1."""
    widths = [(0, 0)] * x.ndim
    widths[1] = pads
    xp = np.pad(x, widths)
    count = (xp.shape[1] - (size - 1) * dilation - 1) // stride + 1
    taps = [
        np.stack([xp[:, o * stride + i * dilation] for o in range(count)], axis=1)
        for i in range(size)
    ]
    return np.stack(taps, axis=-2)


def fold_axis(u: Array, length: int, stride: int, dilation: int, pads: tuple) -> Array:
    """The adjoint of ``unfold_axis``: ``yp[n, o s + i d, ...] += u[n, o, ..., i, :]``,
    cropped to ``length``."""
    n, count, *rest, size, channels = u.shape
    yp = np.zeros((n, length + pads[0] + pads[1], *rest, channels))
    for o in range(count):
        for i in range(size):
            yp[:, o * stride + i * dilation] += u[:, o, ..., i, :]
    return yp[:, pads[0] : pads[0] + length]


def normalize(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    axes: tuple[int, ...],
    param_shape: tuple[int, ...],
    epsilon: float = 1e-3,
) -> np.ndarray:
    """``gamma (x - mean) / sqrt(var + eps) + beta``, statistics over ``axes`` (biased)."""
    mean = x.mean(axis=axes, keepdims=True)
    variance = x.var(axis=axes, keepdims=True)
    scaled = (x - mean) / np.sqrt(variance + epsilon)
    return scaled * gamma.reshape(param_shape) + beta.reshape(param_shape)


def softmax_cross_entropy(labels: np.ndarray, logits: np.ndarray, axis: int) -> np.ndarray:
    return -(labels * log_softmax(logits, axis)).sum(axis=axis)


def sparse_softmax_cross_entropy(
    labels: np.ndarray, logits: np.ndarray, ignore_class: int | None = None
) -> np.ndarray:
    """``-log_softmax(logits)[label]`` along the last axis; 0 where the label is ignored."""
    keep = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    safe = np.where(keep, labels, 0)
    picked = np.take_along_axis(log_softmax(logits, -1), safe[..., None], axis=-1)[..., 0]
    return np.where(keep, -picked, 0.0)


def sigmoid_binary_cross_entropy(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``-(y log s(z) + (1 - y) log(1 - s(z)))``, written directly."""
    p = sigmoid(logits)
    return -(labels * np.log(p) + (1.0 - labels) * np.log(1.0 - p))


def simple_rnn(x: Array, kernel: Array, bias: Array, h0: Array, recurrent_kernel: Array) -> Array:
    """``h_t = tanh(x_t W + b + h_{t-1} U)``; all states (N, T, units)."""
    h, states = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + bias + h @ recurrent_kernel)
        states.append(h)
    return np.stack(states, axis=1)


def lstm(
    x: Array, kernel: Array, bias: Array, h0: Array, c0: Array, recurrent_kernel: Array
) -> Array:
    """Keras's LSTM step ``z = x_t W + h U + b``, gates i, f, c, o:
    ``c' = s(f) c + s(i) tanh(c~)``, ``h' = s(o) tanh(c')``; (h, c) states as (2, N, T, u)."""
    h, c, hs, cs = h0, c0, [], []
    for t in range(x.shape[1]):
        i, f, candidate, o = np.split(x[:, t] @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(candidate)
        h = sigmoid(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.stack([np.stack(hs, axis=1), np.stack(cs, axis=1)])


def gru(
    x: Array,
    kernel: Array,
    bias: Array,
    h0: Array,
    recurrent_kernel: Array,
    recurrent_bias: Array,
) -> Array:
    """Keras's GRU with reset_after=True, gates z, r, h: ``z, r = s(x W + b + h U + rb)``,
    ``h~ = tanh(x W_h + b_h + r (h U_h + rb_h))``, ``h' = z h + (1 - z) h~``."""
    h, states = h0, []
    for t in range(x.shape[1]):
        xz, xr, xh = np.split(x[:, t] @ kernel + bias, 3, axis=-1)
        hz, hr, hh = np.split(h @ recurrent_kernel + recurrent_bias, 3, axis=-1)
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        h = z * h + (1.0 - z) * np.tanh(xh + r * hh)
        states.append(h)
    return np.stack(states, axis=1)


def ctc_loss(
    labels: Array, label_lengths: Array, logit_lengths: Array, logits: Array, blank: int
) -> Array:
    """CTC's ``-log p(l | z)`` per sample by the alpha recursion in probability space (no
    logarithms until the end), one sample and one state at a time: over the extended labels
    ``l' = (b, l_1, b, .., l_L, b)``, ``a_t(s) = y_t(l'_s) (a_{t-1}(s) + a_{t-1}(s-1) +
    [l'_s != b and l'_s != l'_{s-2}] a_{t-1}(s-2))``, ``p = a_{T-1}(S-1) + a_{T-1}(S-2)``."""
    probs = np.exp(log_softmax(logits, axis=-1))
    out = []
    for i in range(logits.shape[0]):
        ext = [blank]
        for label in labels[i, : label_lengths[i]]:
            ext += [int(label), blank]
        frames, states = int(logit_lengths[i]), len(ext)
        if frames == 0:
            out.append(0.0 if states == 1 else np.inf)
            continue
        alpha = np.zeros(states)
        alpha[0] = probs[i, 0, ext[0]]
        if states > 1:
            alpha[1] = probs[i, 0, ext[1]]
        for t in range(1, frames):
            previous, alpha = alpha, np.zeros(states)
            for s in range(states):
                total = previous[s] + (previous[s - 1] if s >= 1 else 0.0)
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    total += previous[s - 2]
                alpha[s] = total * probs[i, t, ext[s]]
        with np.errstate(divide="ignore"):
            out.append(-np.log(alpha[-1] + (alpha[-2] if states > 1 else 0.0)))
    return np.array(out)


def segment_reduce(data: Array, ids: Array, num_segments: int, kind: str) -> Array:
    """``out[s] = reduce(data[i] for ids[i] == s)`` row by row, empty segments holding the
    reduction's identity (0, 1, -inf for max, +inf for min); ids outside [0, num) dropped."""
    identity = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}[kind]
    pick = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}[kind]
    out = np.full((num_segments,) + data.shape[1:], identity, dtype=data.dtype)
    for row, segment in zip(data, ids):
        if 0 <= segment < num_segments:
            out[segment] = pick(out[segment], row)
    return out


def log1pexp(x: Array) -> Array:
    """ln(1 + e^x), the function of the custom-gradient case."""
    return np.logaddexp(0.0, x)
