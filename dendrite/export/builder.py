"""``build_model_proto``: a dendrite model as an ONNX ``ModelProto``, converted layer call by
layer call.

The walk: the model's input KerasTensors become graph inputs (batch axis dynamic, and
every axis the model left as None), then each node (a layer call) is converted by its
layer's converter (``registry.py``) on the ``Value``s of its inputs, and its outputs are
recorded for the nodes that consume them. Nested models are walked in place, so a shared
or nested layer is one set of weights per call site. Keras masks ride on ``Value.mask``:
a layer that keeps its input's time axis passes the mask on, as in Keras. Nothing is
written here; a layer without an ONNX form raises before the caller writes anything.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from dendrite.export import registry
from dendrite.export.errors import NotExportableError, onnx_module, refuse
from dendrite.export.graph import GraphBuilder, Value
from dendrite.export.trace import graph_of, ordered_nodes
from dendrite.layers.input_layer import InputLayer
from dendrite.layers.symbolic import KerasTensor, flatten, map_structure

DEFAULT_OPSET = 17
#: One ONNX file is one protobuf message, which cannot reach 2 GiB.
PROTOBUF_LIMIT = 2**31 - 2**24


class ExportContext:
    """The builder and the Values of the KerasTensors converted so far."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder
        self.values: dict[int, Value] = {}

    def value(self, x: KerasTensor) -> Value:
        return self.values[id(x)]

    def wrap(self, name: str, like: KerasTensor, mask: str | None = None) -> Value:
        return Value(name, tuple(like.shape), np.dtype(like.dtype), mask)


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "compile") and hasattr(layer, "fit")


def _bind(layer: Any, node: Any, ctx: ExportContext) -> dict:
    """The node's call arguments by parameter name, KerasTensors replaced by Values."""

    def resolve(v: Any) -> Any:
        return ctx.value(v) if isinstance(v, KerasTensor) else v

    inputs = map_structure(resolve, node.inputs)
    args = [map_structure(resolve, a) for a in node.args]
    kwargs = {k: map_structure(resolve, v) for k, v in node.kwargs.items()}
    try:
        bound = inspect.signature(layer.call).bind(inputs, *args, **kwargs)
    except TypeError:
        return {"inputs": inputs, **{f"arg{k}": a for k, a in enumerate(args)}, **kwargs}
    values = dict(bound.arguments)
    for name, param in inspect.signature(layer.call).parameters.items():
        if param.kind is param.VAR_KEYWORD and name in values:
            values.update(values.pop(name))
    values["inputs"] = inputs
    return values


def convert_node(ctx: ExportContext, node: Any) -> None:
    """Convert one layer call and record the Values of its outputs."""
    layer = node.layer
    if isinstance(layer, InputLayer):
        given = node.input_tensors  # an InputLayer called on a tensor passes it on
        for source, kt in zip(given, node.output_tensors):
            ctx.values[id(kt)] = ctx.value(source)
        return
    if _is_model(layer):
        _convert_nested(ctx, node)
        return
    converter = registry.CONVERTERS.get(type(layer))
    if converter is None:
        reason = registry.NOT_EXPORTABLE.get(type(layer).__name__)
        raise refuse(
            layer,
            reason
            or "no ONNX converter for this layer class (custom layers are not exported; "
            "build the model from built-in layers and dendrite ops).",
        )
    args = _bind(layer, node, ctx)
    args["__out_shape__"] = tuple(node.output_tensors[0].shape)
    try:
        result = converter(ctx, layer, args)
    except NotExportableError:
        raise
    except Exception as error:
        raise refuse(layer, f"conversion failed ({type(error).__name__}: {error}).") from error
    produced = result if isinstance(result, (list, tuple)) else [result]
    expected = node.output_tensors
    if len(produced) != len(expected):
        raise refuse(layer, f"its converter made {len(produced)} outputs, not {len(expected)}.")
    first = next((v for v in flatten(node.input_tensors) if ctx.values[id(v)].mask), None)
    in_mask = ctx.values[id(first)].mask if first is not None else None
    for kt, out in zip(expected, produced):
        value = out if isinstance(out, Value) else ctx.wrap(out, kt)
        value.shape, value.dtype = tuple(kt.shape), np.dtype(kt.dtype)
        if kt._keras_mask is None:
            value = Value(value.name, value.shape, value.dtype, None)
        elif value.mask is None and in_mask is not None:
            value = Value(value.name, value.shape, value.dtype, in_mask)
        ctx.values[id(kt)] = value


def _convert_nested(ctx: ExportContext, node: Any) -> None:
    """A model called as a layer: its own nodes, on the outer Values."""
    model = node.layer
    inputs, outputs, _, _ = graph_of(model)
    given = [ctx.value(x) for x in node.input_tensors]
    if len(given) != len(inputs):
        raise refuse(model, f"called on {len(given)} tensors, but it has {len(inputs)} inputs.")
    for inner, outer in zip(inputs, given):
        ctx.values[id(inner)] = outer
    walk(ctx, inputs, outputs, model.name)
    for inner, outer in zip(outputs, node.output_tensors):
        value = ctx.values[id(inner)]
        ctx.values[id(outer)] = Value(value.name, tuple(outer.shape), value.dtype, value.mask)


def walk(ctx: ExportContext, inputs: list, outputs: list, owner: str) -> None:
    """Convert every node between ``inputs`` and ``outputs`` (Values of inputs known)."""
    for node in ordered_nodes(inputs, outputs, owner):
        convert_node(ctx, node)


def _elem_type(dtype: Any) -> int:
    return onnx_module().helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _dims(shape: tuple, prefix: str) -> list:
    return (
        [
            f"{prefix}_dim{k}" if k else "batch" if size is None else size
            for k, size in enumerate(shape)
        ]
        if shape
        else []
    )


def build_model_proto(
    model: Any, input_signature: Any = None, opset_version: int | None = None
) -> Any:
    """The ONNX model of ``model`` (nothing written); raises ``NotExportableError``."""
    onnx = onnx_module()
    helper = onnx.helper
    registry.load_all()
    opset = int(opset_version or DEFAULT_OPSET)
    if opset < 14:
        raise ValueError(f"opset_version {opset} is too old: dendrite exports opset 14 or newer.")
    inputs, outputs, input_names, output_names = graph_of(model, input_signature)
    builder = GraphBuilder(opset)
    for name in input_names + output_names:
        builder.name(name)  # reserve the public names
    ctx = ExportContext(builder)
    graph_inputs = []
    for x, name in zip(inputs, input_names):
        dtype = np.dtype(x.dtype)
        graph_inputs.append(
            helper.make_tensor_value_info(name, _elem_type(dtype), _dims(tuple(x.shape), name))
        )
        ctx.values[id(x)] = Value(name, tuple(x.shape), dtype)
    walk(ctx, inputs, outputs, getattr(model, "name", "model"))
    graph_outputs = []
    for x, name in zip(outputs, _unique(output_names)):
        value = ctx.value(x)
        builder.nodes.append(
            helper.make_node("Identity", [value.name], [name], name=builder.name(f"{name}_out"))
        )
        dtype = np.dtype(x.dtype)
        graph_outputs.append(
            helper.make_tensor_value_info(name, _elem_type(dtype), _dims(tuple(x.shape), name))
        )
    weight_bytes = sum(len(t.raw_data) for t in builder.initializers)
    if weight_bytes >= PROTOBUF_LIMIT:
        raise NotExportableError(
            f"Cannot export model '{getattr(model, 'name', 'model')}' to ONNX: its weights "
            f"take {weight_bytes:,} bytes, above the 2 GiB a single ONNX file can hold "
            f"(external weight files are not written)."
        )
    graph = builder.graph(getattr(model, "name", "model"), graph_inputs, graph_outputs)
    proto = helper.make_model(
        graph,
        producer_name="dendrite",
        opset_imports=[helper.make_opsetid("", opset)],
    )
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9)
    onnx.checker.check_model(proto)
    return proto


def _unique(names: list[str]) -> list[str]:
    found: list[str] = []
    for name in names:
        candidate, k = name, 1
        while candidate in found:
            candidate, k = f"{name}_{k}", k + 1
        found.append(candidate)
    return found


def convert_inner_layer(ctx: ExportContext, layer: Any, value: Value) -> str:
    """Convert ``layer(value)`` (a wrapped layer, as in TimeDistributed); its output name."""
    converter = registry.CONVERTERS.get(type(layer))
    if converter is None:
        raise refuse(layer, "no ONNX converter for this layer class.")
    out_shape = tuple(layer.compute_output_shape(value.shape))
    result = converter(ctx, layer, {"inputs": value, "__out_shape__": out_shape})
    return result.name if isinstance(result, Value) else result
