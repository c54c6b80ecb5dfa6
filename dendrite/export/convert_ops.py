"""Converters of recorded ops (``OpLayer``: ``keras.ops`` on symbolic tensors) and of
``Lambda`` layers.

An OpLayer is ``y = op(*args, **kwargs)`` with its tensors among the arguments; each op
below emits the same maths as its dendrite definition (``dendrite/ops``): elementwise
arithmetic with NumPy broadcasting (add, subtract, multiply, divide, power, maximum,
minimum, negative, abs, square, sqrt, rsqrt = 1/sqrt, exp, log, ...), comparisons and
logical ops (bool results), reductions over axes (sum, mean, max, min, var, std, logsumexp),
matmul, reshape / transpose / expand_dims / squeeze / concatenate / stack / getitem with
slices and integers, cast, clip, where, and the activations. A ``Lambda`` is traced: its
function runs on a KerasTensor, and the ops it records are converted the same way; a
function that is not made of dendrite ops is refused with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export import activations
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import lambda_layer, op_layer

_BINARY = {
    "add": "Add",
    "subtract": "Sub",
    "multiply": "Mul",
    "divide": "Div",
    "true_divide": "Div",
    "power": "Pow",
    "maximum": "Max",
    "minimum": "Min",
    "matmul": "MatMul",
    "mod": "Mod",
    "equal": "Equal",
    "greater": "Greater",
    "greater_equal": "GreaterOrEqual",
    "less": "Less",
    "less_equal": "LessOrEqual",
    "logical_and": "And",
    "logical_or": "Or",
    "logical_xor": "Xor",
}
_UNARY = {
    "negative": "Neg",
    "abs": "Abs",
    "absolute": "Abs",
    "sqrt": "Sqrt",
    "exp": "Exp",
    "log": "Log",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "relu": "Relu",
    "floor": "Floor",
    "ceil": "Ceil",
    "sign": "Sign",
    "cos": "Cos",
    "sin": "Sin",
    "erf": "Erf",
    "reciprocal": "Reciprocal",
    "logical_not": "Not",
    "isnan": "IsNaN",
    "round": "Round",
    "softplus": "Softplus",
    "softsign": "Softsign",
}
_REDUCE = {
    "sum": "ReduceSum",
    "mean": "ReduceMean",
    "max": "ReduceMax",
    "amax": "ReduceMax",
    "min": "ReduceMin",
    "amin": "ReduceMin",
    "logsumexp": "ReduceLogSumExp",
}
_ONNX_TYPE = {"float32": 1, "float64": 1, "int32": 6, "int64": 7, "bool": 9, "uint8": 2, "int8": 3}


def _operand(b: Any, v: Any, like: Value | None) -> str:
    if isinstance(v, Value):
        return v.name
    dtype = np.dtype(like.dtype) if like is not None else np.float32
    array = np.asarray(getattr(v, "data", v))
    if dtype.kind == "f" or array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif dtype.kind == "b":
        array = array.astype(bool)
    return b.const(array, "operand", dtype=None if dtype.kind != "b" else bool)


def _axes(axis: Any, rank: int) -> list[int]:
    if axis is None:
        return list(range(rank))
    return [int(a) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]


def _getitem(b: Any, x: Value, key: Any, layer: Any) -> str:
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = key.index(Ellipsis)
        fill = x.rank - (len(key) - 1 - sum(k is None for k in key))
        key = key[:at] + (slice(None),) * fill + key[at + 1 :]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = 0
    out_axis = 0
    for k in key:
        if k is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(k, slice):
            if k != slice(None):
                step = 1 if k.step is None else int(k.step)
                big = np.iinfo(np.int64)
                start = k.start if k.start is not None else (0 if step > 0 else -1)
                end = k.stop if k.stop is not None else (big.max if step > 0 else big.min)
                starts.append(int(start)), ends.append(int(end)), axes.append(axis)
                steps.append(step)
            out_axis += 1
        elif isinstance(k, (int, np.integer)):
            k = int(k)
            starts.append(k), ends.append(k + 1 if k != -1 else np.iinfo(np.int64).max)
            axes.append(axis), steps.append(1)
            squeeze.append(axis)
        else:
            raise refuse(layer, f"indexing with {type(k).__name__} has no ONNX form here.")
        axis += 1
    y = x.name
    if axes:
        y = b.op("Slice", [y, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        y = b.op("Squeeze", [y, b.ints(squeeze)])
    if unsqueeze:
        y = b.op("Unsqueeze", [y, b.ints(unsqueeze)])
    return y


def emit_op(ctx: Any, layer: Any, op: str, args: list, kwargs: dict) -> str:
    """The ONNX nodes of ``op(*args, **kwargs)`` (tensors as Values)."""
    b = ctx.b
    tensors = [a for a in args if isinstance(a, Value)]
    like = tensors[0] if tensors else None
    if op in _BINARY and len(args) == 2:
        a, c = (_operand(b, v, like) for v in args)
        return b.op(_BINARY[op], [a, c])
    if op == "not_equal":
        a, c = (_operand(b, v, like) for v in args)
        return b.op("Not", [b.op("Equal", [a, c])])
    if op == "floor_divide":
        a, c = (_operand(b, v, like) for v in args)
        return b.op("Floor", [b.op("Div", [a, c])])
    x = args[0] if args else kwargs.get("x")
    if op in _UNARY:
        return b.op(_UNARY[op], [x.name])
    if op in activations.EMITTERS and not kwargs and len(args) == 1:
        return activations.EMITTERS[op](b, x.name)
    if op == "softmax" or op == "log_softmax":
        axis = args[1] if len(args) > 1 else kwargs.get("axis", -1)
        return b.op("Softmax" if op == "softmax" else "LogSoftmax", [x.name], axis=int(axis))
    if op == "square":
        return b.op("Mul", [x.name, x.name])
    if op == "rsqrt":
        return b.op("Reciprocal", [b.op("Sqrt", [x.name])])
    if op in ("expm1", "log1p"):
        one = b.const(np.float32(1.0))
        if op == "expm1":
            return b.op("Sub", [b.op("Exp", [x.name]), one])
        return b.op("Log", [b.op("Add", [x.name, one])])
    if op in _REDUCE or op in ("var", "std"):
        axis = args[1] if len(args) > 1 else kwargs.get("axis")
        keep = int(bool(args[2] if len(args) > 2 else kwargs.get("keepdims", False)))
        axes = _axes(axis, x.rank)
        if op in ("var", "std"):
            mean = b.reduce("ReduceMean", x.name, axes, 1)
            d = b.op("Sub", [x.name, mean])
            y = b.reduce("ReduceMean", b.op("Mul", [d, d]), axes, keep)
            return b.op("Sqrt", [y]) if op == "std" else y
        return b.reduce(_REDUCE[op], x.name, axes, keep)
    if op == "reshape":
        shape = args[1] if len(args) > 1 else kwargs.get("newshape", kwargs.get("new_shape"))
        shape = [-1 if s is None else int(s) for s in shape]
        if x.shape and x.shape[0] is None and len(shape) > 1 and shape[0] not in (-1,):
            shape[0] = 0
        return b.op("Reshape", [x.name, b.ints(shape)], allowzero=0)
    if op == "transpose":
        axes = args[1] if len(args) > 1 else kwargs.get("axes")
        perm = list(range(x.rank))[::-1] if axes is None else [int(a) for a in axes]
        return b.op("Transpose", [x.name], perm=perm)
    if op == "expand_dims":
        axis = args[1] if len(args) > 1 else kwargs["axis"]
        return b.op("Unsqueeze", [x.name, b.ints(_axes(axis, x.rank))])
    if op == "squeeze":
        axis = args[1] if len(args) > 1 else kwargs.get("axis")
        if axis is None:
            return b.op("Squeeze", [x.name])
        return b.op("Squeeze", [x.name, b.ints(_axes(axis, x.rank))])
    if op in ("concatenate", "stack"):
        items = args[0]
        axis = int(args[1] if len(args) > 1 else kwargs.get("axis", 0))
        names = [_operand(b, v, like or items[0]) for v in items]
        if op == "stack":
            names = [b.op("Unsqueeze", [n, b.ints([axis])]) for n in names]
        return b.op("Concat", names, axis=axis)
    if op == "getitem":
        return _getitem(b, x, args[1], layer)
    if op == "cast":
        dtype = np.dtype(args[1] if len(args) > 1 else kwargs["dtype"]).name
        return b.op("Cast", [x.name], to=_ONNX_TYPE[dtype])
    if op == "clip":
        low = args[1] if len(args) > 1 else kwargs["x_min"]
        high = args[2] if len(args) > 2 else kwargs["x_max"]
        return b.op("Clip", [x.name, b.const(np.float32(low)), b.const(np.float32(high))])
    if op == "where":
        cond, a, c = args[:3]
        like = a if isinstance(a, Value) else c
        cond_name = (
            cond.name if isinstance(cond, Value) else b.const(np.asarray(cond, bool), dtype=bool)
        )
        return b.op("Where", [cond_name, _operand(b, a, like), _operand(b, c, like)])
    if op in ("leaky_relu", "elu"):
        param = (
            args[1]
            if len(args) > 1
            else kwargs.get(
                "negative_slope" if op == "leaky_relu" else "alpha",
                0.2 if op == "leaky_relu" else 1.0,
            )
        )
        return b.op("LeakyRelu" if op == "leaky_relu" else "Elu", [x.name], alpha=float(param))
    if op == "gelu":
        approximate = args[1] if len(args) > 1 else kwargs.get("approximate", True)
        return (activations._gelu if approximate else activations._gelu_exact)(b, x.name)
    raise refuse(layer, f"the op '{op}' (with these arguments) has no ONNX converter.")


@converts(op_layer.OpLayer)
def recorded_op(ctx: Any, layer: Any, args: dict) -> Any:
    """y = op(*args, **kwargs), the tensors put back in their places."""
    inputs = args["inputs"]
    tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    decoded_args = op_layer._decode(layer.arguments["args"], tensors)
    decoded_kwargs = {k: op_layer._decode(v, tensors) for k, v in layer.arguments["kwargs"].items()}
    return emit_op(ctx, layer, layer.op, decoded_args, decoded_kwargs)


@converts(lambda_layer.Lambda)
def lambda_call(ctx: Any, layer: Any, args: dict) -> Any:
    """y = function(x), traced on a KerasTensor into recorded ops."""
    from dendrite.export.builder import walk
    from dendrite.layers.input_layer import Input
    from dendrite.layers.symbolic import KerasTensor, flatten

    x = args["inputs"]
    if not isinstance(x, Value):
        raise refuse(layer, "only a Lambda on one tensor exports.")
    placeholder = Input(batch_shape=x.shape, dtype=np.dtype(x.dtype).name)
    try:
        result = layer.function(placeholder, **layer.arguments)
    except Exception as error:
        raise refuse(
            layer,
            f"its function could not be traced on a symbolic tensor "
            f"({type(error).__name__}: {error}).",
        ) from error
    outputs = flatten(result)
    if not outputs or not all(isinstance(o, KerasTensor) for o in outputs):
        raise refuse(layer, "its function does not return traced tensors.")
    if any(o is placeholder for o in outputs):
        return Value(ctx.b.op("Identity", [x.name]), x.shape, x.dtype, x.mask)
    ctx.values[id(placeholder)] = Value(x.name, x.shape, x.dtype, None)
    walk(ctx, [placeholder], outputs, layer.name)
    produced = [ctx.values[id(o)] for o in outputs]
    return produced if len(produced) > 1 else produced[0]
