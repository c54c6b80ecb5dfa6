"""``keras.device``: the context manager that places operations on a device.

dendrite computes on the CPU only, as Keras' NumPy backend does, whose scope changes
nothing. Here ``"cpu"`` and ``"cpu:<index>"`` (any case) are accepted silently; a name of
another device (``"gpu:0"``, ``"cuda"``, ``"tpu:1"``) is accepted too, so that code written
for an accelerator runs unchanged, with one warning saying that it runs on the CPU; a name
that is not ``"<type>"`` or ``"<type>:<index>"`` is refused.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

_DEVICE_NAME = re.compile(r"([a-zA-Z_]+)(?::(\d+))?")


@contextlib.contextmanager
def device(device_name: str) -> Iterator[None]:
    """Run the block ``with keras.device(device_name):`` on the CPU (see the module
    docstring).

    Args:
        device_name: ``"<type>"`` or ``"<type>:<index>"``, e.g. ``"cpu:0"``, ``"gpu:1"``.
    """
    match = _DEVICE_NAME.fullmatch(device_name) if isinstance(device_name, str) else None
    if match is None:
        raise ValueError(
            "Invalid value for argument `device_name`: expected a string of the form "
            f"'<device type>' or '<device type>:<index>' such as 'cpu:0'. Received: "
            f"device_name={device_name!r}"
        )
    if match.group(1).lower() != "cpu":
        warnings.warn(
            f"keras.device({device_name!r}): dendrite computes on the CPU only; the block "
            "runs on the CPU.",
            stacklevel=3,
        )
    yield
