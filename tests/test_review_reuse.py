"""Review of csrc/reuse.c (the NEP 49 handler "dendrite_reuse"): contents, zeroing and
alignment across the size-class boundaries, resize chains, NumPy's realloc users
(fromiter, loadtxt, resize), object and string dtypes, arrays that cross threads and
outlive loops, the largest sizes, and a forked child's view of the running loops."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from dendrite import memory_reuse

handler_name = np._core.multiarray.get_handler_name

pytestmark = pytest.mark.needs_kernels
REUSE_FROM = 1 << 17
REUSE_UP_TO = 1 << 32
LARGE = 1 << 20


@pytest.fixture(autouse=True)
def reuse_on():
    memory_reuse.set_enabled(True)
    yield
    memory_reuse.set_enabled(True)


@contextlib.contextmanager
def another_thread_in_a_loop() -> Iterator[None]:
    """Another thread stays inside ``reusing()`` for the duration of the block."""
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with memory_reuse.reusing():
            inside.set()
            release.wait()

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def boundaries() -> list[int]:
    """Sizes at and around each class capacity (four per doubling) from 128 KiB to 16 MiB,
    and small ones."""
    capacities = [REUSE_FROM] + [(n + 1) << (e - 2) for e in range(17, 24) for n in (4, 5, 6, 7)]
    sizes = [0, 1, 15, 16, 17, 1000, 65_535, 65_536, REUSE_FROM - 1]
    for capacity in capacities:
        sizes += [capacity - 1, capacity, capacity + 1]
    return sizes


def pattern(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.uint32) * 2_654_435_761 >> 7).astype(np.uint8)


def test_resize_chains_across_class_boundaries_keep_contents_zeros_and_alignment():
    rng = np.random.default_rng(0)
    sizes = boundaries()
    with memory_reuse.reusing():
        assert handler_name() == "dendrite_reuse"
        for _ in range(60):
            first = int(rng.choice(sizes))
            array = pattern(first)
            dirty = np.empty(int(rng.choice(sizes)), dtype=np.uint8)
            dirty.fill(0xAB)  # a kept block of some class, full of garbage
            del dirty
            length = first
            for second in rng.choice(sizes, size=4):
                second = int(second)
                array.resize(second, refcheck=False)
                kept = min(length, second)
                assert array.ctypes.data % 64 == 0
                np.testing.assert_array_equal(array[:kept], pattern(first)[:kept])
                assert not array[kept:].any(), (length, second)
                length = kept if second < length else length
                # Grown bytes are zeros; the pattern holds only where it was kept.
                first = min(first, kept)
            zeros = np.zeros(int(rng.choice(sizes)), dtype=np.uint8)
            assert zeros.ctypes.data % 64 == 0 and not zeros.any()


def test_calloc_on_every_reused_class_is_zero():
    with memory_reuse.reusing():
        for size in boundaries():
            dirty = np.full(size, 0xFF, dtype=np.uint8)
            del dirty
            clean = np.zeros(size, dtype=np.uint8)
            assert not clean.any(), size
            objects = np.empty(max(size // 8, 1), dtype=object)  # calloc'd, then None
            assert all(item is None for item in objects[-4:]), size


def test_numpys_realloc_users_fromiter_loadtxt_object_and_string_resize():
    with memory_reuse.reusing():
        for n in (1, 100, 16_383, 16_384, 16_385, 50_000, 200_001):
            values = np.fromiter((float(i) for i in range(n)), dtype=np.float64)
            np.testing.assert_array_equal(values, np.arange(n, dtype=np.float64))
        text = "\n".join(f"{i} {2 * i}" for i in range(30_000))
        table = np.loadtxt(io.StringIO(text), dtype=np.int64)
        np.testing.assert_array_equal(table[:, 1], 2 * np.arange(30_000))
        objects = np.array([str(i) for i in range(40_000)], dtype=object)
        objects.resize(20_000, refcheck=False)
        objects.resize(60_000, refcheck=False)
        assert list(objects[19_998:20_002]) == ["19998", "19999", 0, 0]
        strings = np.array(["ab" * (i % 50) for i in range(20_000)])
        both = np.concatenate([strings, strings[::-1]])
        assert both[20_000] == strings[-1] and both.itemsize == strings.itemsize
        variable = np.array(["x" * (i % 300) for i in range(5_000)], dtype=np.dtypes.StringDType())
        joined = np.concatenate([variable, variable])
        assert joined[5_000 + 299] == "x" * 299
        parts = [np.full(70_000, float(i)) for i in range(4)]
        whole = np.concatenate(parts)
        np.testing.assert_array_equal(whole, np.repeat(np.arange(4.0), 70_000))


def test_arrays_made_in_loops_freed_by_other_threads_during_and_after():
    made: list[np.ndarray] = []
    errors: list[str] = []
    barrier = threading.Barrier(3)

    def loop(tag: int) -> None:
        with memory_reuse.reusing():
            barrier.wait()
            for j in range(150):
                block = np.full(REUSE_FROM + 4096 * (j % 40) + tag, tag, dtype=np.uint8)
                made.append(block)
                check = np.zeros(REUSE_FROM + j)
                if check.any():
                    errors.append("dirty zeros")
        barrier.wait()

    def free_them() -> None:
        barrier.wait()  # the loops have started: free while they run
        for _ in range(300):
            if made:
                block = made.pop()
                if not (block == block[0]).all():
                    errors.append("changed contents")
        barrier.wait()  # the loops have ended

    threads = [threading.Thread(target=loop, args=(t,)) for t in (1, 2)]
    threads.append(threading.Thread(target=free_them))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    survivors = list(made)
    made.clear()
    for block in survivors:  # made in a loop, freed for good outside any
        assert (block == block[0]).all()
    del survivors
    assert memory_reuse.stats()["kept_bytes"] == 0
    assert handler_name() == "default_allocator"


def test_nested_scopes_in_two_threads_drain_only_at_the_last_end():
    with another_thread_in_a_loop():
        with memory_reuse.reusing():
            with memory_reuse.reusing():
                block = np.empty(LARGE, dtype=np.uint8)
                del block
            del_after = np.empty(LARGE, dtype=np.uint8)  # takes the kept block again
            assert memory_reuse.stats()["kept_bytes"] == 0
        assert handler_name() == "default_allocator"
        del del_after  # outside this thread's loops, but another loop still runs
        kept_while_other_runs = memory_reuse.stats()["kept_bytes"]
    assert kept_while_other_runs >= LARGE
    assert memory_reuse.stats()["kept_bytes"] == 0


@pytest.mark.parametrize("size", [REUSE_UP_TO - 1, REUSE_UP_TO, REUSE_UP_TO + 1])
def test_the_largest_reusable_sizes_allocate_and_free(size):
    with memory_reuse.reusing():
        try:
            block = np.empty(size, dtype=np.uint8)  # address space only
        except MemoryError:
            pytest.skip("no address space for 4 GiB")
        assert block.ctypes.data % 64 == 0
        block[0] = block[-1] = 5
        assert block[0] == block[-1] == 5
        del block  # above the 1 GiB cache: freed at once
        assert memory_reuse.stats()["kept_bytes"] < 1 << 30


def test_impossible_sizes_raise_memory_error():
    with memory_reuse.reusing():
        with pytest.raises(MemoryError):
            np.empty(1 << 62, dtype=np.uint8)
        with pytest.raises(MemoryError):
            np.zeros(1 << 62, dtype=np.uint8)
        array = np.ones(10)
        with pytest.raises(MemoryError):
            array.resize(1 << 59, refcheck=False)
        np.testing.assert_array_equal(array, np.ones(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_child_forked_while_another_thread_runs_a_loop_drains_at_its_own_last_end():
    """Only the forking thread lives on in the child: a loop that another thread ran in the
    parent never ends there, so the child must not count it (or it keeps its freed blocks,
    up to 1 GiB, until it exits)."""
    with another_thread_in_a_loop():
        pid = os.fork()
        if pid == 0:  # the child: the answer is its exit status
            try:
                with memory_reuse.reusing():
                    block = np.full(LARGE, 3, dtype=np.uint8)
                    del block
                    kept_inside = memory_reuse.stats()["kept_bytes"]
                kept_after = memory_reuse.stats()["kept_bytes"]
                os._exit(0 if kept_inside >= LARGE and kept_after == 0 else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
