"""Fused normalisation primitives and the embedding gather.

``normalize``: batch, layer, group and instance normalisation are one computation that
differs only in the axes ``A`` it averages over and the shape of the learned scale and
offset. Over ``A``, with ``m`` the number of elements reduced:

- ``mu = mean_A(x)``, ``s2 = mean_A((x - mu)^2)`` (the biased variance, as Keras and the
  paper use), ``xhat = (x - mu) / sqrt(s2 + eps)``, ``y = gamma * xhat + beta``;
- with ``g = dL/dy`` and ``gx = g * gamma``:
  ``dL/dbeta = sum(g)`` and ``dL/dgamma = sum(g * xhat)`` over the axes the parameters are
  broadcast along, and the standard batch-norm VJP
  ``dL/dx = (gx - mean_A(gx) - xhat * mean_A(gx * xhat)) / sqrt(s2 + eps)``.

  When the parameters are broadcast exactly along ``A`` (batch normalisation) the means
  reuse the parameter gradients: ``mean_A(gx) = gamma dL/dbeta / m`` and
  ``mean_A(gx xhat) = gamma dL/dgamma / m``.

One node replaces the dozen a composition would record, and the forward pass keeps only
``xhat`` and ``1 / sqrt(s2 + eps)``.

``scale_shift``: ``y = x * a + b`` with ``a``, ``b`` broadcast (batch normalisation at
inference, where the statistics are constants): ``dL/dx = g a``, ``dL/da = sum(g x)``,
``dL/db = sum(g)`` over the broadcast axes.

``rms_normalization``: ``y = x / sqrt(mean_A(x^2) + eps) * scale`` (Zhang and Sennrich, 2019),
a composition of ops, so its gradient is theirs.

``embedding_lookup``: ``y[..., :] = table[i[...], :]``; the VJP adds each row of ``g`` into
the row of the table it was read from, ``dL/dtable[j] = sum_{i[p] = j} g[p]``. NumPy's
unbuffered ``np.add.at`` on a flat (1-D) view has a fast path (NumPy >= 1.25) that measured
faster than sorting + ``np.add.reduceat``, ``np.bincount`` and 2-D ``np.add.at``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Function, Tensor, register
from dendrite.ops._util import unbroadcast

_vecdot = getattr(np, "vecdot", None)
if _vecdot is None:  # NumPy < 2.0

    def _vecdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=-1)


class NormStats:
    """Receives the batch mean and variance computed by ``normalize`` (keepdims shape)."""

    __slots__ = ("mean", "variance")

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.variance: np.ndarray | None = None


# Sums over an axis of R rows of W contiguous values run row by row in NumPy, slowly when
# W is small; summing blocks of k rows as one row of k * W values first is several times
# faster (and, being a two-level sum, more accurate).
_ROW_WIDTH = 4096


def _sum_middle(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=1)`` for a contiguous (A, R, W) array, as (A, W)."""
    a, r, w = x.shape
    if w == 1:
        x = x.reshape(a, r)
        return (_vecdot(x, np.ones(r, x.dtype)) if r >= 64 else x.sum(axis=1)).reshape(a, 1)
    k = _ROW_WIDTH // w
    if k < 2 or r < 2 * k:
        return x.sum(axis=1)
    q = r // k
    out = x[:, : q * k].reshape(a, q, k * w).sum(axis=1).reshape(a, k, w).sum(axis=1)
    if q * k < r:
        out += x[:, q * k :].sum(axis=1)
    return out


def _sum_over(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``x.sum(axes, keepdims=True)`` for sorted, non-negative ``axes``: each run of
    consecutive reduced axes is summed as the middle axis of a 3-D view."""
    if not axes:
        return x
    kept = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    x = np.ascontiguousarray(x)
    shape = list(x.shape)
    reduced = set(axes)
    position = 0  # index into ``shape`` of the next axis to look at
    axis = 0  # index of that axis in the original array
    while position < len(shape):
        if axis not in reduced:
            position += 1
            axis += 1
            continue
        end = position
        while end < len(shape) and axis + (end - position) in reduced:
            end += 1
        before = int(np.prod(shape[:position]))
        size = int(np.prod(shape[position:end]))
        after = int(np.prod(shape[end:]))
        x = _sum_middle(x.reshape(before, size, after))
        axis += end - position
        del shape[position:end]
    return x.reshape(kept)


@register("normalize")
class Normalize(Function):
    """``gamma * (x - mean_A x) / sqrt(var_A x + eps) + beta`` (see the module docstring).

    Inputs: ``x``, then ``gamma`` if ``scale``, then ``beta`` if ``center``; the parameters
    are reshaped to ``param_shape`` (x's rank, 1 on the axes they are broadcast along).
    Layer normalisation over trailing axes works on a 2-D (rows, features) view, where the
    per-row sums are ``np.vecdot`` calls.
    """

    def forward(
        self,
        x: np.ndarray,
        *params: np.ndarray,
        axes: tuple[int, ...] = (-1,),
        epsilon: float = 1e-3,
        scale: bool = True,
        center: bool = True,
        param_shape: tuple[int, ...] | None = None,
        stats: NormStats | None = None,
    ) -> np.ndarray:
        ndim = x.ndim
        axes = tuple(sorted(a % ndim for a in axes))
        gamma = params[0] if scale else None
        beta = params[-1] if center else None
        if param_shape is None:
            param_shape = tuple(n if a in axes else 1 for a, n in enumerate(x.shape))
        param_axes = tuple(a for a, n in enumerate(param_shape) if n == 1)
        lead = ndim - len(axes)
        rows = axes == tuple(range(lead, ndim)) and param_axes == tuple(range(lead))
        count = int(np.prod([x.shape[a] for a in axes]))
        if _channels_last_batch_norm(x, axes, param_axes, gamma, beta):
            return self._forward_kernel(x, gamma, beta, epsilon, param_shape, stats, count)
        if rows:
            # Layer normalisation: a (rows, features) view, parameters along the features.
            view = x.reshape(-1, count)
            gamma_b = None if gamma is None else gamma.reshape(count)
            beta_b = None if beta is None else beta.reshape(count)
            mean = _sum_over(view, (1,))
            mean /= count
            xhat = view - mean
            variance = (_vecdot(xhat, xhat) / count)[:, None]
            out = np.empty_like(xhat)
        else:
            gamma_b = None if gamma is None else gamma.reshape(param_shape)
            beta_b = None if beta is None else beta.reshape(param_shape)
            mean = _sum_over(x, axes)
            mean /= count
            xhat = x - mean
            out = np.square(xhat)
            variance = _sum_over(out, axes)
            variance /= count
        inv = variance + np.asarray(epsilon, variance.dtype)
        np.sqrt(inv, out=inv)
        np.reciprocal(inv, out=inv)
        xhat *= inv
        if gamma_b is not None:
            np.multiply(xhat, gamma_b, out=out)
        else:
            np.copyto(out, xhat)
        if beta_b is not None:
            out += beta_b
        if stats is not None:
            stats_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
            stats.mean = mean.reshape(stats_shape)
            stats.variance = variance.reshape(stats_shape)
        if self.needs_grad:
            shapes = (None if gamma is None else gamma.shape, None if beta is None else beta.shape)
            self.saved = (xhat, inv, gamma_b, axes, param_axes, rows, count, shapes)
        return out.reshape(x.shape) if rows else out

    def _forward_kernel(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        epsilon: float,
        param_shape: tuple,
        stats: NormStats | None,
        count: int,
    ) -> np.ndarray:
        """Batch normalisation over all but the last axis of a C-ordered x, by
        csrc/batchnorm.c (three passes where NumPy takes seven)."""
        channels = x.shape[-1]
        out, xhat = np.empty_like(x), np.empty_like(x)
        mean, variance, inv = (np.empty(channels, x.dtype) for _ in range(3))
        _native.kernels.batchnorm_forward(
            x, gamma, beta, out, xhat, mean, variance, inv, count, channels, epsilon
        )
        if stats is not None:
            stats.mean = mean.reshape(param_shape)
            stats.variance = variance.reshape(param_shape)
        if self.needs_grad:
            gamma_b = None if gamma is None else gamma.reshape(param_shape)
            shapes = (None if gamma is None else gamma.shape, None if beta is None else beta.shape)
            axes = tuple(range(x.ndim - 1))
            self.saved = (xhat, inv.reshape(param_shape), gamma_b, axes, axes, False, count, shapes)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        xhat, inv, gamma_b, axes, param_axes, rows, count, shapes = self.saved
        gamma_shape, beta_shape = shapes
        needs = self.needs_grad
        need_gamma = gamma_shape is not None and needs[1]
        need_beta = beta_shape is not None and needs[-1]
        x_shape = g.shape
        dgamma = dbeta = dx = None
        if rows:
            g = g.reshape(xhat.shape)
            tmp = g * xhat
            if need_gamma:
                dgamma = _sum_over(tmp, (0,)).reshape(gamma_shape)
            if need_beta:
                dbeta = _sum_over(g, (0,)).reshape(beta_shape)
            if needs[0]:
                # mean over the features of gx * xhat and of gx, with gx = g * gamma.
                if gamma_b is None:
                    mean_gx_xhat = _sum_over(tmp, (1,))
                    mean_gx = _sum_over(g, (1,))
                    dx = g.copy()
                else:
                    mean_gx_xhat = _vecdot(tmp, gamma_b)[:, None]
                    mean_gx = _vecdot(g, gamma_b)[:, None]
                    dx = g * gamma_b
                mean_gx_xhat /= count
                mean_gx /= count
                dx -= mean_gx
                np.multiply(xhat, mean_gx_xhat, out=tmp)
                dx -= tmp
                dx *= inv
                dx = dx.reshape(x_shape)
        elif _channels_last_batch_norm(g, axes, param_axes, gamma_b, xhat):
            channels = g.shape[-1]
            sum_g, sum_g_xhat = np.empty(channels, g.dtype), np.empty(channels, g.dtype)
            dx = np.empty_like(g) if needs[0] else None
            gamma = None if gamma_b is None else gamma_b.reshape(channels)
            _native.kernels.batchnorm_backward(
                g, xhat, inv.reshape(channels), gamma, dx, sum_g, sum_g_xhat, count, channels
            )
            dgamma = sum_g_xhat.reshape(gamma_shape) if need_gamma else None
            dbeta = sum_g.reshape(beta_shape) if need_beta else None
        elif param_axes == axes:
            # Batch normalisation: the parameters are constant over A, so their gradients
            # are the sums the input gradient needs.
            tmp = g * xhat
            sum_g_xhat = _sum_over(tmp, axes)
            sum_g = _sum_over(g, axes)
            if need_gamma:
                dgamma = sum_g_xhat.reshape(gamma_shape)
            if need_beta:
                dbeta = sum_g.reshape(beta_shape)
            if needs[0]:
                factor = inv if gamma_b is None else inv * gamma_b
                np.multiply(xhat, sum_g_xhat / count, out=tmp)
                np.subtract(g, tmp, out=tmp)
                tmp -= sum_g / count
                tmp *= factor
                dx = tmp
        else:
            if need_gamma:
                dgamma = _sum_over(g * xhat, param_axes).reshape(gamma_shape)
            if need_beta:
                dbeta = _sum_over(g, param_axes).reshape(beta_shape)
            if needs[0]:
                gx = g if gamma_b is None else g * gamma_b
                tmp = gx * xhat
                mean_gx_xhat = _sum_over(tmp, axes) / count
                np.multiply(xhat, mean_gx_xhat, out=tmp)
                np.subtract(gx, tmp, out=tmp)
                tmp -= _sum_over(gx, axes) / count
                tmp *= inv
                dx = tmp
        grads: list = [dx]
        if gamma_shape is not None:
            grads.append(dgamma)
        if beta_shape is not None:
            grads.append(dbeta)
        return tuple(grads)


def _channels_last_batch_norm(
    x: np.ndarray, axes: tuple, param_axes: tuple, *others: np.ndarray | None
) -> bool:
    """Whether csrc/batchnorm.c computes this normalisation: statistics and parameters over
    every axis but the last (a channels-last batch norm) of a non-empty C-ordered x, the
    kernels loaded, and ``others`` (None or arrays) of x's dtype."""
    last = x.ndim - 1
    return (
        last >= 1
        and axes == param_axes == tuple(range(last))
        and x.size > 0
        and _native.usable(x, *[o for o in others if o is not None])
    )


def normalize(
    x: Any,
    gamma: Any = None,
    beta: Any = None,
    axes: Any = -1,
    epsilon: float = 1e-3,
    param_shape: tuple[int, ...] | None = None,
    stats: NormStats | None = None,
) -> Tensor:
    """Normalise ``x`` over ``axes`` to zero mean and unit variance, then scale by ``gamma``
    and shift by ``beta`` (either may be None).

    Args:
        x: input tensor.
        gamma, beta: scale and offset; reshaped to ``param_shape``, which defaults to x's
            shape on ``axes`` and 1 elsewhere (layer normalisation's broadcasting).
        axes: int or tuple: the axes statistics are taken over.
        epsilon: added to the variance.
        param_shape: how ``gamma`` and ``beta`` broadcast against ``x`` (x's rank).
        stats: a ``NormStats`` that receives the batch mean and variance (keepdims shape).
    """
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    params = [p for p in (gamma, beta) if p is not None]
    return Normalize.apply(
        x,
        *params,
        axes=tuple(int(a) for a in axes),
        epsilon=float(epsilon),
        scale=gamma is not None,
        center=beta is not None,
        param_shape=None if param_shape is None else tuple(int(n) for n in param_shape),
        stats=stats,
    )


@register("scale_shift")
class ScaleShift(Function):
    """``x * a + b`` with ``a`` and ``b`` broadcast against ``x``."""

    def forward(self, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = x * a
        out += b
        if self.needs_grad:
            self.saved = (x if self.needs_grad[1] else None, x.shape, a, b.shape)
        return out

    def backward(self, g: np.ndarray) -> tuple:
        x, x_shape, a, b_shape = self.saved
        needs = self.needs_grad
        gx = unbroadcast(g * a, x_shape) if needs[0] else None
        ga = unbroadcast(g * x, a.shape) if needs[1] else None
        gb = unbroadcast(g, b_shape) if needs[2] else None
        return gx, ga, gb


def scale_shift(x: Any, a: Any, b: Any) -> Tensor:
    """``x * a + b`` in one pass (``a``, ``b`` broadcast against ``x``)."""
    return ScaleShift.apply(x, a, b)


@register("embedding_lookup")
class EmbeddingLookup(Function):
    """Rows of ``table`` (V, D) at integer ``indices`` of any shape: (..., D)."""

    def forward(self, table: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
        flat = indices.reshape(-1)
        out = np.take(table, flat, axis=0)
        if self.needs_grad:
            self.saved = (flat, table.shape)
        return out.reshape(*indices.shape, table.shape[1])

    def backward(self, g: np.ndarray) -> np.ndarray:
        flat, (rows, width) = self.saved
        grad = np.zeros(rows * width, dtype=g.dtype)
        # Element (p, k) of g goes to element (i[p], k) of the table, numbered in the flat view.
        positions = flat[:, None] * width + np.arange(width)
        np.add.at(grad, positions.reshape(-1), np.ascontiguousarray(g).reshape(-1))
        return grad.reshape(rows, width)


def embedding_lookup(table: Any, indices: np.ndarray) -> Tensor:
    """``table[indices]``: rows of a (V, D) table at integer indices (checked by the caller:
    each must lie in [0, V))."""
    return EmbeddingLookup.apply(table, indices=np.asarray(indices))


def rms_normalization(x: Any, scale: Any = None, axis: Any = -1, epsilon: Any = None) -> Tensor:
    """Root-mean-square normalisation over ``axis`` (Keras' ``ops.rms_normalization``):
    ``y = x / sqrt(mean_axis(x^2) + epsilon) * scale``, without the mean subtracted.

    Args:
        x: input tensor.
        scale: multiplies the result (broadcast against ``x``), or None.
        axis: int or list of ints.
        epsilon: added to the mean square; None is Keras' ``epsilon()`` (1e-7).
    """
    from dendrite import _settings
    from dendrite.ops.creation import as_float_tensor
    from dendrite.ops.reduce import mean
    from dendrite.ops.unary import rsqrt, square

    x = as_float_tensor(x)
    axes = sorted(axis) if isinstance(axis, (list, tuple)) else axis
    eps = _settings.epsilon() if epsilon is None else float(epsilon)
    out = x * rsqrt(mean(square(x), axis=axes, keepdims=True) + eps)
    return out if scale is None else out * scale
