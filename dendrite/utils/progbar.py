"""Keras' progress bar, ``keras.utils.Progbar``:
``1875/1875 ━━━━━━━━━━ 2s 1ms/step - accuracy: 0.87 - loss: 0.35``.

On a terminal (verbose=1) the line is redrawn in place at most every ``interval`` seconds;
when output is not a terminal (a log file, CI) only the finished line is printed, so logs
carry no carriage-return spam. verbose=2 prints one summary line per epoch.

Values are averaged as Keras averages them: a metric not in ``stateful_metrics`` (all of
them by default) shows the mean of the values given so far, each weighted by the steps it
covered, ``sum_i v_i (c_i - c_{i-1}) / sum_i (c_i - c_{i-1})`` for updates at steps c_i; a
stateful one (a running mean the caller keeps, as ``fit``'s logs are) shows its last
value; the final update shows the values it is given.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


def _format_per_step(seconds: float, unit: str = "step") -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_value(value: Any) -> str:
    value = float(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


class Progbar:
    """A progress line for ``target`` steps (None when unknown).

    Args:
        target: total number of steps.
        width: characters of the bar.
        verbose: 0 (silent), 1 (bar) or 2 (one line at the end).
        interval: minimum seconds between redraws on a terminal.
        stateful_metrics: names shown as given (not averaged); the others are averaged.
        stateless_metrics: names averaged; the others are shown as given. At most one of
            the two may be given; with neither, every metric is averaged (Keras' rule).
        unit_name: what a step is called in the timing ("step", "sample").
        stream: where to write (default sys.stdout).
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        stateless_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        stream: TextIO | None = None,
    ) -> None:
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Progbar: give stateful_metrics (the names not averaged) or "
                "stateless_metrics (the names averaged), not both."
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = None if stateful_metrics is None else set(stateful_metrics)
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        if self.stateful_metrics is None and self.stateless_metrics is None:
            self.stateful_metrics = set()
        self.unit_name = unit_name
        self.stream = stream or sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.finished = False
        self._seen_so_far = 0
        self._values: dict[str, list[float]] = {}  # name -> [weighted sum, weight]

    def update(
        self,
        current: int,
        values: Iterable[tuple[str, Any]] | Mapping[str, Any] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Show step ``current`` with ``values``: ``(name, value)`` pairs (or a mapping)
        for the last step(s); ``finalize`` (default: ``current >= target``) ends the line."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        pairs = values.items() if isinstance(values, Mapping) else (values or [])
        for name, value in pairs:
            self._record(name, float(value), current, finalize)
        self._seen_so_far = current
        if self.finished or self.verbose == 0:
            return
        now = time.perf_counter()
        if not finalize and (not self.dynamic or self.verbose != 1):
            return
        if not finalize and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        self._draw(current, now - self.start, finalize)

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        """``update(steps so far + n, values)``."""
        self.update(self._seen_so_far + n, values)

    def _record(self, name: str, value: float, current: int, finalize: bool) -> None:
        if self.stateful_metrics is not None:
            averaged = name not in self.stateful_metrics
        else:
            averaged = name in self.stateless_metrics
        if not averaged or finalize:
            self._values[name] = [value, 1.0]
            return
        steps = max(current - self._seen_so_far, 1)
        total = self._values.setdefault(name, [0.0, 0.0])
        total[0] += value * steps
        total[1] += steps

    def _draw(self, current: int, elapsed: float, finalize: bool) -> None:
        metrics = "".join(f" - {k}: {format_value(s / n)}" for k, (s, n) in self._values.items())
        per_step = elapsed / max(current, 1)
        if self.verbose == 2:
            timing = f"{_format_time(elapsed)} - {_format_per_step(per_step, self.unit_name)}"
            line = f"{current}/{self.target} - {timing}{metrics}"
        else:
            if finalize:
                timing = f"{_format_time(elapsed)} {_format_per_step(per_step, self.unit_name)}"
            elif self.target is not None:
                timing = f"{_format_time(per_step * (self.target - current))}"
            else:
                timing = _format_time(elapsed)
            line = f"{self._counter(current)} {self._bar(current)} {timing}{metrics}"
        if self.dynamic and self.verbose == 1:
            self.stream.write("\r" + line + ("\n" if finalize else "\x1b[K"))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.finished = finalize

    def _counter(self, current: int) -> str:
        if self.target is None:
            return str(current)
        digits = len(str(self.target))
        return f"{current:>{digits}}/{self.target}"

    def _bar(self, current: int) -> str:
        if self.target is None or self.target == 0:
            return ""
        done = int(self.width * min(current, self.target) / self.target)
        return (
            "\u2501" * done + "\u2500" * (self.width - done)
            if self._unicode()
            else ("=" * done + "." * (self.width - done))
        )

    def _unicode(self) -> bool:
        encoding = getattr(self.stream, "encoding", None) or "ascii"
        try:
            "\u2501".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            return False
        return True
