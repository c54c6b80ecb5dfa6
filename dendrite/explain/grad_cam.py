"""Grad-CAM and Grad-CAM++: where in the image a convolutional model looks.

Let ``A`` be a convolution's output for one sample, with ``K`` channels ``A^k`` on a
spatial grid ``(i, j)`` (any number of spatial axes: 1-D for sequences, 2-D for images),
and ``g^k_ij = d s / d A^k_ij`` the gradient of the chosen score.

*Grad-CAM* (Selvaraju et al., 2017) weighs each channel by its average gradient and keeps
the positive part of the weighted sum:

    a_k = (1/Z) sum_ij g^k_ij,        L = ReLU( sum_k a_k A^k ).

*Grad-CAM++* (Chattopadhyay et al., 2018) weighs each position's positive gradient by

    alpha^k_ij = (g^k_ij)^2 / ( 2 (g^k_ij)^2 + sum_ab A^k_ab (g^k_ij)^3 ),
    w_k = sum_ij alpha^k_ij ReLU(g^k_ij),   L = ReLU( sum_k w_k A^k ),

the closed form for an exponential score ``exp(s)`` (higher derivatives of ``exp(s)`` are
powers of its first), which credits several instances of a class rather than the largest.

The map has the layer's spatial grid; ``upsample=True`` resizes it to the input's by linear
interpolation (separable, pixel centres aligned, as an image resize). ``normalize=True``
(the default) divides each sample's map by its maximum, so it lies in [0, 1]. The layer is
chosen by name (or as a Layer); by default the last convolution of the model (searched
through nested models), the layer with the finest grid that still sees whole objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import GradientTape, Tensor
from dendrite.explain._common import as_batch, capture, resolve_target, run, scores


def find_last_conv(model: Any) -> Any:
    """The last layer of ``model`` (depth first through nested models) whose class name
    holds "Conv" (Conv1D/2D/3D, separable, depthwise, transposed): Grad-CAM's default."""
    found = None
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None):
            inner = find_last_conv(layer)
            found = inner if inner is not None else found
        elif "Conv" in type(layer).__name__:
            found = layer
    return found


def _layer(model: Any, layer: Any) -> Any:
    if layer is None:
        found = find_last_conv(model)
        if found is None:
            raise ValueError(
                f"grad_cam found no convolution in model '{getattr(model, 'name', model)}'; "
                "pass layer=<name> of a layer with a spatial output."
            )
        return found
    if isinstance(layer, str):
        found = _by_name(model, layer)
        if found is None:
            raise ValueError(f"grad_cam: no layer named {layer!r} in this model.")
        return found
    return layer


def _by_name(model: Any, name: str) -> Any:
    for layer in getattr(model, "layers", []):
        if getattr(layer, "name", None) == name:
            return layer
        inner = _by_name(layer, name) if getattr(layer, "layers", None) else None
        if inner is not None:
            return inner
    return None


def activations_and_gradients(
    model: Any, x: Any, target: Any, layer: Any = None
) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(A, d s / d A, layer)``: the chosen layer's output on ``x`` and the gradient of
    the target's score by it, both shaped like the layer's output."""
    batch = as_batch(x)
    chosen = _layer(model, layer)
    store: list = []
    with GradientTape() as tape, capture(chosen, store):
        outputs = run(model, Tensor(batch))
        resolved = resolve_target(outputs.numpy(), target)
        total = scores(outputs, resolved).sum()
    if not store:
        raise ValueError(f"grad_cam: layer '{chosen.name}' did not run when the model was called.")
    activation = store[-1]
    grad = tape.gradient(total, activation, unconnected_gradients="zero")
    return np.asarray(activation.numpy()), np.asarray(grad.numpy()), chosen


def _channel_axis(layer: Any, ndim: int) -> int:
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else ndim - 1


def _cam(
    model: Any,
    x: Any,
    target: Any,
    layer: Any,
    upsample: bool,
    normalize: bool,
    plus_plus: bool,
) -> np.ndarray:
    batch = as_batch(x)
    a, g, chosen = activations_and_gradients(model, batch, target, layer)
    if a.ndim < 3:
        raise ValueError(
            f"grad_cam needs a layer with a spatial output, but '{chosen.name}' outputs "
            f"shape {a.shape}."
        )
    c = _channel_axis(chosen, a.ndim)
    a = np.moveaxis(a, c, -1).astype(np.float64)
    g = np.moveaxis(g, c, -1).astype(np.float64)
    spatial = tuple(range(1, a.ndim - 1))
    if plus_plus:
        g2, g3 = g**2, g**3
        denominator = 2 * g2 + a.sum(axis=spatial, keepdims=True) * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=spatial, keepdims=True)
    else:
        weights = g.mean(axis=spatial, keepdims=True)
    cam = np.maximum((weights * a).sum(axis=-1), 0)
    if upsample:
        size = batch.shape[1 : 1 + len(spatial)]
        if getattr(chosen, "data_format", "channels_last") == "channels_first":
            size = batch.shape[2 : 2 + len(spatial)]
        cam = resize(cam, size)
    if normalize:
        peak = cam.reshape(cam.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (cam.ndim - 1))
        cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return cam.astype(batch.dtype)


def grad_cam(
    model: Any,
    x: Any,
    target: Any = None,
    layer: Any = None,
    upsample: bool = False,
    normalize: bool = True,
) -> np.ndarray:
    """The Grad-CAM map of each sample: shape ``(n, *grid)`` of the layer (or of the input
    with ``upsample=True``)."""
    return _cam(model, x, target, layer, upsample, normalize, plus_plus=False)


def grad_cam_plus_plus(
    model: Any,
    x: Any,
    target: Any = None,
    layer: Any = None,
    upsample: bool = False,
    normalize: bool = True,
) -> np.ndarray:
    """The Grad-CAM++ map of each sample, shaped as ``grad_cam``'s."""
    return _cam(model, x, target, layer, upsample, normalize, plus_plus=True)


def resize(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Linear resize of ``maps`` (``(n, *grid)``) to ``(n, *size)``, one axis at a time,
    sampling at pixel centres: output pixel ``o`` reads input position
    ``(o + 0.5) * in / out - 0.5``, clamped to the edges."""
    out = maps
    for axis, target in enumerate(size, start=1):
        source = out.shape[axis]
        if source == target:
            continue
        position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, source - 1)
        frac = (position - low).reshape((-1,) + (1,) * (out.ndim - axis - 1))
        lo, hi = np.take(out, low, axis=axis), np.take(out, high, axis=axis)
        out = lo * (1 - frac) + hi * frac
    return out
