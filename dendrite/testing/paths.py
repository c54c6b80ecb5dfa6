"""Comparing a fast path (a C kernel, a transformed algorithm) with the reference path it
replaces, when the two sum in different orders and so agree within float rounding only;
a kernel's results with its helper thread off and on, which must be the same bits; and
which kernels a computation calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def assert_paths_agree(
    fast: Sequence[np.ndarray | None],
    reference: Sequence[np.ndarray | None],
    dtype: type | np.dtype,
    float32_rtol: float = 2e-5,
    float64_rtol: float = 1e-12,
    slack: float = 1.0,
) -> None:
    """Each result of ``fast`` is ``reference``'s within float rounding: None where the
    reference has None, otherwise the same dtype (``dtype``) and shape, and

        |a - b| <= rtol |b| + slack rtol max(1, max |b|)

    elementwise, ``rtol`` being ``float32_rtol`` or ``float64_rtol`` by ``dtype``: relative to
    each value, with an absolute floor scaled by the largest magnitude (a sum of terms of
    both signs is rounded at the scale of its terms, not of its result)."""
    rtol = float32_rtol if np.dtype(dtype) == np.float32 else float64_rtol
    assert len(fast) == len(reference)
    for a, b in zip(fast, reference):
        if a is None or b is None:
            assert a is None and b is None
            continue
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=slack * rtol * scale)


def assert_same_on_any_kernel_threads(run: Callable[[], Sequence[np.ndarray | None]]) -> None:
    """``run()``'s results are the same bits with the C kernels' helper thread off, on, and
    off again (a kernel whose sums are cut by fixed blocks, not by threads). The helper's
    setting is restored afterwards."""
    from dendrite import _native

    kernels = _native.kernels
    before = kernels.threads()
    try:
        results = []
        for threads in (1, 2, 1):
            kernels.set_threads(threads)
            results.append(run())
    finally:
        kernels.set_threads(before)
    for other in results[1:]:
        assert len(other) == len(results[0])
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def record_kernel_calls(monkeypatch: Any) -> list[str]:
    """From now on every call to a C kernel is passed through and its name appended, in
    order, to the list returned (which path a computation takes). ``monkeypatch`` is
    pytest's: it puts the kernels back at the end of the test."""
    from dendrite import _native

    kernels = _native.kernels
    calls: list[str] = []

    class Recorder:
        def __getattr__(self, name: str) -> Callable[..., Any]:
            method = getattr(kernels, name)

            def call(*args: Any) -> Any:
                calls.append(name)
                return method(*args)

            return call

    monkeypatch.setattr(_native, "kernels", Recorder())
    return calls
