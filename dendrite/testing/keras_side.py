"""Run a script with real Keras 3 in its own process, for tests that compare dendrite with
Keras on the same arrays or files (Keras and dendrite never share a process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_keras_side(
    script: str, root: Path, backend: str | None = None, timeout: float = 600
) -> None:
    """Write ``script`` to ``root/side.py`` and run it with ``root`` as its argument, under
    ``KERAS_BACKEND`` = ``backend`` (default: the environment's, else "torch"); its
    stderr's tail is the assertion message when it fails."""
    side = Path(root) / "side.py"
    side.write_text(script)
    chosen = backend or os.environ.get("KERAS_BACKEND", "torch")
    done = subprocess.run(
        [sys.executable, str(side), str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": chosen},
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
