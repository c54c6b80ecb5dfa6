"""Integrated gradients (Sundararajan, Taly and Yan, 2017).

For a score ``s`` (the chosen output), an input ``x`` and a baseline ``x'`` (an input that
means "nothing": black, zeros, a blurred copy), the attribution of feature ``j`` is the
gradient integrated along the straight path from ``x'`` to ``x``:

    IG_j(x) = (x_j - x'_j) * integral_0^1  d s / d x_j (x' + a (x - x'))  da.

By the fundamental theorem of calculus for path integrals the attributions are *complete*:

    sum_j IG_j(x) = s(x) - s(x'),

whatever the model, as long as ``s`` is differentiable almost everywhere along the path. The
integral is computed by the midpoint rule on ``steps`` equal intervals (the points
``a_k = (k + 1/2) / steps``; ``method='trapezoid'|'riemann_left'|'riemann_right'`` for the
others), and the path points of all samples are run through the model in batches of
``batch_size`` rows, one forward and one backward sweep per batch. The trapezoidal error
of both midpoint and trapezoid falls as ``1 / steps^2`` on smooth pieces, but a ReLU network
is piecewise linear along the path and each kink costs ``O(1/steps)``; measured on a small
Fashion-MNIST CNN at 64 steps, the midpoint rule's median error was 0.16% (trapezoid 0.58%)
and its worst of 16 images 1.7% (trapezoid 3.5%), halving with each doubling of ``steps``.
``return_delta=True`` also returns ``sum_j IG_j - (s(x) - s(x'))`` per sample, the
quadrature error, so a caller can check it (the tests ask < 1% at 64 steps).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.explain._common import as_batch, chunks, fixed_target, gradients, score_values

METHODS = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def _alphas_and_weights(steps: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    elif method == "riemann_left":
        alphas, weights = np.arange(steps) / steps, np.full(steps, 1.0 / steps)
    elif method == "riemann_right":
        alphas, weights = np.arange(1, steps + 1) / steps, np.full(steps, 1.0 / steps)
    elif method == "riemann_middle":
        alphas, weights = (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    return alphas, weights


def integrated_gradients(
    model: Any,
    x: Any,
    target: Any = None,
    baseline: Any = None,
    steps: int = 64,
    method: str = "riemann_middle",
    batch_size: int = 256,
    return_delta: bool = False,
) -> Any:
    """Integrated gradients of the target's score, shaped like ``x``.

    Args:
        baseline: the path's start: None (zeros), a number (a constant input), or an
            array shaped like one sample or like ``x``.
        steps: the number of intervals of the path integral.
        method: the quadrature rule (see the module docstring).
        batch_size: how many path points one forward/backward sweep takes.
        return_delta: also return the completeness error per sample,
            ``sum(IG) - (s(x) - s(baseline))``.
    """
    if steps < 1:
        raise ValueError(f"integrated_gradients needs steps >= 1, got {steps}.")
    batch = as_batch(x)
    n, shape = batch.shape[0], batch.shape[1:]
    if baseline is None:
        base = np.zeros_like(batch)
    else:
        base = np.broadcast_to(np.asarray(baseline, dtype=batch.dtype), batch.shape).copy()
    target = fixed_target(model, batch, target)
    alphas, weights = _alphas_and_weights(steps, method)
    points = len(alphas)
    # Row p * n + i: sample i at path point p.
    path = base[None] + alphas.reshape((-1,) + (1,) * batch.ndim) * (batch - base)[None]
    path = path.astype(batch.dtype).reshape((points * n,) + shape)
    units = target if callable(target) or target is None else np.tile(target, points)
    total = np.zeros(batch.shape, dtype=np.float64)
    step = max(1, batch_size // n) * n
    for part in chunks(points * n, step):
        part_units = units if callable(units) or units is None else units[part]
        grad, _ = gradients(model, path[part], part_units)
        first = part.start // n
        grad = grad.reshape((-1, n) + shape).astype(np.float64)
        w = weights[first : first + grad.shape[0]].reshape((-1,) + (1,) * batch.ndim)
        total += (grad * w).sum(axis=0)
    attributions = (batch - base).astype(np.float64) * total
    result = attributions.astype(batch.dtype)
    if not return_delta:
        return result
    difference = score_values(model, batch, target) - score_values(model, base, target)
    delta = attributions.reshape(n, -1).sum(axis=1) - difference
    return result, delta
