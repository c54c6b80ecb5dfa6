"""dendrite.testing: assert_paths_agree (a fast path's results against its reference's),
assert_same_on_any_kernel_threads and record_kernel_calls."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import _native
from dendrite.testing import (
    assert_paths_agree,
    assert_same_on_any_kernel_threads,
    record_kernel_calls,
)


def test_rounding_passes_and_more_fails():
    b = np.linspace(-3, 3, 50).astype(np.float32)
    assert_paths_agree([b * np.float32(1 + 1e-6), None], [b, None], np.float32)
    with pytest.raises(AssertionError):
        assert_paths_agree([b * np.float32(1 + 1e-3)], [b], np.float32)
    with pytest.raises(AssertionError):  # float64 is held to 1e-12
        assert_paths_agree([b.astype(np.float64) * (1 + 1e-9)], [b.astype(np.float64)], np.float64)


def test_the_floor_scales_with_the_largest_magnitude():
    b = np.array([1000.0, 1e-3], np.float32)
    near_zero_off = np.array([1000.0, 1e-3 + 5e-3], np.float32)  # 5e-3 < 2e-5 * 1000
    assert_paths_agree([near_zero_off], [b], np.float32)
    with pytest.raises(AssertionError):
        assert_paths_agree([near_zero_off], [b], np.float32, float32_rtol=1e-6)
    assert_paths_agree([near_zero_off], [b], np.float32, float32_rtol=1e-6, slack=10)


@pytest.mark.parametrize(
    "fast, reference",
    [
        ([None], [np.zeros(2, np.float32)]),  # a missing result
        ([np.zeros(2, np.float64)], [np.zeros(2, np.float32)]),  # another dtype
        ([np.zeros(3, np.float32)], [np.zeros(2, np.float32)]),  # another shape
        ([np.zeros(2, np.float32)], [np.zeros(2, np.float32), None]),  # another count
    ],
)
def test_structure_must_match(fast, reference):
    with pytest.raises(AssertionError):
        assert_paths_agree(fast, reference, np.float32)


@pytest.mark.needs_kernels
def test_kernel_threads_are_switched_and_restored():
    kernels = _native.kernels
    before = kernels.threads()
    seen = []

    def run():
        seen.append(kernels.threads())
        return [np.zeros(2)]

    assert_same_on_any_kernel_threads(run)
    assert seen == [1, 2, 1] or seen == [1, 1, 1]  # 1 everywhere on a one-core machine
    assert kernels.threads() == before
    calls = iter(range(3))
    with pytest.raises(AssertionError):  # a result that changes with the threads
        assert_same_on_any_kernel_threads(lambda: [np.array([next(calls)])])
    assert kernels.threads() == before


@pytest.mark.needs_kernels
def test_record_kernel_calls_passes_calls_through_and_is_undone(monkeypatch):
    kernels = _native.kernels
    calls = record_kernel_calls(monkeypatch)
    assert _native.kernels is not kernels
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    swapped = np.empty((3, 1, 2), np.float32)
    _native.kernels.swap_axes(a[:, None, :], swapped, 1, 2, 1, 0, 1, 3)
    np.testing.assert_array_equal(swapped[:, 0], a.T)  # the real kernel ran
    _native.kernels.threads()
    assert calls == ["swap_axes", "threads"]
    monkeypatch.undo()
    assert _native.kernels is kernels
