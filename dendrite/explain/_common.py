"""What every attribution method shares: the input as a float array, the chosen output
(``target``) as one score per sample, and the gradient of that score by the input.

For a model ``f`` mapping a batch ``x`` of shape ``(n, ...)`` to outputs ``f(x)`` of shape
``(n, k)``, a *target* picks one score per sample, ``s_i = f(x)_{i, t_i}``:

- an ``int`` ``t``: the same output unit for every sample;
- an array of ``n`` ints: one unit per sample;
- ``None``: the unit the model ranks highest for each sample (``argmax``), or the output
  itself when the model has a single output unit;
- a callable ``g(outputs) -> Tensor``: any differentiable function of the outputs giving
  ``n`` scores (or a scalar, which is then the score of the whole batch).

Samples never mix in a model run for inference (``training=False``: batch normalization
uses its moving statistics), so the gradient of ``sum_i s_i`` by ``x`` holds, in row ``i``,
exactly ``d s_i / d x_i``: one backward sweep gives every sample's gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import GradientTape, Tensor, no_grad


def as_batch(x: Any) -> np.ndarray:
    """``x`` as a floating ndarray (floatx unless it already floats), at least 1-D."""
    array = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(_settings.floatx())
    if array.ndim == 0:
        raise ValueError("explain expects a batch of inputs (the first axis is the sample).")
    return array


def run(model: Any, x: Any) -> Tensor:
    """The model's output on ``x`` for inference (one output only)."""
    outputs = model(x, training=False)
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ValueError(
                "explain works on a model with one output; pass target=callable to combine "
                f"several (this model has {len(outputs)})."
            )
        outputs = outputs[0]
    if isinstance(outputs, dict):
        raise ValueError("explain works on a model with one output, not a dict of outputs.")
    return outputs if isinstance(outputs, Tensor) else Tensor(np.asarray(outputs))


def resolve_target(outputs: np.ndarray, target: Any) -> Any:
    """A callable target stays; ``None`` becomes the argmax per sample; ints become an
    array of ``n`` unit indices (checked against the number of units)."""
    if callable(target):
        return target
    n = outputs.shape[0]
    flat = outputs.reshape(n, -1)
    if target is None:
        return None if flat.shape[1] == 1 else np.argmax(flat, axis=1)
    units = np.asarray(target)
    if units.dtype.kind not in "iu":
        raise TypeError(f"target must be an int, an array of ints or a callable, got {target!r}.")
    units = np.broadcast_to(units.reshape(-1) if units.ndim else units, (n,)).astype(np.int64)
    if units.min() < 0 or units.max() >= flat.shape[1]:
        raise ValueError(f"target {target!r} is out of range for {flat.shape[1]} output units.")
    return units


def scores(outputs: Tensor, target: Any) -> Tensor:
    """One score per sample from ``outputs`` (``target`` as from ``resolve_target``)."""
    if callable(target):
        chosen = target(outputs)
        return chosen if isinstance(chosen, Tensor) else Tensor(np.asarray(chosen))
    n = outputs.shape[0]
    flat = outputs.reshape((n, -1)) if outputs.ndim != 2 else outputs
    if target is None:
        return flat.sum(axis=1)
    onehot = np.zeros(flat.shape, dtype=flat.dtype)
    onehot[np.arange(n), target] = 1
    return (flat * onehot).sum(axis=1)


def score_values(model: Any, x: np.ndarray, target: Any) -> np.ndarray:
    """The scores of ``target`` on ``x``, without recording a graph: shape ``(n,)``."""
    with no_grad():
        outputs = run(model, x)
        resolved = resolve_target(outputs.numpy(), target)
        return np.asarray(scores(outputs, resolved).numpy(), dtype=np.float64)


def gradients(model: Any, x: np.ndarray, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(d s / d x, s)``: the gradient of each sample's score by that sample (shaped like
    ``x``) and the scores, from one forward and one backward sweep."""
    inputs = Tensor(x)
    with GradientTape() as tape:
        tape.watch(inputs)
        outputs = run(model, inputs)
        resolved = resolve_target(outputs.numpy(), target)
        chosen = scores(outputs, resolved)
    grad = tape.gradient(chosen.sum(), inputs)
    values = np.asarray(chosen.numpy(), dtype=np.float64)
    if grad is None:  # the score does not depend on the input
        return np.zeros_like(x), values
    return np.asarray(grad.numpy() if isinstance(grad, Tensor) else grad), values


def fixed_target(model: Any, x: np.ndarray, target: Any) -> Any:
    """The target resolved once on ``x`` itself, so methods that evaluate the model at
    other points (noisy copies, a path from a baseline) explain the same unit throughout."""
    if callable(target) or target is not None:
        return target if callable(target) else resolve_target(_outputs(model, x), target)
    return resolve_target(_outputs(model, x), None)


def _outputs(model: Any, x: np.ndarray) -> np.ndarray:
    with no_grad():
        return run(model, x).numpy()


def chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


@contextmanager
def capture(layer: Any, store: list) -> Iterator[None]:
    """While open, every call of ``layer`` appends its output Tensor to ``store``.

    The layer's ``call`` is wrapped on the instance (and a fusion of this layer with the
    next one, which would skip its own output, is declined), then restored.
    """
    original = layer.call
    state = layer.__dict__
    had_fusable = "_fusable_with" in state

    def recording_call(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        store.append(out)
        return out

    state["call"] = recording_call
    if hasattr(layer, "_fusable_with"):
        state["_fusable_with"] = _never
    try:
        yield
    finally:
        del state["call"]
        if not had_fusable:
            state.pop("_fusable_with", None)


def _never(*args: Any, **kwargs: Any) -> bool:
    return False
