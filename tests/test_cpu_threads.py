"""The thread governor (dendrite.cpu_threads): it times steps and keeps the faster of all
threads and one, probes again when the machine changes, and the overrides fix the count."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import dendrite as tf
from dendrite import _native, cpu_threads


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Every test starts from the environment's choice and leaves nothing behind."""
    for name in (
        "DENDRITE_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    ):
        monkeypatch.delenv(name, raising=False)
    cpu_threads.reset()
    yield
    cpu_threads.reset()


class FakeMachine:
    """A clock whose steps take ``cost[threads]`` seconds, ``threads`` being what
    cpu_threads has in force when the step begins."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.cost = dict(cost)
        self.now = 0.0
        self.pending = 0.0

    def clock(self) -> float:
        return self.now

    def run(self, governor: cpu_threads.ThreadGovernor, steps: int) -> list[int]:
        used = []
        for _ in range(steps):
            started = governor.begin()
            threads = cpu_threads._state().current
            used.append(threads)
            cost = self.cost[threads]
            self.now += cost() if callable(cost) else cost
            governor.end(started)
        return used


_REAL_OTHERS_RUNNING = cpu_threads._others_running
_REAL_LOOKS_BUSY = cpu_threads._looks_busy


def adaptive_governor(
    monkeypatch, machine: FakeMachine, ceiling: int = 2, busy: bool = False, warm_up: bool = False
):
    """A governor on the fake machine; without ``warm_up`` its first probe starts at the
    first step (the tests of the probes count their steps from there)."""
    if not warm_up:
        monkeypatch.setattr(cpu_threads, "WARMUP_STEPS", 0)
    monkeypatch.setattr(cpu_threads, "apply", _recording_apply)
    monkeypatch.setattr(cpu_threads, "_looks_busy", lambda: busy)
    monkeypatch.setattr(cpu_threads, "_others_running", lambda: busy)
    state = cpu_threads._state()
    state.ceiling, state.adaptive, state.current, state.source = ceiling, True, ceiling, "test"
    return cpu_threads.ThreadGovernor(clock=machine.clock)


def _recording_apply(threads: int) -> None:
    """apply() without touching the real BLAS (the fake machine decides the times)."""
    state = cpu_threads._state()
    state.current = max(1, min(int(threads), state.ceiling))


def test_keeps_two_threads_when_they_are_faster(monkeypatch):
    machine = FakeMachine({2: 0.004, 1: 0.006})
    governor = adaptive_governor(monkeypatch, machine)
    used = machine.run(governor, 200)
    assert governor.choice == 2 and governor.holding
    assert used[-50:] == [2] * 50
    assert 1 in used  # it did measure one thread
    assert cpu_threads._state().decisions[-1] == (2, {1: 0.006, 2: 0.004})


def test_the_first_steps_warm_up_unmeasured_before_the_first_probe(monkeypatch):
    """A loop's first steps are slow whatever the threads: measured, they would count
    against whichever setting the first probe tried first."""
    steps = iter(range(10**6))
    warm = cpu_threads.WARMUP_STEPS

    def two_threads() -> float:  # slow while warming up, then twice as fast as one
        return 0.010 if next(steps) < warm else 0.004

    machine = FakeMachine({2: two_threads, 1: 0.008})
    governor = adaptive_governor(monkeypatch, machine, warm_up=True)
    used = machine.run(governor, 200)
    assert used[:warm] == [2] * warm  # all threads, as without a governor
    assert governor.choice == 2, cpu_threads._state().decisions
    assert cpu_threads._state().decisions[0] == (2, {1: 0.008, 2: 0.004})


def test_the_warm_up_ends_after_warmup_s_of_long_steps(monkeypatch):
    machine = FakeMachine({2: 0.1, 1: 0.2})
    governor = adaptive_governor(monkeypatch, machine, warm_up=True)
    machine.run(governor, math.ceil(cpu_threads.WARMUP_S / 0.1))
    assert governor.warm_up_steps_left == 0 and not governor.results
    used = machine.run(governor, 20)
    assert 1 in used and governor.choice == 2


def test_a_busy_machine_warms_up_on_one_thread(monkeypatch):
    machine = FakeMachine({2: 0.004, 1: 0.006})
    governor = adaptive_governor(monkeypatch, machine, busy=True, warm_up=True)
    used = machine.run(governor, cpu_threads.WARMUP_STEPS)
    assert used == [1] * cpu_threads.WARMUP_STEPS and not governor.results


def test_falls_back_to_one_thread_when_a_neighbour_takes_a_core(monkeypatch):
    machine = FakeMachine({2: 0.004, 1: 0.006})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 100)
    assert governor.choice == 2
    # A neighbour starts: two threads now wait for a descheduled partner.
    machine.cost = {2: 0.040, 1: 0.008}
    used = machine.run(governor, 60)
    assert governor.choice == 1, cpu_threads._state().decisions
    # It noticed the drift within a window, not after the hold (2 s = hundreds of steps).
    assert used.index(1) < 3 * cpu_threads.WINDOW_STEPS


def test_returns_to_two_threads_after_the_hold_when_the_machine_is_quiet_again(monkeypatch):
    machine = FakeMachine({2: 0.040, 1: 0.008})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 60)
    assert governor.choice == 1
    machine.cost = {2: 0.002, 1: 0.003}
    used = machine.run(governor, 5000)
    assert governor.choice == 2
    # Holding one thread, it waits for the hold to end before trying two threads again.
    assert used[:100] == [1] * 100


def test_a_few_very_slow_steps_count_against_two_threads(monkeypatch):
    """A same-priority neighbour: most steps with two threads are fast, one in five waits
    a whole time slice for a descheduled partner. The epoch pays the mean, so one thread
    wins although two threads' median step is faster."""
    steps = iter(range(10**6))
    machine = FakeMachine({2: lambda: 0.030 if next(steps) % 5 == 0 else 0.004, 1: 0.006})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 200)
    assert governor.choice == 1, cpu_threads._state().decisions


def test_a_tie_goes_to_all_threads(monkeypatch):
    machine = FakeMachine({2: 0.0050, 1: 0.0049})  # one thread faster, but within TIE
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 100)
    assert governor.choice == 2


def test_on_a_busy_machine_a_tie_goes_to_one_thread(monkeypatch):
    """Beside a neighbour a short window understates all threads' mean (their rare very
    slow steps): they must win by more than BUSY_TIE to be chosen."""
    machine = FakeMachine({2: 0.0095, 1: 0.010})  # all threads 5% faster: a tie here
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    machine.run(governor, 60)
    assert governor.choice == 1, cpu_threads._state().decisions
    machine = FakeMachine({2: 0.0085, 1: 0.010})  # 15% faster: a win
    cpu_threads.reset()
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    machine.run(governor, 60)
    assert governor.choice == 2, cpu_threads._state().decisions


def test_a_hopeless_probe_ends_early(monkeypatch):
    machine = FakeMachine({2: 0.002, 1: 0.001})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 100)
    assert governor.choice == 1
    # Two threads become hopeless; one thread stays fast. A probe of two threads must
    # stop after a few steps instead of a full window.
    machine.cost = {2: 0.050, 1: 0.001}
    governor.held = governor.hold_s  # the hold has run out
    used = machine.run(governor, 40)
    assert used.count(2) <= 4, used
    assert governor.choice == 1


def test_the_hold_doubles_while_probes_agree(monkeypatch):
    machine = FakeMachine({2: 0.001, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 30)
    first = governor.hold_s
    machine.run(governor, int(3 * first / 0.001))
    assert governor.choice == 2 and governor.hold_s > first
    assert governor.hold_s <= cpu_threads.MAX_HOLD_S


def test_probes_cost_little_of_a_steady_run(monkeypatch):
    machine = FakeMachine({2: 0.001, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    used = machine.run(governor, 30_000)  # 30 s of steps
    assert used.count(1) / len(used) < 0.01


def test_the_environment_fixes_the_threads(monkeypatch):
    monkeypatch.setenv("DENDRITE_NUM_THREADS", "1")
    cpu_threads.reset()
    info = cpu_threads.thread_info()
    assert (info["max_threads"], info["source"], info["adaptive"]) == (
        1,
        "DENDRITE_NUM_THREADS",
        False,
    )
    assert not cpu_threads.ThreadGovernor().enabled


def test_openblas_one_thread_is_respected(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    cpu_threads.reset()
    assert cpu_threads.thread_info()["max_threads"] == 1
    assert not cpu_threads.thread_info()["adaptive"]


def test_set_num_threads_sets_blas_and_the_kernels_and_stops_adapting():
    tf.config.set_num_threads(1)
    info = tf.config.thread_info()
    assert info["threads"] == 1 and not info["adaptive"]
    assert info["source"] == "set_num_threads"
    assert info["blas"] in (None, 1)
    if _native.kernels is not None:
        assert info["kernels"] == 1
    with pytest.raises(ValueError, match="positive"):
        tf.config.set_num_threads(0)


def test_fit_evaluate_predict_run_under_the_governor():
    """A real run: the governor decides, the results do not depend on the threads."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 32)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def run():
        tf.utils.set_random_seed(1)
        model = tf.Sequential(
            [tf.Input((32,)), tf.layers.Dense(64, "relu"), tf.layers.Dense(2, "softmax")]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        return history.history["loss"], model.evaluate(x, y, verbose=0), model.predict(x[:64])

    adaptive = run()
    governors = cpu_threads.thread_info()
    tf.config.set_num_threads(1)
    fixed = run()
    np.testing.assert_allclose(adaptive[0], fixed[0], rtol=1e-5)
    np.testing.assert_allclose(adaptive[1], fixed[1], rtol=1e-5)
    np.testing.assert_allclose(adaptive[2], fixed[2], rtol=1e-5, atol=1e-6)
    if governors["adaptive"]:
        assert governors["decisions"], "512 steps must have completed at least one probe"


def test_a_model_keeps_one_governor_per_kind_of_step():
    model = tf.Sequential([tf.Input((4,)), tf.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 4), "float32")
    model.fit(x, x[:, :1], verbose=0)
    model.evaluate(x, x[:, :1], verbose=0)
    model.predict(x, verbose=0)
    assert set(model._thread_governors) == {"train", "test", "predict"}
    first = model._thread_governors["train"]
    model.fit(x, x[:, :1], verbose=0)
    assert model._thread_governors["train"] is first


def test_long_steps_use_short_windows_and_long_holds(monkeypatch):
    """One-second steps: windows of 3 steps, and probes under about 5% of the steps."""
    machine = FakeMachine({2: 1.0, 1: 1.5})
    governor = adaptive_governor(monkeypatch, machine)
    used = machine.run(governor, 600)
    assert governor.choice == 2
    assert used[:4] == [2] * 4 and used[4:8] == [1] * 4  # 1 wake-up step + 3 measured
    assert used.count(1) / len(used) < 0.06, used.count(1)


def test_varying_step_times_do_not_keep_it_probing(monkeypatch):
    """Bucketed batches: every fourth step three times as long, whatever the threads."""
    steps = iter(range(10**6))

    def cost(base):
        return lambda: base * (3 if next(steps) % 4 == 0 else 1)

    machine = FakeMachine({2: cost(0.002), 1: cost(0.003)})
    governor = adaptive_governor(monkeypatch, machine)
    used = machine.run(governor, 20_000)
    assert governor.choice == 2
    assert used.count(1) / len(used) < 0.03, used.count(1)


def test_idle_time_between_calls_does_not_run_the_hold_out(monkeypatch):
    machine = FakeMachine({2: 0.001, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 100)
    assert governor.holding
    before = len(cpu_threads._state().decisions)
    for _ in range(50):  # predict() of 4 batches every 5 s
        machine.now += 5.0
        machine.run(governor, 4)
    assert len(cpu_threads._state().decisions) == before


def test_set_num_threads_stops_governors_that_already_exist(monkeypatch):
    machine = FakeMachine({2: 0.004, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 100)
    assert governor.choice == 1
    cpu_threads.set_num_threads(2)
    assert machine.run(governor, 100) == [2] * 100


def test_the_outermost_loop_gives_all_threads_back(monkeypatch):
    machine = FakeMachine({2: 0.004, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    with governor.loop():
        machine.run(governor, 100)
        assert cpu_threads._state().current == 1
        inner = cpu_threads.ThreadGovernor(clock=machine.clock)
        with inner.loop():  # validation inside fit: nested, same thread
            machine.run(inner, 3)
        assert cpu_threads._state().current in (1, 2)  # inner left it as it chose
    assert cpu_threads._state().current == 2


def test_loops_in_two_threads_at_once_are_not_timed(monkeypatch):
    import threading

    machine = FakeMachine({2: 0.004, 1: 0.002})
    governor = adaptive_governor(monkeypatch, machine)
    entered, release = threading.Event(), threading.Event()

    def other_loop():
        with cpu_threads.ThreadGovernor().loop():
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=other_loop)
    worker.start()
    entered.wait(10)
    try:
        with governor.loop():
            assert machine.run(governor, 100) == [2] * 100
            assert not cpu_threads._state().decisions
    finally:
        release.set()
        worker.join()


def test_an_environment_limit_holds_from_the_first_use(monkeypatch):
    monkeypatch.setenv("DENDRITE_NUM_THREADS", "1")
    cpu_threads.reset()
    info = cpu_threads.thread_info()
    assert info["threads"] == 1 and info["blas"] in (None, 1)


def test_a_limit_set_outside_dendrite_between_loops_is_respected():
    if cpu_threads.blas_threads() is None or cpu_threads._state().ceiling < 2:
        pytest.skip("needs a reachable BLAS and two cores")
    cpu_threads.blas_threads(1)  # as threadpoolctl.threadpool_limits(1) would
    with cpu_threads.ThreadGovernor().loop():
        info = cpu_threads.thread_info()
        assert info["max_threads"] == 1 and not info["adaptive"]
        assert info["source"] == "BLAS limit set outside dendrite"


def test_the_first_probe_of_all_threads_ends_early_on_a_busy_machine(monkeypatch):
    """No one-thread figure yet to compare with: a window whose steps range from fast to
    twenty times slower ends after a few steps."""
    steps = iter(range(10**6))
    machine = FakeMachine({2: lambda: 0.100 if next(steps) % 2 else 0.002, 1: 0.003})
    governor = adaptive_governor(monkeypatch, machine)
    used = machine.run(governor, 40)
    assert used[0] == 2 and used.index(1) <= 5, used
    assert governor.choice == 1


def test_a_machine_that_already_looks_busy_is_probed_with_one_thread_first(monkeypatch):
    machine = FakeMachine({2: 0.002, 1: 0.003})
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    used = machine.run(governor, 100)
    assert used[:8] == [1] * 8  # one wake-up step, then its window
    assert governor.choice == 2  # the probe still decides


def test_a_step_that_woke_the_threads_and_took_far_too_long_ends_their_window(monkeypatch):
    """Beside a same-priority neighbour one step of two threads took 15 times one
    thread's: the window of two threads ends after that one step, not after a second."""
    machine = FakeMachine({2: 0.150, 1: 0.010})
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    used = machine.run(governor, 30)
    assert used[:8] == [1] * 8  # one wake-up step, then its window
    assert used[8:] == [2] + [1] * 21, used
    assert governor.choice == 1
    assert cpu_threads._state().decisions[-1] == (1, {1: 0.01, 2: 0.15})


def test_a_window_of_all_threads_already_losing_to_one_thread_ends_after_three_steps(
    monkeypatch,
):
    """Beside a same-priority neighbour two threads were merely slower (50-100 ms against
    one thread's 55-65 ms) until one step of 0.9 s: a window that is losing by LOSING
    ends before it risks that step."""
    machine = FakeMachine({2: 0.0135, 1: 0.010})
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    used = machine.run(governor, 30)
    assert used[:8] == [1] * 8  # one wake-up step, then its window
    assert used[8:12] == [2] * 4 and used[12:] == [1] * 18, used  # wake-up, three steps
    assert governor.choice == 1


def test_one_outlier_step_does_not_end_a_winning_window_of_all_threads(monkeypatch):
    """On a quiet machine where two threads are 20% faster, one step 2.5 times slower (a
    garbage collection, a new shape's plan in ops._products) right after the wake-up step
    must not make the probe choose one thread: LOSING looks at the median of three."""
    seen = {"two": 0, "outlier": -1}

    def two_threads():
        seen["two"] += 1
        return 0.020 if seen["two"] == seen["outlier"] else 0.008

    machine = FakeMachine({2: two_threads, 1: 0.010})
    governor = adaptive_governor(monkeypatch, machine)
    machine.run(governor, 40)
    assert governor.choice == 2 and governor.holding
    governor._start_probe()  # the hold ran out: one thread, then all threads again
    used = machine.run(governor, 1 + cpu_threads.WINDOW_STEPS + 1)
    assert used[-1] == 2  # one thread's window done; this step woke the two threads
    seen["outlier"] = seen["two"] + 1  # the first measured step of all threads
    machine.run(governor, 20)
    assert governor.choice == 2, cpu_threads._state().decisions


def test_our_own_threads_in_the_load_average_do_not_make_a_quiet_machine_busy(monkeypatch):
    """Measured: with nothing else running, a minute of two-thread training put the load
    average at 1.57 on two cores. Whether the tie goes to one thread is decided by other
    programs' threads runnable at that instant, not by the load average."""
    machine = FakeMachine({2: 0.0095, 1: 0.010})  # all threads 5% faster: a tie
    governor = adaptive_governor(monkeypatch, machine)
    monkeypatch.setattr(cpu_threads, "_others_running", _REAL_OTHERS_RUNNING)
    monkeypatch.setattr(cpu_threads, "_looks_busy", _REAL_LOOKS_BUSY)
    monkeypatch.setattr(cpu_threads, "_runnable_elsewhere", lambda: 0)  # nobody else
    monkeypatch.setattr(cpu_threads.os, "getloadavg", lambda: (1.7, 1.2, 0.8))  # ours
    machine.run(governor, 60)
    assert governor.choice == 2, cpu_threads._state().decisions
    monkeypatch.setattr(cpu_threads, "_runnable_elsewhere", lambda: 2)  # a neighbour
    assert cpu_threads._others_running()


def test_products_are_planned_only_while_a_governor_may_switch_threads():
    """ops._products plans products only inside a loop whose governor may switch threads:
    not in a custom training loop, nor in a distribution's passive loops."""
    state = cpu_threads._state()
    state.ceiling, state.adaptive, state.source = 2, True, "test"
    assert cpu_threads.switching() == 0  # no loop
    with cpu_threads.ThreadGovernor(passive=True).loop():
        assert cpu_threads.switching() == 0
    governor = cpu_threads.ThreadGovernor()
    with governor.loop():
        assert cpu_threads.switching() == (2 if cpu_threads._blas() else 0)
        with cpu_threads.ThreadGovernor(passive=True).loop():  # validation inside fit
            assert cpu_threads.switching() == (2 if cpu_threads._blas() else 0)
    assert cpu_threads.switching() == 0
    tf.config.set_num_threads(2)
    with cpu_threads.ThreadGovernor().loop():
        assert cpu_threads.switching() == 0  # fixed threads never switch


def test_all_threads_slower_by_less_than_losing_get_their_whole_window(monkeypatch):
    """Noise is not losing: two threads whose steps alternate fast and slow around one
    thread's mean are measured to the end of their window, and win when they are
    faster."""
    steps = iter(range(10**6))
    machine = FakeMachine({2: lambda: 0.0115 if next(steps) % 2 else 0.0055, 1: 0.010})
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    used = machine.run(governor, 30)
    assert used[8 : 8 + 1 + cpu_threads.WINDOW_STEPS] == [2] * 8, used
    assert governor.choice == 2


def test_a_wake_up_step_a_little_slow_does_not_end_the_window(monkeypatch):
    steps = iter(range(10**6))
    # The step that wakes two threads takes three times the others; they are faster.
    machine = FakeMachine({2: lambda: 0.012 if next(steps) == 0 else 0.003, 1: 0.004})
    governor = adaptive_governor(monkeypatch, machine, busy=True)
    machine.run(governor, 60)
    assert governor.choice == 2, cpu_threads._state().decisions


def test_threads_runnable_elsewhere_count_a_neighbours_spinning_processes():
    spin = [sys.executable, "-c", "while True: pass"]
    neighbours = [subprocess.Popen(spin) for _ in range(2)]
    try:
        time.sleep(0.3)
        counts = [cpu_threads._runnable_elsewhere() for _ in range(5)]
    finally:
        for process in neighbours:
            process.kill()
            process.wait()
    assert max(counts) >= 2, counts  # more when other programs run too


@pytest.mark.parametrize(
    ("elsewhere", "load", "busy"),
    [(2, 0.0, True), (1, 0.0, False), (0, 1.6, True), (None, 1.6, True), (None, 0.2, False)],
)
def test_a_neighbour_that_just_started_counts_before_the_load_average_moves(
    monkeypatch, elsewhere, load, busy
):
    monkeypatch.setattr(cpu_threads, "_cores", lambda: 2)
    monkeypatch.setattr(cpu_threads, "_runnable_elsewhere", lambda: elsewhere)
    monkeypatch.setattr(cpu_threads.os, "getloadavg", lambda: (load, load, load))
    assert cpu_threads._looks_busy() is busy


def test_a_task_line_is_read_after_the_command_name():
    """The command name may hold spaces and parentheses; state and niceness come after it."""
    fields = ["S", "1", "2", "3", "0", "-1", "4194304"] + ["0"] * 9 + ["10", "1"]
    line = "123 (a (weird) name) " + " ".join(fields)
    assert cpu_threads._task_state(line) == ("S", 10)
    assert cpu_threads._task_state(line.replace(" S ", " R ", 1)) == ("R", 10)


def test_a_niced_thread_counts_by_its_share_of_a_core():
    """The scheduler's weights: a thread at nice 10 against ours at 0 gets about a ninth
    of a core we both want; at the same niceness, a whole one."""
    assert cpu_threads._nice_weight(0) == 1024
    assert cpu_threads._nice_weight(10) / cpu_threads._nice_weight(0) == pytest.approx(
        110 / 1024, rel=0.03
    )
    assert cpu_threads._nice_weight(5) / cpu_threads._nice_weight(5) == 1


def _fake_proc(root, tasks):
    """A /proc holding ``tasks``: {pid: [(state, nice), ...]} (one stat file per thread)."""
    for pid, threads in tasks.items():
        for tid, (state, nice) in enumerate(threads):
            folder = root / str(pid) / "task" / str(pid * 100 + tid)
            folder.mkdir(parents=True)
            fields = [state] + ["0"] * 15 + [str(nice), "1"]
            (folder / "stat").write_text(f"{pid} (a (b) c) " + " ".join(fields) + "\n")
    (root / "self").mkdir()  # not a pid: skipped
    return str(root)


def test_runnable_threads_elsewhere_are_weighted_by_their_niceness(tmp_path, monkeypatch):
    """Two spinning threads at nice 10, one at 0, a sleeping one, and this process' own
    (skipped): 1 + 2 x 0.107; only running threads count."""
    monkeypatch.setattr(cpu_threads.os, "getpriority", lambda *_: 0)
    me = os.getpid()
    proc = _fake_proc(
        tmp_path, {1001: [("R", 10), ("R", 10), ("S", 0)], 1002: [("R", 0)], me: [("R", 0)]}
    )
    total, seen = cpu_threads._weighted_elsewhere(proc)
    assert seen == 3
    assert total == pytest.approx(1 + 2 / 1.25**10)
    monkeypatch.setattr(cpu_threads.os, "getpriority", lambda *_: 10)  # we are niced too
    total, _ = cpu_threads._weighted_elsewhere(proc)
    assert total == pytest.approx(1.25**10 + 2)


def test_threads_proc_does_not_show_count_whole(monkeypatch):
    """In a container the kernel's count covers the whole host, /proc only its own
    processes: the threads it does not show count as neighbours of our priority."""
    monkeypatch.setattr(cpu_threads, "_cores", lambda: 2)
    monkeypatch.setattr(cpu_threads, "_weighted_elsewhere", lambda: (0.2, 2))  # 2 niced seen
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            return io.StringIO("0.5 0.5 0.5 5/300 1234\n")  # 5 runnable in all
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(cpu_threads.os, "listdir", lambda path: [])  # none of ours running
    assert cpu_threads._runnable_elsewhere() == pytest.approx(0.2 + 3)


def test_a_niced_neighbour_leaves_the_tie_to_all_threads(monkeypatch):
    """Beside two niced threads (weighted 0.2 in all) the machine is not busy: all threads
    5% faster win the tie, as on a quiet machine."""
    machine = FakeMachine({2: 0.0095, 1: 0.010})
    governor = adaptive_governor(monkeypatch, machine)
    monkeypatch.setattr(cpu_threads, "_others_running", _REAL_OTHERS_RUNNING)
    monkeypatch.setattr(cpu_threads, "_looks_busy", _REAL_LOOKS_BUSY)
    monkeypatch.setattr(cpu_threads, "_cores", lambda: 2)
    monkeypatch.setattr(cpu_threads, "_runnable_elsewhere", lambda: 0.2)
    machine.run(governor, 60)
    assert governor.choice == 2, cpu_threads._state().decisions
