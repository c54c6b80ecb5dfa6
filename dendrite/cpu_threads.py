"""How many threads dendrite computes with, chosen while it trains: 1, or all it may use.

On a quiet machine two threads make the larger products and kernels faster. On a busy one
they can make a step many times slower: OpenBLAS' threads (and the kernels' helper) wait
for each other at the end of every product, and when the operating system deschedules one
of them to run a neighbour, the other waits a whole time slice. Whether two threads pay
depends on the model (a small MLP barely gains from them), the machine and what else runs
on it, and all of these change while a program runs. So dendrite does not guess: it
measures.

``ThreadGovernor`` times the steps of a ``fit``, ``evaluate`` or ``predict`` loop (the
step alone, not the data loading). It runs a *probe*: a window of steps with one thread,
then a window with all threads, and keeps the setting whose mean step time is lower (one
thread when the two are within ``TIE``: it takes less from the neighbours). The mean, not
the median, because a busy machine shows itself as a few very slow steps among fast ones,
and the mean is what an epoch pays. One thread is measured first because its cost is
bounded; the window of all threads ends early once its mean is ``ABORT`` times one
thread's, so on a busy machine a probe costs a few slow steps, not a window. The governor
then holds its choice and probes again after ``HOLD_S`` seconds, a hold that doubles (up
to ``MAX_HOLD_S``) each time a probe confirms the choice. Holding all threads, it probes at
once when the mean of the last ``DRIFT_STEPS`` steps exceeds the mean it chose on by more
than ``DRIFT`` (a neighbour started); holding one thread it waits for the hold to end,
since a probe of all threads costs the most exactly when they are the wrong choice, and
OpenBLAS' threads keep spinning for a while after their last product. A window is
``WINDOW_STEPS`` steps and at least ``WINDOW_S`` seconds; its first step after a switch is
not in the window's mean (threads wake), but it counts towards ending a hopeless window.

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
"""

from __future__ import annotations

import ctypes
import os
import statistics
import time
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
THREAD_LIMITS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

WINDOW_STEPS = 7
WINDOW_S = 0.02
HOLD_S = 2.0
MAX_HOLD_S = 32.0
TIE = 0.03
DRIFT = 0.5
DRIFT_STEPS = 3
ABORT = 2.0


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


@dataclass
class _State:
    """The most threads dendrite may use, why, and what is in force now."""

    ceiling: int
    source: str
    current: int
    adaptive: bool
    blas_start: int | None = None
    decisions: list = field(default_factory=list)


def _initial_state() -> _State:
    blas = blas_threads()
    cores = os.cpu_count() or 1
    override = os.environ.get("DENDRITE_NUM_THREADS", "")
    if override.isdigit() and int(override) > 0:
        ceiling, source = int(override), "DENDRITE_NUM_THREADS"
    elif any(os.environ.get(name) == "1" for name in THREAD_LIMITS_ENV):
        ceiling, source = 1, "OPENBLAS_NUM_THREADS/OMP_NUM_THREADS"
    elif _native.kernels is not None and _native.kernel_threads == 1:
        ceiling, source = 1, "MPI launcher (one core per rank)"
    elif cores < 2:
        ceiling, source = 1, "one core"
    else:
        ceiling, source = blas or cores, "measured"
    current = blas if blas is not None else ceiling
    return _State(ceiling, source, current, source == "measured" and ceiling > 1, blas)


_STATE: _State | None = None


def _state() -> _State:
    global _STATE
    if _STATE is None:
        _STATE = _initial_state()
    return _STATE


def apply(threads: int) -> None:
    """Compute with ``threads`` from now on (BLAS and the kernels' helper), if different."""
    state = _state()
    threads = max(1, min(int(threads), state.ceiling))
    if threads == state.current:
        return
    blas_threads(threads)
    if _native.kernels is not None:
        _native.kernels.set_threads(threads)
    state.current = threads


def set_ceiling(threads: int, source: str) -> None:
    """Use at most ``threads`` (an MPI rank's share of its machine), adapting below it."""
    state = _state()
    state.ceiling, state.source = max(1, int(threads)), source
    state.adaptive = state.ceiling > 1 and source != "DENDRITE_NUM_THREADS"
    state.current = 0  # unknown: force the next apply
    apply(state.ceiling)


def set_num_threads(threads: int) -> None:
    """Compute with exactly ``threads`` from now on, and stop adapting (as
    ``torch.set_num_threads``; ``DENDRITE_NUM_THREADS`` does this for a whole run)."""
    if int(threads) < 1:
        raise ValueError(f"set_num_threads: expected a positive count, got {threads!r}")
    state = _state()
    state.ceiling, state.source, state.adaptive = int(threads), "set_num_threads", False
    state.current = 0
    apply(state.ceiling)


def reset() -> None:
    """Forget every choice: back to the threads BLAS and the kernels started with, and the
    limits the environment sets (for tests, and after changing the environment)."""
    global _STATE
    if _STATE is not None and _STATE.blas_start is not None:
        blas_threads(_STATE.blas_start)
    if _native.kernels is not None:
        _native.kernels.set_threads(max(1, _native.kernel_threads))
    _STATE = None


def thread_info() -> dict[str, Any]:
    """What is in force: ``threads`` now, ``max_threads``, ``source`` of the maximum,
    ``adaptive`` (whether steps are timed to choose), BLAS' and the kernels' threads, and
    the governor's last ``decisions`` (threads chosen, median step seconds with each)."""
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

    ``clock`` is injectable for tests. A loop calls ``begin()`` before each step and
    ``end(token)`` after it."""

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self.clock = clock
        state = _state()
        self.enabled = state.adaptive
        self.choice = state.ceiling
        self.trying = 1  # the first probe starts with one thread
        self.samples: list[float] = []
        self.window_start = 0.0
        self.skip = True
        self.first = 0.0
        self.results: dict[int, float] = {}
        self.hold_s = HOLD_S
        self.hold_until: float | None = None
        self.baseline = 0.0
        self.recent: list[float] = []

    def begin(self) -> float:
        if self.enabled:
            want = self.trying if self.hold_until is None else self.choice
            if _state().current != want:
                apply(want)
        return self.clock()

    def end(self, started: float) -> None:
        if not self.enabled:
            return
        now = self.clock()
        seconds = now - started
        if self.hold_until is None:
            self._probe_step(seconds, now)
        else:
            self._hold_step(seconds, now)

    def _probe_step(self, seconds: float, now: float) -> None:
        one = self.results.get(1) if self.trying != 1 else None
        if self.skip:  # the first step after a switch: threads wake, caches refill
            self.skip, self.window_start, self.first = False, now, seconds
            return
        self.samples.append(seconds)
        if one is not None and statistics.fmean([self.first, *self.samples]) > ABORT * one:
            self._window_done(now)
            return
        if len(self.samples) >= WINDOW_STEPS and now - self.window_start >= WINDOW_S:
            self._window_done(now)

    def _window_done(self, now: float) -> None:
        self.results[self.trying] = statistics.fmean(self.samples)
        self.samples, self.skip = [], True
        ceiling = _state().ceiling
        if ceiling not in self.results:
            self.trying = ceiling
            return
        best = 1 if self.results[1] <= self.results[ceiling] * (1 + TIE) else ceiling
        self.hold_s = min(MAX_HOLD_S, self.hold_s * 2) if best == self.choice else HOLD_S
        self.choice = self.trying = best
        self.baseline = self.results[best]
        decision = (best, {n: round(s, 6) for n, s in sorted(self.results.items())})
        _state().decisions.append(decision)
        del _state().decisions[:-32]
        self.hold_until, self.recent = now + self.hold_s, []

    def _hold_step(self, seconds: float, now: float) -> None:
        self.recent.append(seconds)
        if len(self.recent) > DRIFT_STEPS:
            del self.recent[0]
        drifted = (
            self.choice > 1
            and len(self.recent) == DRIFT_STEPS
            and statistics.fmean(self.recent) > (1 + DRIFT) * self.baseline
        )
        if drifted:
            self.hold_s = HOLD_S
        if drifted or now >= self.hold_until:
            self._start_probe()

    def _start_probe(self) -> None:
        """Measure one thread, then all threads (see the module)."""
        self.hold_until, self.results, self.samples, self.skip = None, {}, [], True
        self.trying = 1
