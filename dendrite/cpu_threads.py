"""How many threads dendrite computes with, chosen while it trains: 1, or all it may use.

On a quiet machine two threads make the larger products and kernels faster. On a busy one
they can make a step many times slower: OpenBLAS' threads (and the kernels' helper) wait
for each other at the end of every product, and when the operating system deschedules one
of them to run a neighbour, the other waits a whole time slice. Whether two threads pay
depends on the model (a small MLP barely gains from them), the machine and what else runs
on it, and all of these change while a program runs. So dendrite does not guess: it
measures.

``ThreadGovernor`` times the steps of a ``fit``, ``evaluate`` or ``predict`` loop (the
step alone, not the data loading; each kind of loop of a model has its own). It runs a
*probe*: a window of steps with one setting, then a window with the other, and keeps the
setting whose mean step time is lower; all threads unless one thread is faster by more
than ``TIE``, since within that the difference is noise, and a loop that shares the
machine with its own data workers gains from all threads even when its steps alone do
not show it. The mean, not the median, because a busy machine shows
itself as a few very slow steps among fast ones, and an epoch pays the mean. When other
programs' threads fill all but half a core as the probe ends (counted at that instant,
not by the load average, which counts this process' own threads too and after a minute of
training says a quiet machine is busy; and each counted by its priority against ours, so
that a ``nice -n 10`` neighbour's thread counts about a ninth: it takes that little of a
core from us, and beside it an LSTM's step measured 5.7 ms on two threads against 7.1 on
one, where the tie going to one thread had held one) the tie goes the other way: one thread
unless all threads are faster by more than ``BUSY_TIE``, because there a window of a few
steps of all threads understates their mean (beside a same-priority neighbour their
slowest steps, a tenth of a second to a second, come too seldom for one window to hold
them: two threads measured 70 ms against one thread's 72 ms, then ran at 99 ms).

- A governor's first ``WARMUP_STEPS`` steps (at most ``WARMUP_S`` seconds of them) are
  not measured: a loop's first steps are slower whatever the threads (the LSTM's first
  16 took 6-7.5 ms on two threads, then 4.5; 7.8 ms on one, then 6.1), so a first probe
  that measured all threads among them and one thread after them chose one thread in five
  of ten fresh LSTM processes, quiet or beside a niced neighbour, where two threads
  measured 20-45% faster later in the same loops; after a warm-up, in one of eight.
- A governor's first probe starts with all threads, as dendrite would run without it,
  unless other programs already fill all but half a core (by the last minute's load
  average, or by the threads runnable at that instant, which a neighbour that started
  seconds ago already shows: a window of all threads on a busy machine costs several
  slow steps when there is no one-thread figure yet to abort it against); later probes
  start with one thread, whose cost is bounded. A window ends early once
  its mean (counting the step that woke the threads) is ``ABORT`` times the other
  setting's (at once, after the step that woke them, if that step alone took
  ``FRESH_ABORT`` times the other setting's mean: waking threads costs far less, and
  beside a same-priority neighbour one step of two threads can take 15 times one
  thread's), or ``SPREAD`` times its own fastest step (steps that fast and that slow in
  one window are threads waiting for a descheduled partner; a quiet machine's steps
  differ by far less), so on a busy machine a probe of all threads costs a few slow
  steps, the first probe too. A window of all threads also ends once the median of three
  or more of its steps (the wake-up step aside) is ``LOSING`` times one thread's mean (a
  median, so that one garbage collection does not end a winning window): one thread is the
  setting whose cost is bounded, and beside a same-priority neighbour a window of all
  threads that is merely slower also risks a step ten times slower (a CNN step on two
  BLAS threads: mostly 50-100 ms against one thread's 55-65 ms, then one of 0.9 s).
- A window is ``WINDOW_STEPS`` steps and at least ``WINDOW_S`` seconds, or 3 steps once
  they take ``LONG_S`` seconds (long steps). The first step after any change of threads
  (by a probe, or by another loop such as validation) is not measured.
- The choice is then held for ``HOLD_S`` seconds of steps (time spent in this loop's
  steps, not wall time, so idle time between calls does not run it out), a hold that
  doubles up to ``MAX_HOLD_S`` each time a probe confirms the choice, and that is never
  shorter than ``HOLD_FACTOR`` times the last probe's cost: probes take at most about 5%
  of the steps, however long a step is.
- Holding all threads, the governor probes at once when two blocks of ``DRIFT_STEPS``
  steps in a row are ``DRIFT`` slower than the mean it chose on (a neighbour started).
  Holding one thread it waits for the hold to end, since a probe of all threads costs most
  exactly when they are the wrong choice, and OpenBLAS' threads keep spinning for a while
  after their last product.
- When the outermost loop ends, all threads are back in force for the program's own work.
  While loops run in two Python threads at once neither is timed (each would measure the
  other), and under a distribution (MPI) the loops are not timed at all: a rank's probe
  would slow every rank through the gradient allreduce, so each rank keeps its share.
- A program that changes BLAS' threads itself between loops (``threadpoolctl``) sets a new
  limit, which the governors then adapt below.

Products and kernels too small to gain from two threads already run on one without any
switching: OpenBLAS runs a product of fewer than 262,144 multiply-adds (m n k) on one
thread, and dendrite's kernels share a job with their helper thread only from 262,144
elements (``SPLIT_FROM`` in csrc/kernels.h, measured on the MLP's Adam update and the
CNN's pooling). The governor decides the rest, for the whole step, from its measured time.

Threads are set through BLAS' own ``set_num_threads`` (OpenBLAS, as numpy ships it, or
MKL, found among the loaded libraries; about 0.5 us a call) and the kernels'
``set_threads``. The most threads dendrite uses:

- ``DENDRITE_NUM_THREADS=N``: exactly N, never changed (``source`` "DENDRITE_NUM_THREADS");
  ``set_num_threads(n)`` does the same from a program, as ``torch.set_num_threads``;
- ``OPENBLAS_NUM_THREADS=1`` or ``OMP_NUM_THREADS=1``, or one core: one thread;
- under MPI, the rank's share of its machine (``distribution.threads``);
- otherwise BLAS' threads as it started with them (the machine's cores), and the governor
  chooses between those and one.

``thread_info()`` (also ``dendrite.config.thread_info()``) reports what is in force.

Switching threads must not change the numbers: OpenBLAS rounds some products' sums
differently on one thread and on several, so the ops multiply through
``ops._products.product``, which plans each shape so its sums are the same on either
(``switching()`` tells it whether threads can change at all), and a seeded run
reproduces bit for bit whatever the governor chose.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dendrite import _native

# (set, get) symbol pairs of the BLAS libraries numpy may load.
_OPENBLAS_SYMBOLS = [
    (f"{prefix}set_num_threads{suffix}", f"{prefix}get_num_threads{suffix}")
    for prefix in ("openblas_", "scipy_openblas_")
    for suffix in ("", "64_", "_64_")
]
_MKL_SYMBOLS = [("MKL_Set_Num_Threads", "MKL_Get_Max_Threads")]

WINDOW_STEPS = 7
WARMUP_STEPS = 24
WARMUP_S = 0.25
WINDOW_S = 0.02
LONG_S = 0.5
HOLD_S = 2.0
MAX_HOLD_S = 32.0
HOLD_FACTOR = 20
TIE = 0.03
BUSY_TIE = 0.1
DRIFT = 0.5
DRIFT_STEPS = 3
ABORT = 2.0
LOSING = 1.25
FRESH_ABORT = 4.0
SPREAD = 4.0


def _loaded_libraries() -> list[str]:
    """Paths of the BLAS libraries (OpenBLAS, MKL, BLIS) this process has loaded."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    wanted = ("openblas", "mkl_rt", "blis")
    return sorted(p for p in paths if any(w in os.path.basename(p).lower() for w in wanted))


def _blas_functions() -> list[tuple[Any, Any]]:
    """(set, get) ctypes functions of every loaded BLAS that has them."""
    import numpy  # noqa: F401  (loads numpy's BLAS, whose functions are looked up)

    found = []
    for path in _loaded_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS + _MKL_SYMBOLS:
            setter = getattr(library, set_name, None)
            getter = getattr(library, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                found.append((setter, getter))
                break
    return found


_BLAS: list[tuple[Any, Any]] | None = None


def _blas() -> list[tuple[Any, Any]]:
    global _BLAS
    if _BLAS is None:
        _BLAS = _blas_functions()
    return _BLAS


def blas_threads(threads: int | None = None) -> int | None:
    """Set BLAS' threads to ``threads`` (None: leave them) and return them as now in force
    (None when no BLAS library could be reached)."""
    found = None
    for setter, getter in _blas():
        if threads is not None:
            setter(threads)
        found = int(getter())
    return found


def switching() -> int:
    """All the threads a governor may switch BLAS to (besides one) while its loop runs, or
    0 when BLAS' threads do not change: no governed loop running (a custom training loop,
    a distribution's passive loops), or threads fixed by the environment or a program, one
    core, no BLAS reachable. ``ops._products`` keeps products' sums the same across the
    switch."""
    state = _state()
    if not state.governed or not state.adaptive or state.ceiling < 2 or not _blas():
        return 0
    return state.ceiling


@contextlib.contextmanager
def blas_pinned_to(threads: int) -> Iterator[None]:
    """BLAS on ``threads`` threads inside the block, as before it afterwards."""
    with _LOCK:
        before = blas_threads()
        if before is not None and before != threads:
            blas_threads(threads)
        try:
            yield
        finally:
            if before is not None and before != threads:
                blas_threads(before)


@dataclass
class _State:
    """The most threads dendrite may use, why, and what is in force now. ``generation``
    changes whenever the limits do, so that governors start again from them."""

    ceiling: int
    source: str
    current: int
    adaptive: bool
    blas_start: int | None = None
    generation: int = 0
    decisions: list = field(default_factory=list)
    loops: dict = field(default_factory=dict)  # thread id -> loops running in it
    governed: int = 0  # loops running whose governor may switch threads


def _cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_load() -> float:
    """The load from other programs at which the machine counts as busy: all but half a
    core of ours."""
    return _cores() - 0.5


def _runnable_elsewhere() -> float | None:
    """Threads of other processes running or ready to run at this instant, each counted by
    its share of a core against one of ours (the scheduler's weight for its niceness over
    ours: a thread at ``nice -n 10`` beside ours at 0 counts about 0.11, since it gets that
    much of a core we both want); None without ``/proc``.

    The kernel's count of runnable threads (``/proc/loadavg``) less this process' own
    answers when it is already below what ``_others_running`` calls busy; only above it are
    the other processes' threads read one by one for their niceness (4 ms for the 67
    processes of the machine it was measured on, tens of ms for a desktop's thousands of
    threads: once a probe, on a machine that looks busy)."""
    try:
        with open("/proc/loadavg") as loadavg:
            runnable = int(loadavg.read().split()[3].split("/")[0])
        ours = 0
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat") as stat:
                ours += _task_state(stat.read())[0] == "R"
    except (OSError, ValueError, IndexError):
        return None
    elsewhere = max(0, runnable - ours)
    if elsewhere < _busy_load():
        return float(elsewhere)
    weighted = _weighted_elsewhere()
    if weighted is None:
        return float(elsewhere)
    # Threads the kernel counts but /proc does not show (other containers on the host)
    # count whole: their niceness is unknown.
    total, seen = weighted
    return total + max(0, elsewhere - seen)


def _task_state(stat: str) -> tuple[str, int]:
    """(state, niceness) from a /proc task's ``stat`` line: the fields after the command
    name (in parentheses, which may itself hold spaces and parentheses)."""
    fields = stat.rpartition(")")[2].split()
    return fields[0], int(fields[16])


def _nice_weight(nice: int) -> float:
    """The Linux scheduler's weight of a thread at ``nice`` (1024 at 0, each step about
    1.25 times less)."""
    return 1024.0 / 1.25**nice


def _weighted_elsewhere(proc: str = "/proc") -> tuple[float, int] | None:
    """(the sum, the count) of other processes' runnable threads that ``proc`` shows, each
    weighted by its niceness against ours; None when it cannot be read."""
    mine = str(os.getpid())
    try:
        ours = _nice_weight(os.getpriority(os.PRIO_PROCESS, 0))
        pids = [entry.name for entry in os.scandir(proc) if entry.name.isdigit()]
    except (AttributeError, OSError):
        return None
    total, seen = 0.0, 0
    for pid in pids:
        if pid == mine:
            continue
        try:
            tasks = os.listdir(f"{proc}/{pid}/task")
        except OSError:
            continue  # gone, or not ours to read
        for task in tasks:
            try:
                with open(f"{proc}/{pid}/task/{task}/stat") as stat:
                    state, nice = _task_state(stat.read())
            except (OSError, ValueError, IndexError):
                continue
            if state == "R":
                total += _nice_weight(nice) / ours
                seen += 1
    return total, seen


def _looks_busy() -> bool:
    """Whether other programs already fill all but half a core of ours: by the last
    minute's load average, or by the threads runnable right now (a neighbour that started
    seconds ago has not moved the average yet). It only orders a governor's first probe;
    the probe decides."""
    if _others_running():
        return True
    try:
        return os.getloadavg()[0] >= _busy_load()
    except (AttributeError, OSError):
        return False


def _others_running() -> bool:
    """Whether other programs' threads fill all but half a core of ours right now, counted
    by their priority (a niced neighbour takes little from us). Not the load average,
    which counts this process' own threads: after a minute of training on all threads it
    says a quiet machine is busy."""
    elsewhere = _runnable_elsewhere()
    return elsewhere is not None and elsewhere >= _busy_load()


def _initial_state() -> _State:
    blas = blas_threads()
    override = os.environ.get("DENDRITE_NUM_THREADS", "")
    if override.isdigit() and int(override) > 0:
        ceiling, source = int(override), "DENDRITE_NUM_THREADS"
    elif any(os.environ.get(name) == "1" for name in _native.THREAD_LIMITS_ENV):
        ceiling, source = 1, "OPENBLAS_NUM_THREADS or OMP_NUM_THREADS = 1"
    elif _native.kernels is not None and _native.kernel_threads == 1:
        ceiling, source = 1, "MPI launcher (one core per rank)"
    elif _cores() < 2:
        ceiling, source = 1, "one core"
    else:
        ceiling, source = blas or _cores(), "measured"
    current = blas if blas is not None else ceiling
    return _State(ceiling, source, current, source == "measured" and ceiling > 1, blas)


_STATE: _State | None = None
_LOCK = threading.RLock()


def _state() -> _State:
    global _STATE
    if _STATE is None:
        with _LOCK:
            if _STATE is None:
                state = _initial_state()
                _STATE = state
                if state.source != "measured":  # a limit from the environment holds at once
                    _force(state, state.ceiling)
    return _STATE


def _force(state: _State, threads: int) -> None:
    state.current = 0  # unknown: the next apply sets both
    apply(threads)


def apply(threads: int) -> None:
    """Compute with ``threads`` from now on (BLAS and the kernels' helper), if different."""
    state = _state()
    threads = max(1, min(int(threads), state.ceiling))
    if threads == state.current:
        return
    with _LOCK:
        blas_threads(threads)
        if _native.kernels is not None:
            _native.kernels.set_threads(threads)
        state.current = threads


def set_ceiling(threads: int, source: str) -> None:
    """Use at most ``threads`` (an MPI rank's share of its machine), adapting below it
    (the training loops run without a governor while a distribution is set)."""
    state = _state()
    state.ceiling, state.source = max(1, int(threads)), source
    state.adaptive = state.ceiling > 1 and source != "DENDRITE_NUM_THREADS"
    state.generation += 1
    _force(state, state.ceiling)


def set_num_threads(threads: int) -> None:
    """Compute with exactly ``threads`` from now on, and stop adapting (as
    ``torch.set_num_threads``; ``DENDRITE_NUM_THREADS`` does this for a whole run)."""
    if int(threads) < 1:
        raise ValueError(f"set_num_threads: expected a positive count, got {threads!r}")
    state = _state()
    state.ceiling, state.source, state.adaptive = int(threads), "set_num_threads", False
    state.generation += 1
    _force(state, state.ceiling)


def reset() -> None:
    """Forget every choice: back to the threads BLAS and the kernels started with, and the
    limits the environment sets (for tests). Governors start again from the new state."""
    global _STATE
    generation = 0
    if _STATE is not None:
        generation = _STATE.generation + 1
        if _STATE.blas_start is not None:
            blas_threads(_STATE.blas_start)
    if _native.kernels is not None:
        _native.kernels.set_threads(max(1, _native.kernel_threads))
    _STATE = None
    _state().generation = generation


def thread_info() -> dict[str, Any]:
    """What is in force: ``threads`` now, ``max_threads``, ``source`` of the maximum,
    ``adaptive`` (whether steps are timed to choose), BLAS' and the kernels' threads, and
    the governor's last ``decisions`` (threads chosen, mean step seconds with each)."""
    state = _state()
    return {
        "threads": state.current,
        "max_threads": state.ceiling,
        "source": state.source,
        "adaptive": state.adaptive,
        "blas": blas_threads(),
        "kernels": _native.kernels.threads() if _native.kernels is not None else 0,
        "decisions": list(state.decisions[-8:]),
    }


class ThreadGovernor:
    """Chooses, by timing one loop's steps, between all threads and one (see the module).

    A loop runs inside ``with governor.loop():`` and calls ``begin()`` before each step
    and ``end(token)`` after it. ``clock`` is injectable for tests."""

    def __init__(self, clock: Any = time.perf_counter, passive: bool = False) -> None:
        self.clock = clock
        self.passive = passive
        self._restart(_state())

    def _restart(self, state: _State) -> None:
        self.generation = state.generation
        self.enabled = state.adaptive and not self.passive
        self.choice = state.ceiling
        # The first probe starts as dendrite would without a governor, unless the machine
        # already looks busy: then with one thread, whose cost is bounded.
        self.trying = 1 if _looks_busy() else state.ceiling
        self.warm_up_steps_left = WARMUP_STEPS
        self.warm_up_s = 0.0
        self.results: dict[int, float] = {}
        self.samples: list[float] = []
        self.fresh = True
        self.first = 0.0
        self.probe_cost = 0.0
        self.hold_s = HOLD_S
        self.held = 0.0
        self.holding = False
        self.baseline = 0.0
        self.block: list[float] = []
        self.drifted_blocks = 0

    @contextlib.contextmanager
    def loop(self) -> Iterator[None]:
        """One fit/evaluate/predict loop. When the outermost loop of a thread ends, all
        threads are back in force for the program's own work; while loops run in two
        threads at once, neither times its steps (each would measure the other)."""
        state, me = _state(), threading.get_ident()
        with _LOCK:
            if not state.loops and state.adaptive:
                self._respect_outside_limits(state)
            state.loops[me] = state.loops.get(me, 0) + 1
            governed = int(state.adaptive and not self.passive)
            state.governed += governed
        try:
            yield
        finally:
            with _LOCK:
                state.governed -= governed
                state.loops[me] -= 1
                if not state.loops[me]:
                    del state.loops[me]
                if not state.loops and state.adaptive:
                    apply(state.ceiling)

    @staticmethod
    def _respect_outside_limits(state: _State) -> None:
        """A program (or threadpoolctl) that changed BLAS' threads between loops set a new
        limit: adapt below it from now on."""
        blas = blas_threads()
        if blas is not None and state.current and blas != state.current:
            state.ceiling, state.current = blas, blas
            state.source, state.adaptive = "BLAS limit set outside dendrite", blas > 1
            state.generation += 1

    def begin(self) -> float:
        state = _state()
        if self.generation != state.generation:
            self._restart(state)
        if not self.enabled or len(state.loops) > 1:
            return -1.0
        want = self.choice if self.holding else self.trying
        if state.current != want:
            apply(want)
            self.fresh = True  # threads wake, caches refill: this step is not measured
        return self.clock()

    def end(self, started: float) -> None:
        if started < 0:
            return
        seconds = self.clock() - started
        if self.warm_up_steps_left:
            self._warm_up_step(seconds)
            return
        fresh, self.fresh = self.fresh, False
        if self.holding:
            self._hold_step(seconds, fresh)
        else:
            self._probe_step(seconds, fresh)

    def _warm_up_step(self, seconds: float) -> None:
        """A step of the loop's first ``WARMUP_STEPS`` (at most ``WARMUP_S`` seconds of
        them), run with the first probe's first setting and not measured."""
        self.warm_up_s += seconds
        self.warm_up_steps_left -= 1
        if self.warm_up_s >= WARMUP_S:
            self.warm_up_steps_left = 0
        if not self.warm_up_steps_left:
            self.fresh = True  # the probe's first window starts as after a change

    def _probe_step(self, seconds: float, fresh: bool) -> None:
        self.probe_cost += seconds
        other = self.results.get(1 if self.trying != 1 else _state().ceiling)
        if fresh:
            if not self.samples:
                self.first = seconds
                if other is not None and seconds > FRESH_ABORT * other:
                    self._window_done()  # waking threads never costs that much
            return
        self.samples.append(seconds)
        mean = statistics.fmean([self.first, *self.samples])
        if (other is not None and mean > ABORT * other) or (
            len(self.samples) >= 2 and mean > SPREAD * min(self.samples)
        ):
            self._window_done()
            return
        if (
            self.trying > 1
            and other is not None
            and len(self.samples) >= 3
            and statistics.median(self.samples) > LOSING * other
        ):
            self._window_done()  # already losing to one thread, whose cost is bounded
            return
        spent = sum(self.samples)
        count = len(self.samples)
        if spent >= WINDOW_S and (count >= WINDOW_STEPS or (count >= 3 and spent >= LONG_S)):
            self._window_done()

    def _window_done(self) -> None:
        ceiling = _state().ceiling
        self.results[self.trying] = statistics.fmean(self.samples or [self.first])
        self.samples, self.fresh = [], True
        untried = [n for n in (self.trying, 1, ceiling) if n not in self.results]
        if untried:
            self.trying = untried[0]
            return
        if _others_running():
            best = ceiling if self.results[ceiling] < self.results[1] * (1 - BUSY_TIE) else 1
        else:
            best = 1 if self.results[1] < self.results[ceiling] * (1 - TIE) else ceiling
        floor = HOLD_FACTOR * self.probe_cost
        if best == self.choice:
            self.hold_s = min(max(MAX_HOLD_S, floor), 2 * self.hold_s)
        else:
            self.hold_s = HOLD_S
        self.hold_s = max(self.hold_s, floor)
        self.choice = best
        self.baseline = self.results[best]
        decision = (best, {n: round(s, 6) for n, s in sorted(self.results.items())})
        state = _state()
        state.decisions.append(decision)
        del state.decisions[:-32]
        self.holding, self.held, self.block, self.drifted_blocks = True, 0.0, [], 0

    def _hold_step(self, seconds: float, fresh: bool) -> None:
        self.held += seconds
        if not fresh and self.choice > 1:
            self.block.append(seconds)
            if len(self.block) == DRIFT_STEPS:
                slow = statistics.fmean(self.block) > (1 + DRIFT) * self.baseline
                self.drifted_blocks = self.drifted_blocks + 1 if slow else 0
                self.block = []
        if self.drifted_blocks >= 2 or self.held >= self.hold_s:
            self._start_probe()

    def _start_probe(self) -> None:
        """Measure one thread, then all threads (see the module)."""
        self.holding, self.results, self.samples, self.fresh = False, {}, [], True
        self.probe_cost = 0.0
        self.trying = 1
