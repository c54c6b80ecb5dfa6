"""dendrite.memory_reuse: NumPy allocates through csrc/reuse.c inside dendrite's loops only,
large blocks are kept and reused there, and arrays behave exactly as with NumPy's own
allocator: contents, zeroing and alignment across the size-class boundaries, resize chains,
NumPy's realloc users (fromiter, loadtxt, resize), object and string dtypes, arrays that
cross threads and outlive loops, the largest sizes, forked children, and the results of
training."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from dendrite.keras import layers

import dendrite
from dendrite import _native, memory_reuse

handler_name = np._core.multiarray.get_handler_name

pytestmark = pytest.mark.needs_kernels
REUSE_FROM = 1 << 17  # bytes: csrc/reuse.c keeps blocks from this size
REUSE_UP_TO = 1 << 32  # to this one
LARGE = 1 << 20


@pytest.fixture(autouse=True)
def reuse_on():
    memory_reuse.set_enabled(True)
    yield
    memory_reuse.set_enabled(True)


def small_model() -> dendrite.keras.Model:
    dendrite.utils.set_random_seed(0)
    model = dendrite.keras.Sequential(
        [dendrite.keras.Input(shape=(8,)), layers.Dense(16, activation="relu"), layers.Dense(3)]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


class HandlerSeen(dendrite.keras.callbacks.Callback):
    """Records NumPy's allocator in the loop's own thread and in a thread it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, set] = {}

    def _record(self, kind: str) -> None:
        self.seen.setdefault(kind, set()).add(handler_name())
        other: list[str] = []
        thread = threading.Thread(target=lambda: other.append(handler_name()))
        thread.start()
        thread.join()
        self.seen.setdefault(kind + " other thread", set()).update(other)

    def on_train_batch_end(self, batch, logs=None):
        self._record("train")

    def on_test_batch_end(self, batch, logs=None):
        self._record("test")

    def on_predict_batch_end(self, batch, logs=None):
        self._record("predict")


def data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 8)).astype("float32"), rng.standard_normal((n, 3)).astype(
        "float32"
    )


def test_fit_evaluate_and_predict_allocate_through_it_and_nothing_else_does():
    x, y = data()
    model, seen = small_model(), HandlerSeen()
    assert handler_name() == "default_allocator"
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen], validation_split=0.25)
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[seen])
    model.predict(x, batch_size=8, verbose=0, callbacks=[seen])
    for kind in ("train", "test", "predict"):
        assert seen.seen[kind] == {"dendrite_reuse"}, kind
        assert seen.seen[kind + " other thread"] == {"default_allocator"}, kind
    assert handler_name() == "default_allocator"
    assert memory_reuse.stats()["kept_bytes"] == 0


def test_turned_off_the_loop_keeps_numpys_allocator():
    x, y = data()
    model, seen = small_model(), HandlerSeen()
    memory_reuse.set_enabled(False)
    assert not memory_reuse.enabled()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert seen.seen["train"] == {"default_allocator"}


def test_training_gives_the_same_bits_with_and_without_reuse():
    x, y = data(64)
    weights = []
    for flag in (True, False):
        memory_reuse.set_enabled(flag)
        model = small_model()
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        weights.append(([w.copy() for w in model.get_weights()], history.history["loss"]))
    (w_on, loss_on), (w_off, loss_off) = weights
    assert loss_on == loss_off
    for a, b in zip(w_on, w_off):
        np.testing.assert_array_equal(a, b)


def test_large_blocks_are_kept_reused_and_given_back_when_the_loop_ends():
    before = memory_reuse.stats()
    with memory_reuse.reusing():
        for _ in range(5):
            block = np.empty(LARGE, dtype=np.uint8)
            block[:] = 7
            del block
        during = memory_reuse.stats()
        assert during["kept_bytes"] >= LARGE
    after = memory_reuse.stats()
    assert during["reused"] - before["reused"] >= 4
    assert during["fresh"] - before["fresh"] <= 1
    assert after["kept_bytes"] == 0


def test_a_reused_block_is_zeroed_for_zeros_and_aligned():
    with memory_reuse.reusing():
        dirty = np.full(LARGE // 4, 3.5, dtype=np.float32)
        del dirty
        clean = np.zeros(LARGE // 4, dtype=np.float32)
        assert memory_reuse.stats()["reused"] > 0
        assert not clean.any()
        assert clean.ctypes.data % 64 == 0
        small = np.zeros(5)
        assert small.ctypes.data % 64 == 0 and not small.any()


@pytest.mark.parametrize(
    "sizes",
    [
        (10, 100_000),
        (100_000, 10),
        (100_000, 200_000),
        (200_000, 100_000),
        (40_000, 40_001),
        (10_000, 9_000),
        (10_000, 10),
    ],
    ids=[
        "small to large",
        "large to small",
        "grow",
        "shrink",
        "same class",
        "small, a little smaller",
        "small to tiny",
    ],
)
def test_resize_keeps_the_contents(sizes):
    first, second = sizes
    with memory_reuse.reusing():
        array = np.arange(first, dtype=np.float64)
        array.resize(second, refcheck=False)
        kept = min(first, second)
        np.testing.assert_array_equal(array[:kept], np.arange(kept, dtype=np.float64))
        if second > first:
            assert not array[first:].any()  # as NumPy: the new elements are zeros
        array[:] = 1.0
    array.resize(first, refcheck=False)  # outside the loop, on a block it allocated
    assert array.sum() == kept


def test_arrays_outlive_the_loop_and_nested_loops_share_the_kept_blocks():
    with memory_reuse.reusing():
        outer = np.ones(LARGE // 8)
        with memory_reuse.reusing():
            inner = np.full(LARGE // 8, 2.0)
            scratch = np.empty(LARGE)
            del scratch
        assert handler_name() == "dendrite_reuse"
        assert memory_reuse.stats()["kept_bytes"] >= LARGE  # the inner end drained nothing
    assert handler_name() == "default_allocator"
    assert memory_reuse.stats()["kept_bytes"] == 0
    assert outer.sum() == LARGE // 8 and inner.sum() == LARGE // 4
    del outer, inner  # freed for good outside any loop
    assert memory_reuse.stats()["kept_bytes"] == 0


def test_end_refuses_what_begin_did_not_give():
    with pytest.raises(ValueError, match="reuse_begin"):
        _native.kernels.reuse_end(object())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_allocates_and_frees_inside_a_loop():
    with memory_reuse.reusing():
        keep = np.ones(LARGE)
        pid = os.fork()
        if pid == 0:  # the child: any failure shows as its exit status
            try:
                for _ in range(3):
                    block = np.full(LARGE, 2.0)
                    del block
                os._exit(0 if keep.sum() == LARGE else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_environment_turns_it_off():
    code = "from dendrite import memory_reuse as m; print(m.enabled())"
    for value, expected in (("0", "False"), ("1", "True")):
        env = dict(os.environ, DENDRITE_REUSE_MEMORY=value)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


@pytest.mark.filterwarnings("ignore")
def test_without_the_kernels_it_does_nothing(monkeypatch):
    monkeypatch.setattr(_native, "kernels", None)
    assert not memory_reuse.available() and not memory_reuse.enabled()
    with memory_reuse.reusing():
        assert handler_name() == "default_allocator"
    assert memory_reuse.stats() == {"kept_bytes": 0, "reused": 0, "fresh": 0}


class FakeKernels:
    """Records the pairing of reuse_begin and reuse_end."""

    def __init__(self, begin_raises: BaseException | None = None) -> None:
        self.begin_raises, self.calls = begin_raises, []

    def reuse_begin(self):
        self.calls.append("begin")
        if self.begin_raises is not None:
            raise self.begin_raises
        return "previous"

    def reuse_end(self, previous):
        self.calls.append(("end", previous))


def test_begin_and_end_pair_whatever_is_raised(monkeypatch):
    fake = FakeKernels()
    monkeypatch.setattr(_native, "kernels", fake)
    with pytest.raises(RuntimeError), memory_reuse.reusing():
        raise RuntimeError("a step failed")
    assert fake.calls == ["begin", ("end", "previous")]
    fake = FakeKernels(begin_raises=KeyboardInterrupt())
    monkeypatch.setattr(_native, "kernels", fake)
    with pytest.raises(KeyboardInterrupt), memory_reuse.reusing():
        pass
    assert fake.calls == ["begin"]  # nothing to undo


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
