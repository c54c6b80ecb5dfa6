"""Values and gradients of every op in the table against PyTorch, in float32.

Skipped only when torch is not installed. Each case runs on its listed shapes with random
inputs (inside the op's domain) and a random upstream gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.testing.op_cases import OpCase, cases_for, sample, torch_cases

torch = pytest.importorskip("torch")

RTOL, ATOL = 2e-5, 2e-6
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5


def _run_dendrite(case: OpCase, arrays: list, upstream_seed: int, **kwargs):
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = case.fn(*tensors, **kwargs)
    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(upstream.astype(np.float32))
    return out.numpy(), [t.grad for t in tensors], upstream


def _run_torch(case: OpCase, arrays: list, upstream: np.ndarray, **kwargs):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = case.torch(*tensors, **kwargs)
    out.backward(torch.tensor(upstream, dtype=out.dtype))
    grads = [
        t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32) for t in tensors
    ]
    return out.detach().numpy(), grads


def _compare(case: OpCase, shapes: tuple, seed: int = 0, **kwargs) -> None:
    rng = np.random.default_rng(seed)
    arrays = [sample(case.domain, s, rng).astype(np.float32) for s in shapes]
    value, grads, upstream = _run_dendrite(case, arrays, seed + 1, **kwargs)
    expected, expected_grads = _run_torch(case, arrays, upstream, **kwargs)
    assert value.dtype == np.float32, f"{case.id}: float32 inputs gave {value.dtype}"
    assert value.shape == expected.shape, f"{case.id}: shape {value.shape} != {expected.shape}"
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL, err_msg=f"{case.id} value")
    for i, (grad, want) in enumerate(zip(grads, expected_grads)):
        assert grad is not None, f"{case.id}: no gradient for input {i}"
        assert grad.dtype == np.float32, f"{case.id}: gradient {i} is {grad.dtype}"
        np.testing.assert_allclose(
            grad, want, rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=f"{case.id} gradient {i}"
        )


SHAPED = [
    pytest.param(case, shapes, id=f"{case.id}-{'x'.join(map(str, shapes))}")
    for case in torch_cases()
    if case.kind != "reduce"
    for shapes in case.shapes
]


@pytest.mark.parametrize("case,shapes", SHAPED)
def test_matches_torch(case: OpCase, shapes: tuple):
    _compare(case, shapes)


REDUCED = [
    pytest.param(case, shapes, axis, keepdims, id=f"{case.id}-{shapes}-{axis}-{keepdims}")
    for case in cases_for("reduce")
    if case.torch is not None
    for shapes in case.shapes
    for axis, keepdims in ((None, False), (-1, True), (0, False), ((0, -1), False))
]


@pytest.mark.parametrize("case,shapes,axis,keepdims", REDUCED)
def test_reductions_match_torch(case: OpCase, shapes: tuple, axis, keepdims):
    if isinstance(axis, tuple):
        axis = tuple(sorted({a % len(shapes[0]) for a in axis}))
    _compare(case, shapes, axis=axis, keepdims=keepdims)


def test_large_inputs_match_torch():
    """Far from 0, the stable forms agree with PyTorch's (no inf, no NaN)."""
    x = np.array([-300.0, -120.0, -30.0, 0.0, 30.0, 120.0, 300.0], np.float32)
    for case in torch_cases():
        if case.kind != "unary" or case.domain != "wide":
            continue
        _compare_values_and_grads_at(case, x)


def _compare_values_and_grads_at(case: OpCase, x: np.ndarray) -> None:
    value, (grad,), upstream = _run_dendrite(case, [x], 0)
    expected, (want,) = _run_torch(case, [x], upstream)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), case.id
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL, err_msg=case.id)
    np.testing.assert_allclose(grad, want, rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=case.id)
