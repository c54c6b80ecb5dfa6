"""The ``needs_kernels`` marker: a test (or parameter) that runs the C kernels (``csrc/``,
``dendrite._kernels``) is skipped, with the reason, when they are not loaded. Their NumPy
paths are tested either way, by tests without the marker."""

from __future__ import annotations

import os

import pytest

from dendrite import _native


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _native.kernels is not None:
        return
    skip = pytest.mark.skip(reason=_why_no_kernels())
    for item in items:
        if item.get_closest_marker("needs_kernels") is not None:
            item.add_marker(skip)
