"""Keras' progress bar: ``1875/1875 ━━━━━━━━━━ 2s 1ms/step - accuracy: 0.87 - loss: 0.35``.

On a terminal (verbose=1) the line is redrawn in place at most every ``interval`` seconds;
when output is not a terminal (a log file, CI) only the finished line is printed, so logs
carry no carriage-return spam. verbose=2 prints one summary line per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


def _format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_value(value: Any) -> str:
    value = float(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


class Progbar:
    """A progress line for ``target`` steps (None when unknown).

    Args:
        target: total number of steps.
        width: characters of the bar.
        verbose: 1 (bar) or 2 (one line at the end).
        interval: minimum seconds between redraws on a terminal.
        stream: where to write (default sys.stdout).
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stream: TextIO | None = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stream = stream or sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.finished = False

    def update(self, current: int, values: dict[str, Any] | None = None, finalize: bool = False):
        """Show step ``current`` with the running ``values`` (metric name -> number)."""
        if self.finished or self.verbose == 0:
            return
        now = time.perf_counter()
        finalize = finalize or (self.target is not None and current >= self.target)
        if not finalize and (not self.dynamic or self.verbose != 1):
            return
        if not finalize and now - self.last_draw < self.interval:
            return
        self.last_draw = now
        elapsed = now - self.start
        metrics = "".join(f" - {k}: {format_value(v)}" for k, v in (values or {}).items())
        per_step = elapsed / max(current, 1)
        if self.verbose == 2:
            timing = f"{_format_time(elapsed)} - {_format_per_step(per_step)}"
            line = f"{current}/{self.target} - {timing}{metrics}"
        else:
            if finalize:
                timing = f"{_format_time(elapsed)} {_format_per_step(per_step)}"
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
