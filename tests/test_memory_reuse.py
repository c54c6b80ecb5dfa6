"""dendrite.memory_reuse: NumPy allocates through csrc/reuse.c inside dendrite's loops only,
large blocks are kept and reused there, and arrays behave exactly as with NumPy's own
allocator (contents, zeroing, resizing, alignment, results of training)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from dendrite.keras import layers

import dendrite
from dendrite import _native, memory_reuse

handler_name = np._core.multiarray.get_handler_name

pytestmark = pytest.mark.needs_kernels
LARGE = 1 << 20  # bytes, well above the 128 KiB from which blocks are kept


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
