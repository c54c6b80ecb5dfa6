"""``GraphBuilder``: the ONNX graph under construction, and ``Value``, one tensor in it.

A builder holds the nodes, the initializers (weights and constants) and a counter of
unique names; converters add nodes with ``op`` and constants with ``const``, and never
touch ``onnx`` themselves. ``sub()`` makes the builder of a subgraph (a ``Scan`` body)
that shares the name counter, so names stay unique across the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrite.export.errors import onnx_module


@dataclass
class Value:
    """One tensor of the ONNX graph: its name, the static shape dendrite knows (None for
    an axis that varies: the batch, and a sequence length where the model allows), its
    NumPy dtype, and the name of its Keras mask (bool, (batch, steps)) when it has one."""

    name: str
    shape: tuple
    dtype: Any = np.float32
    mask: str | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)


class GraphBuilder:
    """Nodes and initializers of one ONNX graph (or subgraph)."""

    def __init__(self, opset: int, counter: dict | None = None) -> None:
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._counter = counter if counter is not None else {}
        self._constants: dict = {}

    def sub(self) -> GraphBuilder:
        """The builder of a subgraph with the same opset and name counter."""
        return GraphBuilder(self.opset, self._counter)

    def name(self, hint: str) -> str:
        """A name unique in the model, from ``hint``."""
        hint = "".join(c if c.isalnum() or c in "_./:-" else "_" for c in hint) or "t"
        count = self._counter.get(hint, 0)
        self._counter[hint] = count + 1
        return hint if count == 0 else f"{hint}__{count}"

    def const(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """An initializer holding ``array`` (float32 unless it is an integer or bool array,
        or ``dtype`` says otherwise); small equal constants are shared."""
        numpy_helper = onnx_module().numpy_helper
        array = np.asarray(array)
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype.kind == "f":
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._constants:
                return self._constants[key]
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._constants[key] = name
        return name

    def ints(self, values: Any, hint: str = "ints") -> str:
        """An int64 1-D constant (shapes, axes, pads)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), hint)

    def op(self, op_type: str, inputs: list, hint: str | None = None, outputs: int = 1, **attrs):
        """Add one node; returns its output name (a list when ``outputs`` > 1). An input
        may be '' (an omitted optional input)."""
        helper = onnx_module().helper
        base = hint or op_type.lower()
        names = [self.name(base if k == 0 else f"{base}_out{k}") for k in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            helper.make_node(op_type, list(inputs), names, name=self.name(f"{base}_node"), **attrs)
        )
        return names[0] if outputs == 1 else names

    def graph(self, name: str, inputs: list, outputs: list) -> Any:
        """The ``GraphProto`` of this builder; ``inputs``/``outputs`` are ValueInfoProtos."""
        helper = onnx_module().helper
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)

    def reduce(self, op_type: str, x: str, axes: list, keepdims: int = 1) -> str:
        """A Reduce* node over ``axes`` (an attribute before opset 18 for all but ReduceSum,
        an input from then on)."""
        if op_type != "ReduceSum" and self.opset < 18:
            return self.op(op_type, [x], axes=[int(a) for a in axes], keepdims=keepdims)
        return self.op(op_type, [x, self.ints(axes)], keepdims=keepdims)
