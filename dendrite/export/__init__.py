"""ONNX export: ``Model.export(filepath, format="onnx")`` and ``dendrite export``.

The parts, one job each: ``trace`` (a model's inputs, outputs and layer calls, tracing a
subclassed model's ``call``), ``builder`` (the walk over layer calls into one ONNX graph),
``graph`` (the graph under construction), ``convert_*`` (the converters of one layer family
each, maths in their docstrings), ``registry`` (converters by class, and the layers that
cannot be exported with their reasons), ``write`` (the atomic write), ``errors``.
"""

from __future__ import annotations

from typing import Any

from dendrite.export.errors import INSTALL_HINT, NotExportableError, onnx_module

FORMATS = ("onnx",)

__all__ = ["FORMATS", "INSTALL_HINT", "NotExportableError", "export_model"]


def export_model(
    model: Any,
    filepath: Any,
    format: str = "onnx",
    input_signature: Any = None,
    opset_version: int | None = None,
    **kwargs: Any,
) -> None:
    """Write ``model`` to ``filepath`` as ``format`` (only "onnx"). The whole graph is built
    and checked (``onnx.checker``) before anything is written; the write is atomic."""
    if format not in FORMATS:
        raise ValueError(
            f"Unrecognized format={format!r}: dendrite exports only format='onnx' "
            f"(Keras' 'tf_saved_model' needs TensorFlow)."
        )
    if kwargs:
        raise TypeError(f"export() got unexpected keyword arguments: {sorted(kwargs)}.")
    onnx_module()
    from dendrite.export.builder import build_model_proto
    from dendrite.export.write import write_model

    proto = build_model_proto(model, input_signature=input_signature, opset_version=opset_version)
    write_model(proto, filepath)
