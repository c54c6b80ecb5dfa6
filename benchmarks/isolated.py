"""Each framework in its own worker process, timed in turn (A B C A B C ...).

Loaded into one process, the frameworks share it with each other's thread pools:
TensorFlow's and PyTorch's worker threads, and OpenBLAS's, each spin for a while after
their own work, on a 2-core machine right when the next framework starts, which made every
framework's timings depend on which others were imported. Here every framework gets a
fresh interpreter (``spawn``), as a user's program would; the workers take turns, so at
most one computes at any moment and the others wait blocked on a pipe, and alternating
rounds still spreads any drift in the machine's speed over all of them.

A worker is described by ``(module, factory, args)``: ``module.factory(*args)`` runs in the
worker and returns a callable or a tuple of callables (e.g. ``(epoch, accuracy)``); the
parent then calls them by position. A factory that raises ImportError (or returns None)
marks its framework as missing.
"""

from __future__ import annotations

import importlib
import multiprocessing
import sys
import traceback
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[1])


def _serve(connection: Any, module: str, factory: str, args: tuple) -> None:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    try:
        built = getattr(importlib.import_module(module), factory)(*args)
    except ImportError as error:
        connection.send(("missing", str(error)))
        return
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(("error", traceback.format_exc()))
        return
    if built is None:
        connection.send(("missing", f"{module}.{factory} returned None"))
        return
    functions = built if isinstance(built, tuple) else (built,)
    connection.send(("ready", len(functions)))
    while True:
        index = connection.recv()
        if index is None:
            return
        try:
            connection.send(("ok", functions[index]()))
        except BaseException:  # noqa: BLE001
            connection.send(("error", traceback.format_exc()))


class Worker:
    """One framework's process; ``call(i)`` runs its i-th callable there."""

    def __init__(self, name: str, module: str, factory: str, args: tuple = ()) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, module, factory, args), daemon=True
        )
        self._process.start()
        child.close()
        status, detail = self._receive()
        self.missing = detail if status == "missing" else None

    def _receive(self) -> tuple[str, Any]:
        try:
            status, detail = self._connection.recv()
        except EOFError:
            raise RuntimeError(f"benchmark worker {self.name!r} died") from None
        if status == "error":
            raise RuntimeError(f"benchmark worker {self.name!r} failed:\n{detail}")
        return status, detail

    def call(self, index: int = 0) -> Any:
        self._connection.send(index)
        return self._receive()[1]

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._connection.send(None)
            except OSError:
                pass
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()


def start(specs: dict[str, tuple[str, str, tuple]]) -> tuple[dict[str, Worker], list[str]]:
    """Start one worker per framework (one at a time, so that their start-up does not
    disturb each other); returns the ready workers and the names of the missing ones."""
    workers, missing = {}, []
    for name, (module, factory, args) in specs.items():
        worker = Worker(name, module, factory, args)
        if worker.missing is None:
            workers[name] = worker
        else:
            worker.close()
            missing.append(name)
    return workers, missing


def alternate(workers: dict[str, Worker], rounds: int, index: int = 0) -> dict[str, list]:
    """``rounds`` results of each worker's ``index``-th callable, taken in turn."""
    results: dict[str, list] = {name: [] for name in workers}
    for _ in range(rounds):
        for name, worker in workers.items():
            results[name].append(worker.call(index))
    return results


def close(workers: dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.close()
