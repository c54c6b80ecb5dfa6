"""The ``needs_kernels`` marker: a test (or parameter) that runs the C kernels (``csrc/``,
``dendrite._kernels``) is skipped, with the reason, when they are not loaded. Their NumPy
paths are tested either way, by tests without the marker. ``needs_sequence_kernels``: a
test of the whole-sequence kernels and their small products, which also need a CPU with
AVX2 and FMA (elsewhere the per-step path runs, tested without the marker)."""

from __future__ import annotations

import os

import pytest

from dendrite import _native
from dendrite.ops.recurrent import _common


def _why_no_kernels() -> str:
    if os.environ.get("DENDRITE_NO_KERNELS"):
        return "the C kernels are switched off (DENDRITE_NO_KERNELS is set)"
    return (
        "the C kernels (dendrite._kernels) are not built: install a C compiler, then "
        "reinstall dendrite (pip install -e .) to build them from csrc/"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_kernels: runs the C kernels; skipped when they are not loaded"
    )
    config.addinivalue_line(
        "markers",
        "needs_sequence_kernels: runs the whole-sequence kernels; skipped without the C "
        "kernels or on a CPU without AVX2 and FMA",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons = {}
    if _native.kernels is None:
        reasons["needs_kernels"] = reasons["needs_sequence_kernels"] = _why_no_kernels()
    elif not _common.WHOLE_SEQUENCES:
        reasons["needs_sequence_kernels"] = (
            "the whole-sequence kernels need a CPU with AVX2 and FMA (this one takes the "
            "per-step path)"
        )
    for marker, reason in reasons.items():
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)
