"""From a model to its layer calls: the symbolic inputs, the outputs, and the ordered nodes.

Functional and Sequential models already hold their graph (``model.inputs``,
``model.outputs``). A subclassed model has none: its ``call`` is run once on KerasTensors
(from ``input_signature``, or the shape it was built with), so every layer it calls and
every dendrite op it applies is recorded as a node (ops become ``OpLayer`` nodes, see
``layers/op_layer.py``); a ``call`` that leaves the symbolic world (NumPy on a tensor,
Python control flow on values) fails here with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.errors import NotExportableError
from dendrite.layers.input_layer import Input
from dendrite.layers.symbolic import KerasTensor, flatten
from dendrite.models.plan import ExecutionPlan


def _signature_shapes(input_signature: Any) -> list[tuple[tuple, str, str | None]]:
    """(batch shape, dtype, name) per input from Keras' ``input_signature`` forms: a shape
    tuple, an object with ``shape``/``dtype``/``name`` (InputSpec, KerasTensor), or a
    list of them."""
    items = input_signature
    if (
        isinstance(items, (tuple, list))
        and items
        and all(isinstance(v, (int, type(None))) for v in items)
    ):
        items = [items]
    if not isinstance(items, (list, tuple)):
        items = [items]
    found = []
    for item in items:
        if isinstance(item, (list, tuple)):
            found.append((tuple(item), "float32", None))
        else:
            shape = getattr(item, "shape", None)
            if shape is None:
                raise ValueError(f"input_signature: cannot read a shape from {item!r}.")
            dtype = np.dtype(getattr(item, "dtype", None) or "float32").name
            found.append((tuple(shape), dtype, getattr(item, "name", None)))
    return found


def graph_of(model: Any, input_signature: Any = None) -> tuple[list, list, list[str], list[str]]:
    """(input KerasTensors, output KerasTensors, input names, output names) of ``model``."""
    inputs = getattr(model, "_inputs", None) or _sequential_inputs(model)
    if inputs:
        outputs = list(model.outputs)
        input_names = [x._keras_history[0].name for x in inputs]
        output_names = list(getattr(model, "output_names", None) or [])
        if len(output_names) != len(outputs):
            output_names = [x._keras_history[0].name for x in outputs]
        return list(inputs), outputs, input_names, output_names
    return _trace_subclassed(model, input_signature)


def _sequential_inputs(model: Any) -> list:
    if not hasattr(model, "_stack"):
        return []
    if not model.built:
        model._maybe_build_from_input()
    if not model.built:
        raise ValueError(
            f"Sequential model '{model.name}' is not built: call it on data or give its "
            f"first layer an input shape before exporting."
        )
    return list(model.inputs)


def _trace_subclassed(model: Any, input_signature: Any) -> tuple:
    if input_signature is not None:
        specs = _signature_shapes(input_signature)
    else:
        shape = getattr(model, "_build_input_shape", None)
        if shape is None:
            raise ValueError(
                f"Subclassed model '{model.name}' has no known input shape: build it (call "
                f"it on data) or pass input_signature= to export."
            )
        shapes = shape if isinstance(shape, list) else [shape]
        specs = [(tuple(s), "float32", None) for s in shapes]
    inputs = [
        Input(batch_shape=(None, *shape[1:]), dtype=dtype, name=name)
        for shape, dtype, name in specs
    ]
    try:
        result = model.call(inputs[0] if len(inputs) == 1 else inputs)
    except NotExportableError:
        raise
    except Exception as error:
        raise NotExportableError(
            f"Cannot export subclassed model '{model.name}' ({type(model).__name__}) to "
            f"ONNX: its call could not be traced on symbolic inputs ({type(error).__name__}: "
            f"{error}). Only calls made of layers and dendrite ops can be exported; build "
            f"the model with the functional API instead."
        ) from error
    outputs = flatten(result)
    if not outputs or not all(isinstance(x, KerasTensor) for x in outputs):
        raise NotExportableError(
            f"Cannot export subclassed model '{model.name}' to ONNX: its call returned "
            f"values that are not traced tensors."
        )
    names = [x._keras_history[0].name for x in inputs]
    output_names = [f"output_{k}" for k in range(len(outputs))]
    if len(outputs) == 1:
        output_names = ["output"]
    return inputs, outputs, names, output_names


def ordered_nodes(inputs: list, outputs: list, owner: str) -> list:
    """The layer calls between ``inputs`` and ``outputs``, each after those it consumes."""
    return ExecutionPlan(inputs, outputs, owner).nodes
