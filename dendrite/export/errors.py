"""The export's errors and its one lazy import of ``onnx``.

``NotExportableError`` names the layer or op that cannot be exported and why; it is raised
while the graph is built, so nothing is written. ``onnx_module`` imports the optional
``onnx`` package, or says how to install it.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "pip install 'dendrite[onnx]'"


class NotExportableError(ValueError):
    """A layer or op of the model has no ONNX form (the message names it and why)."""


def onnx_module() -> Any:
    """The ``onnx`` package, or an ImportError naming the ``dendrite[onnx]`` extra."""
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"Exporting to ONNX needs the 'onnx' package, which is not installed: "
            f"{INSTALL_HINT} (or pip install onnx onnxruntime)."
        ) from error
    return onnx


def refuse(layer: Any, reason: str) -> NotExportableError:
    """The error for ``layer`` (a Layer) that cannot be exported, with ``reason``."""
    return NotExportableError(
        f"Cannot export layer '{layer.name}' ({type(layer).__name__}) to ONNX: {reason}"
    )
