"""Testing tools: gradient checks against finite differences, and a fast path compared
with its reference path."""

from dendrite.testing.gradcheck import gradcheck
from dendrite.testing.paths import (
    assert_paths_agree,
    assert_same_on_any_kernel_threads,
    record_kernel_calls,
)

__all__ = [
    "assert_paths_agree",
    "assert_same_on_any_kernel_threads",
    "gradcheck",
    "record_kernel_calls",
]
