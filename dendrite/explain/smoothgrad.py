"""SmoothGrad (Smilkov et al., 2017): the gradient averaged over noisy copies of the input.

``SG(x) = (1/N) sum_{k=1..N} d s / d x (x + e_k)``, ``e_k ~ Normal(0, sigma^2)``, with
``sigma = noise * (max(x_i) - min(x_i))`` per sample (the paper's noise level, 10-20% of
the input's range). A gradient map of a ReLU network is noisy because the gradient jumps
from one linear piece to the next; averaging over a neighbourhood keeps what is stable.
With ``squared=True`` the squares of the gradients are averaged instead (SmoothGrad-Squared).
As ``noise -> 0`` it tends to the plain gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.explain._common import as_batch, chunks, fixed_target, gradients


def smoothgrad(
    model: Any,
    x: Any,
    target: Any = None,
    samples: int = 25,
    noise: float = 0.15,
    squared: bool = False,
    seed: int | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """The average gradient of the target's score over ``samples`` noisy copies of each
    input, shaped like ``x``.

    Args:
        samples: the number of noisy copies per input.
        noise: the noise's standard deviation as a fraction of each sample's value range.
        squared: average the squared gradients (SmoothGrad-Squared).
        seed: seed of the noise (NumPy's generator), for repeatable maps.
        batch_size: how many noisy copies one forward/backward sweep takes.
    """
    if samples < 1:
        raise ValueError(f"smoothgrad needs samples >= 1, got {samples}.")
    batch = as_batch(x)
    n = batch.shape[0]
    target = fixed_target(model, batch, target)
    rng = np.random.default_rng(seed)
    flat = batch.reshape(n, -1)
    sigma = noise * (flat.max(axis=1) - flat.min(axis=1))
    sigma = sigma.reshape((n,) + (1,) * (batch.ndim - 1))
    # Every noisy copy of every sample in one long batch: row k * n + i is sample i.
    noisy = (batch[None] + rng.normal(size=(samples,) + batch.shape) * sigma[None]).astype(
        batch.dtype
    )
    noisy = noisy.reshape((samples * n,) + batch.shape[1:])
    units = target if callable(target) or target is None else np.tile(target, samples)
    total = np.zeros(batch.shape, dtype=np.float64)
    step = max(1, batch_size // n) * n
    for part in chunks(samples * n, step):
        part_units = units if callable(units) or units is None else units[part]
        grad, _ = gradients(model, noisy[part], part_units)
        grad = grad.reshape((-1, n) + batch.shape[1:])
        total += (grad**2 if squared else grad).sum(axis=0)
    return (total / samples).astype(batch.dtype)
