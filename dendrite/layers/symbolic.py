"""Symbolic tensors for the functional API: ``KerasTensor`` and the ``Node`` that made it.

Calling a layer on a ``KerasTensor`` (from ``Input``) runs nothing on data; it records a
``Node`` (layer, inputs, call arguments, outputs) and returns new KerasTensors whose shapes
and dtypes come from running the layer once on placeholder zeros. A functional ``Model``
later replays the nodes on real Tensors.

Every KerasTensor carries ``_keras_history = (layer, node_index, tensor_index)``: the layer
that produced it, which of that layer's calls (``layer._inbound_nodes[node_index]``), and
which of that call's flattened outputs. Walking these histories back from a model's outputs
finds the graph (``walk_graph``, ``check_connected``, ``layers_by_depth``, used by
``models/functional.py``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from dendrite.core import SymbolicValue, Tensor, no_grad

# Placeholder sizes for unknown axes. Two runs with different sizes tell which output axes
# vary with the input (they are reported as None); the batch axis uses small sizes.
_BATCH_SIZES = (2, 3)
_AXIS_SIZES = (16, 24)


class KerasTensor(SymbolicValue):
    """A symbolic tensor: a shape (unknown axes None), a dtype, and the node that made it.

    Python operators (``+ - * / // % ** @``, comparisons, unary minus, ``abs``, indexing)
    and every ``keras.ops`` function record an ``OpLayer`` node, as in Keras 3; ``==`` stays
    identity (KerasTensors are graph keys), use ``keras.ops.equal`` for the element-wise
    comparison. ``_keras_mask`` is a symbolic mask when the producing layer makes one.

    Args:
        shape: the full shape, batch axis first (usually None).
        dtype: the dtype name.
        name: a label (the producing layer's name; an ``Input``'s name keys dict inputs).
        history: ``(layer, node_index, tensor_index)``; None for a bare shape spec.
    """

    def __init__(
        self,
        shape: Any,
        dtype: Any = "float32",
        name: str | None = None,
        history: tuple | None = None,
    ) -> None:
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype).name
        self.name = name
        self._keras_history = history

    _keras_mask: KerasTensor | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _apply_op(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Record ``ops.<name>(*args, **kwargs)`` as an ``OpLayer`` node (see core)."""
        from dendrite import registry  # by name: op_layer.py imports this module's users

        layer, tensors = registry.get("layer", "OpLayer").recording(name, args, kwargs)
        return layer(tensors)

    def astype(self, dtype: Any) -> KerasTensor:
        from dendrite import ops

        return ops.cast(self, dtype)

    def __add__(self, other: Any) -> Any:
        return self._apply_op("add", (self, other), {})

    def __radd__(self, other: Any) -> Any:
        return self._apply_op("add", (other, self), {})

    def __sub__(self, other: Any) -> Any:
        return self._apply_op("subtract", (self, other), {})

    def __rsub__(self, other: Any) -> Any:
        return self._apply_op("subtract", (other, self), {})

    def __mul__(self, other: Any) -> Any:
        return self._apply_op("multiply", (self, other), {})

    def __rmul__(self, other: Any) -> Any:
        return self._apply_op("multiply", (other, self), {})

    def __truediv__(self, other: Any) -> Any:
        return self._apply_op("divide", (self, other), {})

    def __rtruediv__(self, other: Any) -> Any:
        return self._apply_op("divide", (other, self), {})

    def __floordiv__(self, other: Any) -> Any:
        return self._apply_op("floor_divide", (self, other), {})

    def __rfloordiv__(self, other: Any) -> Any:
        return self._apply_op("floor_divide", (other, self), {})

    def __mod__(self, other: Any) -> Any:
        return self._apply_op("mod", (self, other), {})

    def __rmod__(self, other: Any) -> Any:
        return self._apply_op("mod", (other, self), {})

    def __pow__(self, other: Any) -> Any:
        return self._apply_op("power", (self, other), {})

    def __rpow__(self, other: Any) -> Any:
        return self._apply_op("power", (other, self), {})

    def __matmul__(self, other: Any) -> Any:
        return self._apply_op("matmul", (self, other), {})

    def __rmatmul__(self, other: Any) -> Any:
        return self._apply_op("matmul", (other, self), {})

    def __neg__(self) -> Any:
        return self._apply_op("negative", (self,), {})

    def __pos__(self) -> KerasTensor:
        return self

    def __abs__(self) -> Any:
        return self._apply_op("abs", (self,), {})

    def __lt__(self, other: Any) -> Any:
        return self._apply_op("less", (self, other), {})

    def __le__(self, other: Any) -> Any:
        return self._apply_op("less_equal", (self, other), {})

    def __gt__(self, other: Any) -> Any:
        return self._apply_op("greater", (self, other), {})

    def __ge__(self, other: Any) -> Any:
        return self._apply_op("greater_equal", (self, other), {})

    def __and__(self, other: Any) -> Any:
        return self._apply_op("logical_and", (self, other), {})

    def __or__(self, other: Any) -> Any:
        return self._apply_op("logical_or", (self, other), {})

    def __xor__(self, other: Any) -> Any:
        return self._apply_op("logical_xor", (self, other), {})

    def __invert__(self) -> Any:
        return self._apply_op("logical_not", (self,), {})

    def __getitem__(self, key: Any) -> Any:
        return self._apply_op("getitem", (self, key), {})

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return self is other

    def __bool__(self) -> bool:
        raise TypeError(
            "A symbolic KerasTensor has no value: it cannot be used as a Python bool. Build "
            "the model with keras.Model(inputs, outputs) and call it on data."
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self!r} is symbolic (from keras.Input): it has no values to convert to an "
            f"array. Use it only as the input of layers, then build a Model."
        )


class Node:
    """One call of ``layer`` in a functional graph: ``outputs = layer(inputs, *args, **kwargs)``.

    ``inputs``, ``args`` and ``kwargs`` are kept as given (KerasTensors and plain values), so
    a functional model can replay the call on real Tensors and write it into a config.
    """

    def __init__(self, layer: Any, inputs: Any, args: tuple, kwargs: dict, outputs: Any):
        self.layer = layer
        self.inputs = inputs
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.outputs = outputs

    @property
    def input_tensors(self) -> list[KerasTensor]:
        """Every KerasTensor this call consumed (in ``inputs``, ``args`` and ``kwargs``)."""
        leaves = flatten(self.inputs) + flatten(list(self.args)) + flatten(self.kwargs)
        return [x for x in leaves if isinstance(x, KerasTensor)]

    @property
    def output_tensors(self) -> list[KerasTensor]:
        return [x for x in flatten(self.outputs) if isinstance(x, KerasTensor)]

    @property
    def is_input(self) -> bool:
        """True for the node of an ``InputLayer`` (it consumes nothing)."""
        return not self.input_tensors

    def __repr__(self) -> str:
        return f"<Node of layer '{self.layer.name}'>"


def sorted_keys(mapping: dict) -> list:
    """A dict's keys in Keras' structure order: sorted (insertion order if they cannot be
    compared)."""
    try:
        return sorted(mapping)
    except TypeError:
        return list(mapping)


def flatten(structure: Any) -> list:
    """The leaves of a nested list / tuple / dict structure, in order; dicts by sorted key,
    as Keras 3 (``keras.tree``), so a model's dict outputs come out sorted by name."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in sorted_keys(structure) for leaf in flatten(structure[key])]
    return [structure]


def map_structure(fn: Any, structure: Any) -> Any:
    """``structure`` with every leaf replaced by ``fn(leaf)`` (lists, tuples, dicts kept);
    leaves are visited in ``flatten``'s order."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, item) for item in structure)
    if isinstance(structure, dict):
        mapped = {key: map_structure(fn, structure[key]) for key in sorted_keys(structure)}
        return {key: mapped[key] for key in structure}
    return fn(structure)


def pack_like(structure: Any, flat: list) -> Any:
    """Rebuild ``structure`` with its leaves taken in order from ``flat``."""
    items = iter(flat)
    return map_structure(lambda _: next(items), structure)


def _placeholder_shape(shape: tuple, run: int) -> tuple:
    return tuple(
        (_BATCH_SIZES[run] if i == 0 else _AXIS_SIZES[run]) if s is None else s
        for i, s in enumerate(shape)
    )


def _placeholder(spec: KerasTensor, run: int) -> Tensor:
    tensor = Tensor._make(np.zeros(_placeholder_shape(spec.shape, run), dtype=spec.dtype))
    if spec._keras_mask is not None:  # so mask-aware layers pass (or make) a mask
        mask_shape = _placeholder_shape(spec._keras_mask.shape, run)
        tensor._keras_mask = Tensor._make(np.ones(mask_shape, dtype=bool))
    return tensor


class _PlaceholderRun(threading.local):
    depth = 0


#: Whether this thread is running layers on placeholder zeros (``_run_on_placeholders``):
#: layers whose data arrive after building (a vocabulary read from a file's assets) then
#: give outputs of the right shape instead of refusing the zeros.
PLACEHOLDER_RUN = _PlaceholderRun()


def _run_on_placeholders(layer: Any, inputs: Any, args: tuple, kwargs: dict, run: int) -> Any:
    def substitute(x: Any) -> Any:
        return _placeholder(x, run) if isinstance(x, KerasTensor) else x

    inputs = map_structure(substitute, inputs)
    args = map_structure(substitute, tuple(args))
    kwargs = {k: map_structure(substitute, v) for k, v in kwargs.items() if k != "training"}
    # Zeros make divisions and logarithms warn; the values are never used.
    PLACEHOLDER_RUN.depth += 1
    try:
        with no_grad(), np.errstate(all="ignore"):
            outputs = layer(inputs, *args, training=False, **kwargs)
    finally:
        PLACEHOLDER_RUN.depth -= 1
    return map_structure(_spec_of, outputs)


def _spec_of(t: Any) -> KerasTensor:
    spec = KerasTensor(t.shape, t.dtype)
    mask = getattr(t, "_keras_mask", None)
    if mask is not None:
        spec._keras_mask = KerasTensor(np.shape(mask_data(mask)), "bool")
    return spec


def mask_data(mask: Any) -> Any:
    return mask.data if isinstance(mask, Tensor) else mask


def _merged(a: KerasTensor, b: KerasTensor) -> KerasTensor:
    """The spec of two placeholder runs: axes that differ are unknown (None), the mask's too."""
    spec = KerasTensor(tuple(x if x == y else None for x, y in zip(a.shape, b.shape)), a.dtype)
    if a._keras_mask is not None and b._keras_mask is not None:
        shape = zip(a._keras_mask.shape, b._keras_mask.shape)
        spec._keras_mask = KerasTensor(tuple(x if x == y else None for x, y in shape), "bool")
    return spec


def _with_mask(spec: KerasTensor, source: KerasTensor) -> KerasTensor:
    if source._keras_mask is not None:
        spec._keras_mask = source._keras_mask
    return spec


def infer_output_specs(
    layer: Any, inputs: Any, args: tuple = (), kwargs: dict | None = None
) -> Any:
    """KerasTensors (without history) for the outputs of ``layer(inputs, *args, **kwargs)``.

    ``inputs`` (and any KerasTensor in ``args``/``kwargs``) give shapes and dtypes. Small
    layers run on placeholder zeros (``placeholder_output_specs``), which gives exact dtypes
    and finds which axes vary. When a placeholder or the output would hold more than
    ``PLACEHOLDER_LIMIT`` values, the layer's own ``compute_output_shape`` answers from the
    shapes alone, so a model of a few bytes that upsamples to gigabytes costs nothing to
    build or load (hostile files; issue #12).
    """
    kwargs = kwargs or {}
    declared = _declared_output_specs(layer, inputs, args, kwargs)
    if declared is not None:
        return declared
    return placeholder_output_specs(layer, inputs, args, kwargs)


# Placeholder runs above this many values (either side of the layer) are avoided where the
# layer declares its output shape: 1 Mi values, 4 MiB in float32.
PLACEHOLDER_LIMIT = 1 << 20


def _placeholder_size(shape: tuple) -> int:
    size = 1
    for i, s in enumerate(shape):
        size *= (_BATCH_SIZES[0] if i == 0 else _AXIS_SIZES[0]) if s is None else s
    return size


def _declared_output_specs(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """Output specs from ``layer.compute_output_shape`` when placeholders would be large and
    the layer declares its shapes; None to run placeholders instead."""
    if args or any(isinstance(x, KerasTensor) for x in flatten(kwargs)):
        return None
    if getattr(type(layer).compute_output_shape, "runs_placeholders", False):
        return None
    leaves = [x for x in flatten(inputs) if isinstance(x, KerasTensor)]
    if not leaves:
        return None
    large_inputs = max(_placeholder_size(x.shape) for x in leaves) > PLACEHOLDER_LIMIT
    try:
        shapes = layer.compute_output_shape(map_structure(lambda t: t.shape, inputs))
    except Exception:
        if large_inputs:  # running it would cost the memory this path exists to save
            raise
        return None  # declared shapes that do not cover this call: run it on placeholders
    single = _is_shape(shapes)
    flat_shapes = [tuple(shapes)] if single else [tuple(s) for s in flatten_shapes(shapes)]
    large_outputs = max(_placeholder_size(s) for s in flat_shapes) > PLACEHOLDER_LIMIT
    if not (large_inputs or large_outputs):
        return None
    dtype = _declared_dtype(layer, leaves[0].dtype)
    specs = [KerasTensor(s, dtype) for s in flat_shapes]
    return specs[0] if single else specs


def flatten_shapes(shapes: Any) -> list:
    """The shapes in a nested list of shapes (a shape is a tuple of ints and Nones)."""
    if _is_shape(shapes):
        return [shapes]
    return [s for item in shapes for s in flatten_shapes(item)]


def _declared_dtype(layer: Any, input_dtype: str) -> str:
    """The output dtype when the layer is not run: the input's for layers that only move
    values (``keeps_input_dtype``), the layer's own float type otherwise."""
    if getattr(layer, "keeps_input_dtype", False) and np.dtype(input_dtype).kind != "f":
        return input_dtype
    return np.dtype(layer.dtype).name


def placeholder_output_specs(
    layer: Any, inputs: Any, args: tuple = (), kwargs: dict | None = None
) -> Any:
    """Output specs found by running the layer on zeros; when some axis is unknown it runs
    twice with different sizes for the unknown axes, and output axes that differ between
    the runs are reported as None."""
    kwargs = kwargs or {}
    symbolic = [
        x
        for x in flatten(inputs) + flatten(list(args)) + flatten(kwargs)
        if isinstance(x, KerasTensor)
    ]
    first = _run_on_placeholders(layer, inputs, args, kwargs, 0)
    unknown = any(s is None for x in symbolic for s in x.shape)
    second = _run_on_placeholders(layer, inputs, args, kwargs, 1) if unknown else first
    specs = [_merged(a, b) for a, b in zip(flatten(first), flatten(second))]
    return pack_like(first, specs)


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, (tuple, list)) and all(
        s is None or isinstance(s, (int, np.integer)) for s in shape
    )


def infer_output_shape(layer: Any, input_shape: Any) -> Any:
    """Output shape(s) of ``layer`` for ``input_shape`` (batch axis first; a list of shapes
    for several inputs). Axes given as numbers stay numbers; unknown axes stay None."""

    def to_spec(shape: Any) -> Any:
        if _is_shape(shape):
            return KerasTensor(tuple(shape), layer.dtype)
        if isinstance(shape, dict):
            return {k: to_spec(v) for k, v in shape.items()}
        return [to_spec(s) for s in shape]

    result = placeholder_output_specs(layer, to_spec(input_shape))
    return map_structure(lambda spec: spec.shape, result)


def symbolic_call(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """Record ``layer(inputs, *args, **kwargs)`` on KerasTensors; return the symbolic outputs.

    The layer is built from the input shapes, its ``input_spec`` is checked against them
    (so errors show ``None`` batch axes, as in Keras), and the output shapes and dtypes come
    from running it on placeholder zeros. KerasTensors may also appear in ``args`` and
    ``kwargs`` (``Attention()([query, value])``, ``mask=``); they become inputs of the node.
    """
    if not layer.built:
        layer._maybe_build(map_structure(lambda t: t.shape, inputs))
    if layer.input_spec is not None:
        layer._check_input_spec(inputs)
    specs = infer_output_specs(layer, inputs, args, kwargs)
    if "_inbound_nodes" not in layer.__dict__:
        layer._inbound_nodes = []
    node_index = len(layer._inbound_nodes)
    flat = flatten(specs)
    made = [
        _with_mask(
            KerasTensor(spec.shape, spec.dtype, name=layer.name, history=(layer, node_index, i)),
            spec,
        )
        for i, spec in enumerate(flat)
    ]
    outputs = pack_like(specs, made)
    layer._inbound_nodes.append(Node(layer, inputs, args, kwargs, outputs))
    return outputs


# --- a layer's place in the graph (Keras' layer.output, layer.input) -------------------------
class FirstCall:
    """``layer.output`` / ``layer.input``: that part of the layer's first call on symbolic
    inputs. A non-data descriptor, so a subclass may still assign an attribute of the same
    name (``self.output = Dense(1)``), which then shadows it."""

    def __init__(self, what: str, field: str) -> None:
        self.what, self.field = what, field

    def __get__(self, layer: Any, owner: type | None = None) -> Any:
        if layer is None:
            return self
        nodes = layer.__dict__.get("_inbound_nodes")
        if not nodes:
            raise AttributeError(
                f"The layer {layer.name} has never been called and thus has no defined {self.what}."
            )
        value = getattr(nodes[0], self.field)
        return map_structure(lambda t: t.shape, value) if self.shape else value

    shape = False


class FirstCallShape(FirstCall):
    """``layer.output_shape`` / ``layer.input_shape``: the shape(s) of that tensor."""

    shape = True


# --- the graph behind a model's outputs ------------------------------------------------------
def producer(x: KerasTensor) -> Node:
    """The node (layer call) that made ``x``."""
    layer, node_index, _ = x._keras_history
    return layer._inbound_nodes[node_index]


def walk_graph(inputs: list, outputs: list) -> tuple[list[Node], dict[int, tuple[int, Any]]]:
    """Depth-first from the outputs with an explicit stack; stops at the model's inputs.

    Returns the nodes in post-order (each after every node it consumes) and, per layer, the
    order in which the walk first met it (Keras sorts layers of equal depth by it).
    """
    input_ids = {id(x) for x in inputs}
    finished: set[int] = set()
    in_progress: set[int] = set()
    order: list[Node] = []
    layer_rank: dict[int, tuple[int, Any]] = {}

    def open_frame(tensor: KerasTensor) -> tuple | None:
        node = producer(tensor)
        if id(node) in finished:
            return None
        if id(node) in in_progress:
            raise ValueError(f"{tensor!r} from layer '{node.layer.name}' is part of a cycle.")
        in_progress.add(id(node))
        layer_rank.setdefault(id(node.layer), (len(layer_rank), node.layer))
        parents = [] if node.is_input or id(tensor) in input_ids else node.input_tensors
        return node, iter(parents)

    for output in outputs:
        frame = open_frame(output)
        stack = [frame] if frame is not None else []
        while stack:
            node, parents = stack[-1]
            for tensor in parents:
                frame = open_frame(tensor)
                if frame is not None:
                    stack.append(frame)
                    break
            else:
                stack.pop()
                in_progress.discard(id(node))
                finished.add(id(node))
                order.append(node)
    return order, layer_rank


def check_connected(order: list[Node], inputs: list, outputs: list) -> list[Node]:
    """The nodes to run, in order; a Keras-worded error when some tensor cannot be computed
    from ``inputs`` (an output depends on an Input the model was not given)."""
    computable = {id(x) for x in inputs}
    accessed: list[str] = []
    run: list[Node] = []

    def disconnected(x: KerasTensor, where: str) -> ValueError:
        source = x._keras_history[0]
        return ValueError(
            f"Graph disconnected: cannot find parent for {x!r} at {where}. It is the output "
            f"of layer '{source.name}' ({type(source).__name__}), which is not among the "
            f"model's inputs {[i.name for i in inputs]}: pass it in `inputs`. The following "
            f"previous layers were accessed without issue: {accessed}"
        )

    for node in order:
        if node.is_input:
            continue
        for x in node.input_tensors:
            if id(x) not in computable:
                raise disconnected(x, f"layer '{node.layer.name}'")
        accessed.append(node.layer.name)
        computable.update(id(x) for x in node.output_tensors)
        run.append(node)
    for x in outputs:
        if id(x) not in computable:
            raise disconnected(x, "the model's outputs")
    return run


def layers_by_depth(order: list[Node], layer_rank: dict, inputs: list) -> list[Any]:
    """Keras' layer order: by depth (longest path to an output), deepest first; a shared
    layer takes the depth of its deepest call; ties keep the order the walk met them."""
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(order):
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = depth
        layer_depth[id(node.layer)] = depth
        for x in node.input_tensors:
            parent = producer(x)
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    rank = {key: value[0] for key, value in layer_rank.items()}
    layers = {key: value[1] for key, value in layer_rank.items()}
    for x in inputs:  # an Input no output uses: depth 0, ahead of the other depth-0 layers
        layer = producer(x).layer
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            rank[id(layer)] = -1
            layers[id(layer)] = layer
    keys = sorted(layer_depth, key=lambda k: (-layer_depth[k], rank[k]))
    return [layers[k] for k in keys]
