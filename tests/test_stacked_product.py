"""Stacks of products by dendrite's own tiles (``ops._products.stacked_product``, over
csrc/small_product.c's ``stacked_product``), as Winograd's 16 transform-domain products
use them: agreement with NumPy, the same bits as each matrix's product alone whatever the
threads, the cases that go to BLAS instead, and the checks of the C arguments.
"""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import dendrite
from dendrite import GradientTape, Variable, _native
from dendrite.ops._products import own_product, stacked_product
from dendrite.testing import assert_same_on_any_kernel_threads, record_kernel_calls

pytestmark = pytest.mark.needs_sequence_kernels

winograd = importlib.import_module("dendrite.ops.winograd")

DTYPES = [np.float32, np.float64]


def _bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rounding error any order of the sums may make: depth * eps * sum |a| |b|."""
    eps = np.finfo(a.dtype).eps
    wide_a, wide_b = np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))
    return a.shape[-1] * eps * (wide_a @ wide_b)


SHAPES = [
    (16, 4608, 32, 64),  # the CNN's Winograd M = V U: tall, cut into blocks of rows
    (16, 32, 4608, 64),  # its dL/dU = V^T dM: whole matrices, a long sum
    (16, 4608, 64, 32),  # its dL/dV = dM U^T
    (3, 1000, 17, 16),  # rows not whole tiles, depth not whole vectors
    (1, 5, 7, 200),  # one matrix of a few rows
    (2, 0, 8, 16),  # no rows
    (0, 10, 8, 16),  # an empty stack
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count, rows, depth, cols", SHAPES)
def test_each_matrix_has_the_bits_of_its_own_product_on_any_threads(
    dtype, count, rows, depth, cols
):
    rng = np.random.default_rng(count + rows + depth + cols)
    a = rng.normal(size=(count, rows, depth)).astype(dtype)
    b = rng.normal(size=(count, depth, cols)).astype(dtype)
    out = stacked_product(a, b)
    assert out.shape == (count, rows, cols) and out.dtype == dtype
    for index in range(count):
        np.testing.assert_array_equal(out[index], own_product(a[index], b[index]))
    assert np.all(np.abs(out - a.astype(np.float64) @ b) <= _bound(a, b))
    assert_same_on_any_kernel_threads(lambda: [stacked_product(a, b)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_matrices_are_read_in_place_and_b_may_be_strided(dtype, monkeypatch):
    """``v.transpose(0, 2, 1)`` (Winograd's dL/dU reads V so) is read in place; a strided
    ``b`` (``u.transpose(0, 2, 1)``) is copied to C order; both give the bits of the
    C-ordered operands."""
    rng = np.random.default_rng(5)
    stored = rng.normal(size=(4, 300, 24)).astype(dtype)  # (count, depth, rows)
    u = rng.normal(size=(4, 32, 300)).astype(dtype)  # b^T stored
    a, b = stored.transpose(0, 2, 1), u.transpose(0, 2, 1)
    expected = stacked_product(np.ascontiguousarray(a), np.ascontiguousarray(b))
    calls = record_kernel_calls(monkeypatch)
    np.testing.assert_array_equal(stacked_product(a, b), expected)
    assert calls == ["stacked_product"]
    assert np.all(np.abs(expected - a.astype(np.float64) @ b) <= _bound(a, b))


@pytest.mark.parametrize(
    "a_shape, b_shape, dtypes",
    [
        ((4, 50, 30), (4, 30, 8), ("float32", "float32")),  # fewer columns than a tile
        ((4, 50, 30), (4, 30, 600), ("float32", "float32")),  # rows of b over 2 KiB
        ((4, 50, 30), (4, 30, 64), ("float32", "float64")),  # mixed dtypes
        ((4, 50, 30), (4, 30, 64), ("int64", "int64")),
        ((50, 30), (30, 64), ("float32", "float32")),  # not a stack
        ((4, 50, 30), (1, 30, 64), ("float32", "float32")),  # a broadcast stack
    ],
)
def test_what_the_tiles_do_not_take_goes_to_numpy(monkeypatch, a_shape, b_shape, dtypes):
    rng = np.random.default_rng(6)
    a = (rng.normal(size=a_shape) * 4).astype(dtypes[0])
    b = (rng.normal(size=b_shape) * 4).astype(dtypes[1])
    calls = record_kernel_calls(monkeypatch)
    result = stacked_product(a, b)
    assert calls == []
    np.testing.assert_allclose(result, np.matmul(a, b), rtol=1e-5, atol=1e-4)


def test_stacks_from_several_threads_at_once():
    """Four Python threads at once (one shares the helper, the others run alone): the same
    bits as alone."""
    rng = np.random.default_rng(7)
    cases = [
        (
            rng.normal(size=(16, 600, 32)).astype(np.float32),
            rng.normal(size=(16, 32, 64)).astype(np.float32),
        )
        for _ in range(4)
    ]
    alone = [stacked_product(a, b) for a, b in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda case: stacked_product(*case), cases * 3))
    for index, got in enumerate(together):
        np.testing.assert_array_equal(got, alone[index % 4])


def test_the_kernel_checks_its_arguments():
    kernels = _native.kernels
    a = np.zeros((2, 4, 3), np.float32)
    b = np.zeros((2, 3, 16), np.float32)
    out = np.zeros((2, 4, 16), np.float32)
    with pytest.raises(ValueError, match="bad sizes"):
        kernels.stacked_product(a, b, out, -1, 4, 3, 16)
    with pytest.raises(ValueError, match="bad sizes"):
        kernels.stacked_product(a, b, out, 2, 1 << 40, 1 << 40, 16)
    with pytest.raises(ValueError):  # the arrays are smaller than the sizes say
        kernels.stacked_product(a, b, out, 3, 4, 3, 16)
    with pytest.raises((ValueError, TypeError)):  # float32 and float64 mixed
        kernels.stacked_product(a, b.astype(np.float64), out, 2, 4, 3, 16)
    kernels.stacked_product(a + 1, b + 1, out, 2, 4, 3, 16)
    np.testing.assert_array_equal(out, np.full((2, 4, 16), 3, np.float32))


def test_winograd_takes_the_stacked_products_forward_and_backward(monkeypatch):
    """The CNN's second convolution with its pooling: its three products are stacks on the
    tiles (no BLAS thread involved)."""
    from dendrite.ops.conv_pool import conv_max_pool

    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 13, 13, 32)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 32, 64)).astype(np.float32) * 0.1
    seen = []
    real = winograd.stacked_product

    def spy(a, b):
        seen.append((a.shape, b.shape))
        return real(a, b)

    monkeypatch.setattr(winograd, "stacked_product", spy)
    calls = record_kernel_calls(monkeypatch)
    inputs, weights = Variable(x), Variable(kernel)
    with GradientTape() as tape:
        y = conv_max_pool(inputs, weights, pool_size=2, relu=True)
    tape.gradient(dendrite.ops.sum(y), [inputs, weights])
    tiles = 4 * 5 * 5  # one tile per pooling window of the 11 x 11 output
    assert seen == [
        ((16, tiles, 32), (16, 32, 64)),
        ((16, 32, tiles), (16, tiles, 64)),
        ((16, tiles, 64), (16, 64, 32)),
    ]
    assert calls.count("stacked_product") == 3
