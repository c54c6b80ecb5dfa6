"""``unbroadcast``, the VJP of NumPy broadcasting (dendrite/ops/_util.py): it sums the
gradient down to the operand's shape with NumPy's bits, whether it takes the few-repeats
path (whole-slab additions, a nearest upsampling's 2 x 2) or NumPy's reduction."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.ops._util import unbroadcast


def _reference(grad: np.ndarray, shape: tuple) -> np.ndarray:
    extra = grad.ndim - len(shape)
    if extra:
        grad = np.add.reduce(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return np.add.reduce(grad, axis=axes, keepdims=True).reshape(shape) if axes else grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "grad_shape, shape",
    [
        ((16, 14, 2, 14, 2, 32), (16, 14, 1, 14, 1, 32)),  # UpSampling2D(2)
        ((5, 3, 4), (5, 1, 4)),
        ((2, 3, 3, 2), (1, 3, 1, 2)),
        ((4, 20, 3), (4, 1, 3)),  # many repeats: NumPy's reduction
        ((7, 4, 5), (5,)),  # a bias
        ((7, 4, 5), (4, 1)),
        ((3, 0, 2), (3, 1, 2)),  # nothing to sum
        ((2, 3), (2, 3)),
    ],
)
def test_unbroadcast_has_numpys_bits(dtype, grad_shape, shape):
    grad = np.random.default_rng(0).standard_normal(grad_shape).astype(dtype)
    got = unbroadcast(grad, shape)
    want = _reference(grad, shape)
    assert got.shape == tuple(shape) and got.dtype == dtype
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def test_unbroadcast_does_not_write_into_the_gradient():
    grad = np.arange(24.0).reshape(2, 3, 2, 2)
    before = grad.copy()
    unbroadcast(grad, (2, 1, 2, 1))
    np.testing.assert_array_equal(grad, before)
