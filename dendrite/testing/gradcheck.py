"""Gradient checking against central finite differences, in float64.

For ``y = f(x_1, ..., x_n)``, a random upstream gradient ``u`` turns the output into the
scalar ``s = <u, y>``, whose gradient ``dL/dx_i`` backpropagation computes. Finite
differences check it:

- ``mode="directional"`` (default, cheap: 2 evaluations per input): along a random
  direction ``v``, ``<dL/dx_i, v>`` must equal ``(s(x_i + eps v) - s(x_i - eps v)) / 2 eps``;
- ``mode="elementwise"`` (small inputs): every element's partial derivative separately.

The failure message names the function and, per input, the largest absolute and relative
error, then the analytic and numeric values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite.core import Tensor, no_grad
from dendrite.core.tensor import as_array


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    mode: str = "directional",
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
    name: str | None = None,
) -> bool:
    """Check ``fn``'s gradients with respect to every floating input; raise if they differ.

    Args:
        fn: maps Tensors to a Tensor.
        inputs: arrays or numbers; floating ones are converted to float64 and checked,
            integer ones (indices, labels) are passed as they are.
        mode: "directional" or "elementwise".
        eps: finite-difference step.
        atol, rtol: tolerances: ``|analytic - numeric| <= atol + rtol * |numeric|``.
        seed: seeds the random upstream gradient and directions.
        name: what to call ``fn`` in the failure message.

    Returns:
        True when every check passes (AssertionError otherwise).
    """
    if mode not in ("directional", "elementwise"):
        raise ValueError(f"gradcheck mode must be 'directional' or 'elementwise', got {mode!r}.")
    label = name or getattr(fn, "__name__", "fn")
    rng = np.random.default_rng(seed)
    arrays = []
    for value in inputs:
        array = as_array(value)
        arrays.append(array.astype(np.float64) if _is_float(array) else array)
    tensors = [Tensor(a, requires_grad=_is_float(a)) for a in arrays]
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: {label} must return a Tensor, got {type(out).__name__}.")
    if out.dtype != np.float64:
        raise AssertionError(f"gradcheck: {label} returned dtype {out.dtype} for float64 inputs.")
    upstream = rng.standard_normal(out.shape)
    if out.requires_grad:
        out.backward(upstream)

    def objective(values: list) -> float:
        with no_grad():
            result = fn(*[Tensor(v) for v in values])
        return float(np.sum(upstream * result.data))

    failures = []
    for i, array in enumerate(arrays):
        if not _is_float(array):
            continue
        analytic = tensors[i].grad
        if analytic is None:
            analytic = np.zeros_like(array)
        if analytic.shape != array.shape:
            failures.append(f"input {i}: gradient shape {analytic.shape} != {array.shape}")
            continue
        if mode == "directional":
            direction = rng.standard_normal(array.shape)
            numeric = _central_difference(objective, arrays, i, direction, eps)
            computed = np.array(np.sum(analytic * direction))
            numeric = np.array(numeric)
        else:
            numeric = np.zeros_like(array)
            for j in range(array.size):
                direction = np.zeros(array.size)
                direction[j] = 1.0
                numeric.flat[j] = _central_difference(
                    objective, arrays, i, direction.reshape(array.shape), eps
                )
            computed = analytic
        error = np.abs(computed - numeric)
        allowed = atol + rtol * np.abs(numeric)
        if np.any(~np.isfinite(computed)) or np.any(error > allowed):
            relative = error / np.maximum(np.abs(numeric), 1e-300)
            failures.append(
                f"input {i} (shape {array.shape}): max abs error {error.max():.3e}, max rel "
                f"error {relative.max():.3e}; analytic {_preview(computed)}, numeric "
                f"{_preview(numeric)}"
            )
    if failures:
        raise AssertionError(f"gradcheck failed for {label} ({mode}): " + "; ".join(failures))
    return True


def _central_difference(
    objective: Callable[[list], float],
    arrays: list,
    index: int,
    direction: np.ndarray,
    eps: float,
) -> float:
    plus = list(arrays)
    minus = list(arrays)
    plus[index] = arrays[index] + eps * direction
    minus[index] = arrays[index] - eps * direction
    return (objective(plus) - objective(minus)) / (2 * eps)


def _preview(array: np.ndarray) -> str:
    flat = np.asarray(array).ravel()
    text = np.array2string(flat[:6], precision=6, separator=", ")
    return text if flat.size <= 6 else text[:-1] + ", ...]"
