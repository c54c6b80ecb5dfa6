"""Symbolic tensors for the functional API: ``KerasTensor`` and the ``Node`` that made it.

Calling a layer on a ``KerasTensor`` (from ``Input``) runs nothing on data; it records a
``Node`` (layer, inputs, outputs) and returns new KerasTensors whose shapes come from
``layer.compute_output_shape``. A functional ``Model`` later replays the nodes on arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor, no_grad

# Placeholder sizes for unknown axes; two different sizes tell which output axes vary.
_PLACEHOLDER_SIZES = (16, 24)


class KerasTensor:
    """A symbolic tensor: a shape (batch axis None), a dtype, and the node that made it."""

    def __init__(
        self,
        shape: tuple,
        dtype: Any = "float32",
        name: str | None = None,
        history: tuple | None = None,
    ) -> None:
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype).name
        self.name = name
        self._keras_history = history

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return id(self)


class Node:
    """One call of ``layer`` in a functional graph."""

    def __init__(self, layer: Any, inputs: Any, args: tuple, kwargs: dict, outputs: Any):
        self.layer = layer
        self.inputs = inputs
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs

    @property
    def input_tensors(self) -> list[KerasTensor]:
        return flatten(self.inputs)


def flatten(structure: Any) -> list:
    """The leaves of a nested list / tuple / dict structure, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in flatten(structure[key])]
    return [structure]


def map_structure(fn: Any, structure: Any) -> Any:
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, item) for item in structure)
    if isinstance(structure, dict):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    return fn(structure)


def _placeholder(shape: tuple, dtype: str, size: int) -> Tensor:
    concrete = tuple(
        2 if i == 0 and s is None else (size if s is None else s) for i, s in enumerate(shape)
    )
    return Tensor._make(np.zeros(concrete, dtype=dtype))


def _run_on_placeholders(layer: Any, specs: Any, size: int, args: tuple, kwargs: dict) -> Any:
    inputs = _map_specs(lambda s: _placeholder(s[0], s[1], size), specs)
    kwargs = {k: v for k, v in kwargs.items() if k != "training"}
    with no_grad():
        outputs = layer(inputs, *args, training=False, **kwargs)
    return map_structure(lambda t: (tuple(t.shape), t.dtype.name), outputs)


def _is_spec(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], tuple)


def infer_output_specs(layer: Any, specs: Any, args: tuple = (), kwargs: dict | None = None):
    """(shape, dtype) of each output for inputs of the given (shape, dtype) specs.

    Runs the layer on zeros: the batch axis is 2 and reported as None; other unknown axes
    are tried at two sizes and reported as None where the output differs.
    """
    kwargs = kwargs or {}
    first = _run_on_placeholders(layer, specs, _PLACEHOLDER_SIZES[0], args, kwargs)
    unknown = any(s is None for shape, _ in _spec_leaves(specs) for s in shape[1:])
    second = (
        _run_on_placeholders(layer, specs, _PLACEHOLDER_SIZES[1], args, kwargs)
        if (unknown)
        else first
    )

    def merge(a: Any, b: Any) -> Any:
        if _is_spec(a):
            shape = (
                tuple(None if i == 0 or x != y else x for i, (x, y) in enumerate(zip(a[0], b[0])))
                if len(a[0])
                else ()
            )
            return shape, a[1]
        if isinstance(a, dict):
            return {k: merge(a[k], b[k]) for k in a}
        return type(a)(merge(x, y) for x, y in zip(a, b))

    return merge(first, second)


def _spec_leaves(specs: Any) -> list:
    if _is_spec(specs):
        return [specs]
    if isinstance(specs, dict):
        return [leaf for v in specs.values() for leaf in _spec_leaves(v)]
    return [leaf for v in specs for leaf in _spec_leaves(v)]


def infer_output_shape(layer: Any, input_shape: Any) -> Any:
    """Output shape(s) of ``layer`` for ``input_shape`` (batch axis first)."""

    def to_spec(shape: Any) -> Any:
        if isinstance(shape, (tuple, list)) and all(
            s is None or isinstance(s, (int, np.integer)) for s in shape
        ):
            return (tuple(shape), layer.dtype)
        if isinstance(shape, dict):
            return {k: to_spec(v) for k, v in shape.items()}
        return [to_spec(s) for s in shape]

    result = infer_output_specs(layer, to_spec(input_shape))
    return _strip_dtype(result)


def _strip_dtype(specs: Any) -> Any:
    if _is_spec(specs):
        return specs[0]
    if isinstance(specs, dict):
        return {k: _strip_dtype(v) for k, v in specs.items()}
    return [_strip_dtype(s) for s in specs]


def symbolic_call(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """Record ``layer(inputs)`` on KerasTensors and return the symbolic outputs."""
    specs = map_structure(lambda t: (t.shape, t.dtype), inputs)
    if not layer.built:
        layer._maybe_build(map_structure(lambda t: t.shape, inputs))
    out_specs = infer_output_specs(layer, specs, args, kwargs)
    node_index = len(getattr(layer, "_inbound_nodes", []))
    counter = iter(range(10**9))

    def make(spec: Any) -> KerasTensor:
        index = next(counter)
        return KerasTensor(spec[0], spec[1], name=layer.name, history=(layer, node_index, index))

    outputs = _map_specs(make, out_specs)
    node = Node(layer, inputs, args, kwargs, outputs)
    if "_inbound_nodes" not in layer.__dict__:
        layer._inbound_nodes = []
    layer._inbound_nodes.append(node)
    return outputs


def _map_specs(fn: Any, specs: Any) -> Any:
    if _is_spec(specs):
        return fn(specs)
    if isinstance(specs, dict):
        return {k: _map_specs(fn, v) for k, v in specs.items()}
    return [_map_specs(fn, s) for s in specs]
