"""Writing the ONNX file: serialised in memory first, then replaced atomically
(``dendrite._atomic``), so a failed or interrupted export never leaves a partial file and
an existing file is either kept whole or replaced whole."""

from __future__ import annotations

from typing import Any

from dendrite._atomic import atomic_write_bytes


def write_model(proto: Any, filepath: Any) -> None:
    """Serialise ``proto`` (a ModelProto) and write it to ``filepath`` atomically."""
    payload = proto.SerializeToString()
    atomic_write_bytes(filepath, payload)
