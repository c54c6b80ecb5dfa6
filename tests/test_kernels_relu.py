"""csrc/relu.c (``bias_relu_`` and ``relu_grad`` of dendrite/ops/_util.py) against the NumPy
expressions they replace, bit for bit: both float types, with and without a bias, arrays
large enough to be shared between threads, NaN, infinities and signed zeros; and the
NumPy fallback for arrays the kernels cannot take."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import _native
from dendrite.ops._util import bias_relu_, relu_grad

pytestmark = pytest.mark.needs_kernels

SPECIAL = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45]


def _values(shape, dtype, seed):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL[: flat.size]
    return a


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (4096, 96), (3, 5, 130)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [True, False])
def test_bias_relu_has_numpys_bits(dtype, shape, with_bias, relu):
    out = _values(shape, dtype, 0)
    bias = _values(shape[-1:], dtype, 1) if with_bias else None
    expected = out.copy()
    if with_bias:
        expected += bias
    if relu:
        np.maximum(expected, 0, out=expected)
    bias_relu_(out, bias, relu)
    _same_bits(out, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (4096, 96)])
def test_relu_grad_has_numpys_bits(dtype, shape):
    g = _values(shape, dtype, 2)
    y = np.roll(_values(shape, dtype, 3), 3)  # specials in both, not aligned
    with np.errstate(invalid="ignore"):  # inf * 0 in NumPy's product
        expected = g * (y > 0)
    _same_bits(relu_grad(g, y), expected)


def test_relu_grad_of_a_cropped_gradient_uses_the_kernel(monkeypatch):
    calls = []
    original = _native.kernels.relu_grad
    monkeypatch.setattr(_native.kernels, "relu_grad", lambda *a: calls.append(1) or original(*a))
    padded = _values((3, 9, 8, 5), np.float32, 5)
    g = padded[:, 1:-1, 2:-1]  # as a convolution's input gradient after cropping its padding
    y = _values(g.shape, np.float32, 6)
    with np.errstate(invalid="ignore"):
        expected = g * (y > 0)
    _same_bits(relu_grad(g, y), expected)
    assert calls == [1]
    np.testing.assert_array_equal(padded, _values((3, 9, 8, 5), np.float32, 5))  # untouched


def test_fallbacks_for_arrays_the_kernels_cannot_take(monkeypatch):
    calls = []
    for name in ("bias_relu", "relu_grad"):
        original = getattr(_native.kernels, name)
        monkeypatch.setattr(
            _native.kernels, name, lambda *a, _f=original: calls.append(1) or _f(*a)
        )
    out = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    strided = out[:, ::2].copy(order="F")  # not C-contiguous
    expected = np.maximum(strided + np.float32(1), 0)
    bias_relu_(strided, np.ones(3, np.float32), True)
    np.testing.assert_array_equal(strided, expected)
    mixed = out.copy()
    bias_relu_(mixed, np.ones(5, np.float64), False)  # a bias of another dtype
    np.testing.assert_array_equal(mixed, out + 1)
    g = np.ones((6, 5), np.float64)
    np.testing.assert_array_equal(relu_grad(g, out), g * (out > 0))
    assert not calls
    bias_relu_(out, None, True)
    assert calls == [1]


def test_argument_checks():
    a = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="bad sizes"):
        _native.kernels.bias_relu(a, None, 10, 3, True)  # 10 values are not rows of 3
    with pytest.raises(ValueError, match="expected sizes"):
        _native.kernels.relu_grad(a, a, np.zeros(9, np.float32), 10)
