"""``OpLayer``: one call of a public op on symbolic tensors, as a node of a functional graph.

``keras.ops.mean(x, axis=-1)``, ``x + 1`` or ``x[:, 0]`` on a ``KerasTensor`` inside a
functional model becomes ``OpLayer(op="mean", arguments=...)`` called on the symbolic
tensors among the arguments. Its forward pass is the op itself,
``y = op(*args, **kwargs)`` with the tensors put back in their places, so gradients are the
op's own. The non-tensor arguments are stored in the layer's config as JSON (slices,
Ellipsis, tuples and arrays in tagged form), so the model saves and loads like any other;
only names in ``dendrite.ops.__all__`` can be named by a file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import SymbolicValue, Tensor
from dendrite.layers.base import Layer, unique_name
from dendrite.layers.registry import register_layer


def _encode(value: Any, tensors: list) -> Any:
    """JSON form of an op argument; symbolic tensors are collected in ``tensors`` and
    stand as ``{"__tensor__": index}``."""
    if isinstance(value, SymbolicValue):
        tensors.append(value)
        return {"__tensor__": len(tensors) - 1}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, slice):
        return {"__slice__": [_encode(v, tensors) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, tensors) for k, v in value.items()}}
    if isinstance(value, (Tensor, np.ndarray)):
        array = value.data if isinstance(value, Tensor) else value
        return {"__array__": array.tolist(), "dtype": array.dtype.name}
    if isinstance(value, (np.dtype, type)) and np.dtype(value).kind in "biuf":
        return np.dtype(value).name
    raise ValueError(
        f"An op on symbolic tensors was given {value!r} ({type(value).__name__}); only "
        f"tensors, numbers, strings, None, slices, tuples, lists, dicts and arrays can be "
        f"recorded in a functional model."
    )


def _decode(value: Any, tensors: list) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__slice__" in value:
        return slice(*(_decode(v, tensors) for v in value["__slice__"]))
    if "__ellipsis__" in value:
        return Ellipsis
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}
    if "__array__" in value:
        return np.asarray(value["__array__"], dtype=np.dtype(value["dtype"]))
    raise ValueError(f"OpLayer: cannot read the argument {value!r}.")


def _count_tensors(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_tensors(v) for v in value)
    if isinstance(value, dict):
        if "__tensor__" in value:
            return 1
        return sum(_count_tensors(v) for v in value.values())
    return 0


@register_layer
class OpLayer(Layer):
    """A recorded call of ``keras.ops.<op>`` (or a Python operator) on symbolic tensors.

    Args:
        op: the name of a public op (``dendrite.ops.__all__``).
        arguments: ``{"args": [...], "kwargs": {...}}`` in the JSON form of
            ``_encode``, tensors standing as ``{"__tensor__": i}`` (the i-th input).
    """

    example = {
        "kwargs": {
            "op": "multiply",
            "arguments": {"args": [{"__tensor__": 0}, {"__tensor__": 1}], "kwargs": {}},
        },
        "input_shape": [(3, 4), (3, 4)],
    }

    def __init__(self, op: str, arguments: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if op not in ops.__all__:
            raise ValueError(
                f"OpLayer: {op!r} is not a dendrite op (keras.ops); known ops are the names "
                f"in dendrite.ops.__all__."
            )
        self.op = op
        self.arguments = arguments or {"args": [], "kwargs": {}}
        if not isinstance(self.arguments, dict) or set(self.arguments) - {"args", "kwargs"}:
            raise ValueError(
                f"OpLayer '{self.name}': arguments must be a dict with 'args' and 'kwargs'."
            )
        self.supports_masking = False
        self.autocast = False
        self._n_inputs = _count_tensors(self.arguments)

    @classmethod
    def recording(cls, op: str, args: tuple, kwargs: dict) -> tuple[OpLayer, list]:
        """The layer for ``op(*args, **kwargs)`` and the symbolic tensors it consumes."""
        tensors: list = []
        arguments = {"args": _encode(list(args), tensors), "kwargs": {}}
        arguments["kwargs"] = {k: _encode(v, tensors) for k, v in kwargs.items()}
        return cls(op, arguments, name=unique_name(op)), tensors

    def _convert(self, inputs: Any) -> Any:
        return inputs  # the op converts its own arguments

    def call(self, inputs: Any) -> Any:
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(tensors) != self._n_inputs:
            raise ValueError(
                f"OpLayer '{self.name}' ({self.op}) expects {self._n_inputs} tensors, got "
                f"{len(tensors)}."
            )
        args = _decode(self.arguments["args"], tensors)
        kwargs = {k: _decode(v, tensors) for k, v in self.arguments["kwargs"].items()}
        try:
            return getattr(ops, self.op).__wrapped__(*args, **kwargs)
        except ValueError as error:
            raise ValueError(f"Layer '{self.name}' (ops.{self.op}): {error}") from None

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("dtype", None)
        return {**config, "op": self.op, "arguments": self.arguments}
