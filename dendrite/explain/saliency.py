"""Vanilla gradients (saliency) and gradient x input.

For a score ``s(x)`` (the chosen output, see ``_common``), the *saliency* of input
feature ``x_j`` is the partial derivative ``d s / d x_j`` (Simonyan et al., 2013): how much
the score moves per unit change of that feature, at this input. It is exactly what a
``GradientTape`` gives for ``tape.gradient(score, x)``. The usual saliency *map* of an image
takes ``|d s / d x_j|`` and its maximum over the colour channels (``absolute=True``,
``reduce_channels=True``).

*Gradient x input* (Shrikumar et al., 2016) multiplies each partial derivative by the
feature: ``a_j = x_j * d s / d x_j``. For a linear score ``s = w . x + b`` it is exactly
each feature's contribution ``w_j x_j``, so ``sum_j a_j = s(x) - s(0)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.explain._common import as_batch, gradients


def saliency(
    model: Any,
    x: Any,
    target: Any = None,
    absolute: bool = False,
    reduce_channels: bool = False,
) -> np.ndarray:
    """``d s / d x`` for each sample of the batch ``x``, shaped like ``x``.

    Args:
        model: any differentiable model (Sequential, functional, subclassed, or a function
            of a Tensor returning a Tensor).
        x: a batch of inputs.
        target: the output unit to explain (see ``dendrite.explain``).
        absolute: return ``|d s / d x|``.
        reduce_channels: take the maximum over the last axis (the channels of an image),
            giving shape ``x.shape[:-1]``.
    """
    batch = as_batch(x)
    grad, _ = gradients(model, batch, target)
    if absolute:
        grad = np.abs(grad)
    if reduce_channels:
        grad = np.abs(grad).max(axis=-1) if absolute else grad.max(axis=-1)
    return grad


def gradient_x_input(model: Any, x: Any, target: Any = None) -> np.ndarray:
    """``x * d s / d x`` for each sample, shaped like ``x``."""
    batch = as_batch(x)
    grad, _ = gradients(model, batch, target)
    return batch * grad
