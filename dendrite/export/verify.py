"""Checking an export by running it: the ONNX file in ONNX Runtime next to ``predict``.

``run_onnx(path, inputs)`` runs the file on CPU (inputs in the model's input order, or a
dict by input name); ``max_relative_difference(a, b)`` is max |a - b| / max(1, max |b|),
the measure the tests hold below 1e-5 for float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def run_onnx(path: Any, inputs: Any) -> list[np.ndarray]:
    """The outputs of the ONNX model at ``path`` on ``inputs`` (needs onnxruntime)."""
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Running an exported model needs onnxruntime: pip install 'dendrite[onnx]'."
        ) from error
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if isinstance(inputs, dict):
        feed = {name: np.asarray(inputs[name]) for name in names}
    else:
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        feed = {name: np.asarray(x) for name, x in zip(names, items)}
    return session.run(None, feed)


def max_relative_difference(got: Any, expected: Any) -> float:
    """max |got - expected| / max(1, max |expected|) (0 for empty arrays)."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} against {b.shape}")
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
