"""How ``dendrite train | evaluate | predict`` checks its options and reports errors.

Every user error ends in one line on stderr and no traceback (``--debug`` shows it):

* a bad option value is a usage error, found by argparse before anything runs:
  ``dendrite train: error: argument --epochs: ...`` and exit status 2;
* a failure while running (an unreadable file, a wrong input shape, a full disk, a broken
  ``run.json``) is ``dendrite <command>: error: ...`` and exit status 1;
* Ctrl-C stops at once with exit status 130 and one line (for ``train``: how to resume).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the command line reports as one line (exit status 1), never a traceback."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error: ``PROG: error: MESSAGE (see PROG --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: Any) -> str:
    """``text`` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


# --- argument types: each raises ArgumentTypeError naming the value -------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, not {text!r}")
    return value


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def learning_rate(text: str) -> float:
    value = _float(text)
    if value is None or not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, not {text!r}")
    return value


def validation_split(text: str) -> float:
    value = _float(text)
    if value is None or not 0 <= value < 1:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(
            f"expected a fraction from 0 up to (not including) 1, not {text!r}"
        )
    return value


def optimizer_names() -> list[str]:
    """The built-in optimizers' names, as ``--optimizer`` takes them."""
    import dendrite

    names = []
    for name in dendrite.optimizers.__all__:
        found = getattr(dendrite.optimizers, name)
        if isinstance(found, type) and issubclass(found, dendrite.optimizers.Optimizer):
            if found is not dendrite.optimizers.Optimizer:
                names.append(name.lower())
    return sorted(names)


def optimizer_name(text: str) -> str:
    """A name ``dendrite.optimizers.get`` knows (any case), checked before training."""
    import dendrite

    try:
        dendrite.optimizers.get(text)
    except (ValueError, TypeError):
        known = ", ".join(optimizer_names())
        raise argparse.ArgumentTypeError(f"unknown optimizer {text!r} (known: {known})") from None
    return text


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, not {text!r}")
    return text


# --- running a command ------------------------------------------------------------------------
def run_command(
    command: str,
    function: Callable[[argparse.Namespace], int],
    args: argparse.Namespace,
    interrupted: Callable[[argparse.Namespace], str] | None = None,
) -> int:
    """Run ``function(args)``; a failure becomes one line on stderr and an exit status.

    ``interrupted(args)`` gives the line printed after Ctrl-C (what to do next)."""
    prog = f"dendrite {command}"
    try:
        return function(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        hint = interrupted(args) if interrupted else ""
        _say(f"{prog}: interrupted{'; ' + hint if hint else ''}")
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - the command line's last word on any failure
        if args.debug:
            raise
        _say(f"{prog}: error: {describe(error)}")
        return EXIT_FAILURE


def describe(error: BaseException) -> str:
    """One line for ``error``: our own messages as they are, the rest with their kind."""
    from dendrite.saving import ModelLoadError

    if isinstance(error, (CliError, ModelLoadError)):
        return one_line(error)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return one_line(f"{where}{error.strerror or error}")
    if isinstance(error, ValueError):
        return one_line(error)
    return one_line(
        f"{type(error).__name__}: {error} (run again with --debug to see the traceback)"
    )


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:  # stderr itself is gone: nothing more can be said
        pass
