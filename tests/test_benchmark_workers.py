"""benchmarks/isolated.py: each framework in its own process, called in turn.

Only the machinery is tested here (no timing): a worker builds its callables from a
module-level factory, answers calls by position, reports a missing framework as missing
and a failure as an error naming the worker.
"""

from __future__ import annotations

import os

import pytest

from benchmarks import isolated


def make_counter(start: int):
    """A factory for the tests: (count, pid) callables kept in the worker."""
    state = {"n": start}

    def count() -> int:
        state["n"] += 1
        return state["n"]

    return count, os.getpid


def make_missing():
    import a_module_that_is_not_installed  # noqa: F401


def make_failing():
    raise RuntimeError("boom in the factory")


def make_none():
    return None


def test_workers_answer_in_turn_from_their_own_processes():
    workers, missing = isolated.start(
        {
            "a": ("tests.test_benchmark_workers", "make_counter", (10,)),
            "b": ("tests.test_benchmark_workers", "make_counter", (100,)),
        }
    )
    try:
        assert missing == []
        assert isolated.alternate(workers, 3) == {"a": [11, 12, 13], "b": [101, 102, 103]}
        pids = {name: worker.call(1) for name, worker in workers.items()}
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    finally:
        isolated.close(workers)


def test_a_missing_framework_is_reported_not_raised():
    workers, missing = isolated.start(
        {
            "here": ("tests.test_benchmark_workers", "make_counter", (0,)),
            "absent": ("tests.test_benchmark_workers", "make_missing", ()),
            "nothing": ("tests.test_benchmark_workers", "make_none", ()),
        }
    )
    try:
        assert list(workers) == ["here"]
        assert missing == ["absent", "nothing"]
    finally:
        isolated.close(workers)


def test_a_failing_factory_names_its_worker():
    with pytest.raises(RuntimeError, match="(?s)'broken' failed.*boom in the factory"):
        isolated.start({"broken": ("tests.test_benchmark_workers", "make_failing", ())})
