"""csrc/transpose.c's tiled axis swap (``swap_axes`` of dendrite/ops/recurrent/_common.py)
against NumPy's copy: the same values bit for bit, for both float types, leading axes,
offsets into the middle axis, sizes that are not multiples of the tile, and empty
arrays; its argument checks; and the NumPy fallback for arrays the kernel cannot take."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import _native
from dendrite.ops.recurrent._common import swap_axes

pytestmark = pytest.mark.needs_kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, start",
    [
        ((32, 28, 128), 0),
        ((2, 32, 28, 128), 0),
        ((128, 29, 32), 1),
        ((3, 17, 5, 33), 2),
        ((1, 1, 1), 0),
        ((0, 4, 3), 0),
        ((4, 3, 0), 1),
        ((512, 1, 128), 0),
        # AVX2's 8 x 8 blocks (16 rows at a time) and the edges around them
        ((128, 1, 928), 0),
        ((24, 2, 40), 0),
        ((21, 3, 19), 1),
        ((40, 1, 7), 0),
        ((7, 2, 40), 0),
        ((2, 9, 4, 17), 3),
    ],
)
def test_swap_axes_equals_numpy(dtype, shape, start):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    expected = np.ascontiguousarray(np.swapaxes(a[..., start:, :], -1, -3))
    got = swap_axes(a, start)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_swap_axes_into_a_given_output_and_fallbacks():
    a = np.random.default_rng(1).standard_normal((5, 6, 7)).astype(np.float32)
    out = np.empty((2, 7, 6, 5), dtype=np.float32)
    swap_axes(a, out=out[1])
    np.testing.assert_array_equal(out[1], a.transpose(2, 1, 0))
    # Not contiguous, or not a float array: NumPy does the copy.
    strided = np.random.default_rng(2).standard_normal((5, 12, 7))[:, ::2]
    np.testing.assert_array_equal(swap_axes(strided), strided.transpose(2, 1, 0))
    ints = np.arange(60).reshape(3, 4, 5)
    np.testing.assert_array_equal(swap_axes(ints, 1), ints[:, 1:].transpose(2, 1, 0))


def test_swap_axes_argument_checks():
    run = _native.kernels.swap_axes
    a = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="bad sizes"):
        run(a, np.zeros((4, 3, 2), np.float32), 1, 2, 3, 2, 2, 4)  # start + m > M
    with pytest.raises(ValueError, match="expected sizes"):
        run(a, np.zeros((4, 3, 3), np.float32), 1, 2, 3, 0, 3, 4)  # output too small
    with pytest.raises(ValueError, match="one dtype"):
        run(a, np.zeros((4, 3, 2), np.float64), 1, 2, 3, 0, 3, 4)
