"""The op contract table: how to exercise every differentiable op in ``dendrite.ops``.

Each ``OpCase`` (``dendrite.testing.op_case``) names the registered primitive it covers
(``op``), a function of Tensors in dendrite, optionally the same maths in PyTorch and the
expected forward value in NumPy, and the input shapes to try (broadcasting and size-1 axes
included). The tests run every case through ``gradcheck`` in float64 and, when PyTorch is
installed, compare values and gradients with it in float32. The fused primitives (dense,
convolution, pooling, normalisation, cross-entropy, recurrences) have their cases in
``dendrite.testing.fused_cases``, each with a NumPy reference of its unfused maths.

Every registered primitive must have a case here, or an entry in ``EXEMPT`` naming the test
that covers it instead (``tests/test_ops_gradcheck.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite import ops
from dendrite.ops.creation import Cast
from dendrite.testing._torch_refs import t as _t
from dendrite.testing._torch_refs import torch_pad, torch_reduce, torch_std, torch_var
from dendrite.testing.fused_cases import FUSED_CASES
from dendrite.testing.op_case import OpCase, sample

UNARY_SHAPES = ((), (1,), (5,), (3, 1), (2, 3, 4))
BINARY_SHAPES = (((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((1,), (1,)))
REDUCE_SHAPES = ((4,), (3, 5), (2, 1, 3))


def _unary(
    op: str, fn: Callable, torch: Callable | None, domain: str = "real", name: str = ""
) -> OpCase:
    return OpCase(op, fn, tuple((s,) for s in UNARY_SHAPES), torch, "unary", domain, name)


def _binary(op: str, fn: Callable, torch: Callable | None, domain: str = "real") -> OpCase:
    return OpCase(op, fn, BINARY_SHAPES, torch, "binary", domain)


def _reduce(op: str, fn: Callable, torch: Callable | None, domain: str = "real", name: str = ""):
    return OpCase(op, fn, tuple((s,) for s in REDUCE_SHAPES), torch, "reduce", domain, name)


def _softmax_axis(axis: Any) -> int:
    """The softmax family takes one axis in these cases: the last of those drawn."""
    if axis is None:
        return -1
    return axis if isinstance(axis, int) else axis[-1]


_CONDITION = np.array([[True, False, True, True], [False, False, True, False], [True] * 4])

_PRIMITIVE_CASES: tuple[OpCase, ...] = (
    # --- arithmetic ---------------------------------------------------------------------------
    _binary("add", ops.add, _t("add")),
    _binary("subtract", ops.subtract, _t("sub")),
    _binary("multiply", ops.multiply, _t("mul")),
    _binary("divide", ops.divide, _t("div"), domain="nonzero"),
    _binary("power", ops.power, _t("pow"), domain="positive"),
    _binary("maximum", ops.maximum, _t("maximum")),
    _binary("minimum", ops.minimum, _t("minimum")),
    # --- element-wise -------------------------------------------------------------------------
    _unary("negative", ops.negative, _t("neg")),
    _unary("exp", ops.exp, _t("exp")),
    _unary("expm1", ops.expm1, _t("expm1")),
    _unary("log", ops.log, _t("log"), "positive"),
    _unary("log1p", ops.log1p, _t("log1p"), "positive"),
    _unary("sqrt", ops.sqrt, _t("sqrt"), "positive"),
    _unary("divide", ops.rsqrt, _t("rsqrt"), "positive", name="rsqrt"),
    _unary("divide", ops.reciprocal, _t("reciprocal"), "nonzero", name="reciprocal"),
    _unary("square", ops.square, _t("square")),
    _unary("abs", ops.abs, _t("abs"), "nonzero"),
    _unary("tanh", ops.tanh, _t("tanh")),
    _unary("sin", ops.sin, _t("sin")),
    _unary("cos", ops.cos, _t("cos")),
    _unary("erf", ops.erf, _t("erf"), "wide"),
    _unary("clip", lambda x: ops.clip(x, -0.5, 0.7), lambda x: _t("clamp")(x, -0.5, 0.7)),
    _unary(
        "clip",
        lambda x: ops.clip(x, None, 0.3),
        lambda x: _t("clamp")(x, None, 0.3),
        name="clip_max",
    ),
    # --- keras3 gap: element-wise (unary_more.py, binary_more.py) -----------------------------
    _unary("arcsin", ops.arcsin, _t("asin"), "unit"),
    _unary("arccos", ops.arccos, _t("acos"), "unit"),
    _unary("arctan", ops.arctan, _t("atan")),
    _unary("arcsinh", ops.arcsinh, _t("asinh")),
    OpCase(
        "arccosh",
        lambda x: ops.arccosh(x * x + 1.5),
        tuple((s,) for s in UNARY_SHAPES),
        lambda x: _t("acosh")(x * x + 1.5),
        "unary",
    ),
    _unary("cbrt", ops.cbrt, None, "nonzero"),
    _unary("erfc", ops.erfc, _t("erfc"), "wide"),
    _unary("erfinv", ops.erfinv, _t("erfinv"), "unit"),
    _binary("arctan2", ops.arctan2, _t("atan2"), domain="nonzero"),
    _binary("hypot", ops.hypot, _t("hypot"), domain="nonzero"),
    # --- keras3 gap: scatter and matrices (scatter.py, linalg_decomp.py) ----------------------
    OpCase(
        "scatter",
        lambda v: ops.scatter(np.array([[0, 1], [2, 0], [0, 1]]), v, (3, 2)),
        (((3,),),),
        name="scatter",
    ),
    OpCase(
        "det",
        lambda x: ops.det(x + 3 * np.eye(3, dtype=np.float32)),
        (((3, 3),), ((2, 3, 3),)),
        name="det",
    ),
    OpCase(
        "solve",
        lambda a, b: ops.solve(a + 3 * np.eye(3, dtype=np.float32), b),
        (((3, 3), (3, 2)), ((2, 3, 3), (2, 3)), ((3, 3), (3,))),
        name="solve",
    ),
    OpCase(
        "solve",
        lambda x: ops.inv(x + 3 * np.eye(3, dtype=np.float32)),
        (((3, 3),), ((2, 3, 3),)),
        name="inv",
    ),
    OpCase(
        "cholesky",
        lambda x: ops.cholesky(ops.matmul(x, ops.transpose(x)) + np.eye(3, dtype=np.float32)),
        (((3, 3),),),
        name="cholesky",
    ),
    # --- activations --------------------------------------------------------------------------
    _unary("relu", ops.relu, _t("relu"), "nonzero"),
    _unary("relu6", ops.relu6, _t("nn.functional.relu6"), "wide"),
    _unary(
        "leaky_relu",
        ops.leaky_relu,
        lambda x: _t("nn.functional.leaky_relu")(x, 0.2),
        "nonzero",
    ),
    _unary("elu", lambda x: ops.elu(x, alpha=1.5), lambda x: _t("nn.functional.elu")(x, 1.5)),
    _unary("elu", ops.selu, _t("nn.functional.selu"), name="selu"),
    _unary("gelu", ops.gelu, lambda x: _t("nn.functional.gelu")(x, approximate="tanh")),
    _unary(
        "gelu",
        lambda x: ops.gelu(x, approximate=False),
        _t("nn.functional.gelu"),
        "wide",
        name="gelu_exact",
    ),
    _unary("silu", ops.silu, _t("nn.functional.silu"), "wide"),
    _unary("sigmoid", ops.sigmoid, _t("sigmoid"), "wide"),
    _unary("relu6", ops.hard_sigmoid, _t("nn.functional.hardsigmoid"), "wide", "hard_sigmoid"),
    _unary("relu6", ops.hard_silu, _t("nn.functional.hardswish"), "wide", "hard_silu"),
    _unary("softplus", ops.softplus, _t("nn.functional.softplus"), "wide"),
    _unary("softplus", ops.log_sigmoid, _t("nn.functional.logsigmoid"), "wide", "log_sigmoid"),
    _unary("softsign", ops.softsign, _t("nn.functional.softsign"), "wide"),
    # --- reductions and the softmax family -----------------------------------------------------
    _reduce("sum", ops.sum, torch_reduce("sum")),
    _reduce("mean", ops.mean, torch_reduce("mean")),
    _reduce("max", ops.max, torch_reduce("amax")),
    _reduce("min", ops.min, torch_reduce("amin")),
    _reduce("logsumexp", ops.logsumexp, torch_reduce("logsumexp"), "wide"),
    _reduce("mean", ops.var, torch_var, name="var"),
    _reduce("std", ops.std, torch_std),
    _reduce("prod", ops.prod, None, "nonzero"),
    OpCase(
        "prod",
        lambda x: ops.prod(x, axis=1),
        (((3, 4),),),
        lambda x: _t("prod")(x, dim=1),
        reference=lambda x: np.prod(x, axis=1),
        name="prod_axis",
    ),
    OpCase(
        "cumsum",
        lambda x: ops.cumsum(x, axis=1),
        (((3, 4),), ((2, 1, 3),)),
        lambda x: _t("cumsum")(x, dim=1),
        reference=lambda x: np.cumsum(x, axis=1),
    ),
    OpCase(
        "cumprod",
        lambda x: ops.cumprod(x, axis=-1),
        (((3, 4),), ((5,),)),
        lambda x: _t("cumprod")(x, dim=-1),
        reference=lambda x: np.cumprod(x, axis=-1),
    ),
    OpCase(
        "einsum",
        lambda a, b: ops.einsum("bij,bjk->bik", a, b),
        (((2, 3, 4), (2, 4, 5)), ((1, 2, 2), (1, 2, 1))),
        lambda a, b: _t("einsum")("bij,bjk->bik", a, b),
        reference=lambda a, b: np.einsum("bij,bjk->bik", a, b),
    ),
    OpCase(
        "einsum",
        lambda a: ops.einsum("ij->j", a),
        (((3, 4),),),
        lambda a: _t("einsum")("ij->j", a),
        reference=lambda a: a.sum(0),
        name="einsum_sum",
    ),
    _reduce(
        "softmax",
        lambda x, axis, keepdims: ops.softmax(x, axis=_softmax_axis(axis)),
        lambda x, axis, keepdims: _t("softmax")(x, dim=_softmax_axis(axis)),
        "wide",
    ),
    _reduce(
        "log_softmax",
        lambda x, axis, keepdims: ops.log_softmax(x, axis=_softmax_axis(axis)),
        lambda x, axis, keepdims: _t("log_softmax")(x, dim=_softmax_axis(axis)),
        "wide",
    ),
    OpCase(
        "softmax",
        lambda x: ops.softmax(x, axis=(0, 2)),
        (((2, 3, 4),), ((1, 2, 1),)),
        lambda x: _t("exp")(x - _t("logsumexp")(x, dim=(0, 2), keepdim=True)),
        name="softmax_two_axes",
    ),
    # --- linear algebra ------------------------------------------------------------------------
    OpCase(
        "matmul",
        ops.matmul,
        (
            ((3, 4), (4, 2)),
            ((4,), (4, 2)),
            ((3, 4), (4,)),
            ((4,), (4,)),
            ((2, 3, 4), (4, 5)),
            ((2, 1, 3, 4), (5, 4, 2)),
            ((1, 1), (1, 1)),
        ),
        _t("matmul"),
    ),
    OpCase(
        "matmul",
        ops.tensordot,
        (((2, 3, 4), (3, 4, 5)), ((3, 1), (3, 1))),
        lambda a, b: _t("tensordot")(a, b, dims=2),
        name="tensordot",
    ),
    OpCase(
        "matmul",
        lambda a, b: ops.tensordot(a, b, axes=([0, 2], [2, 0])),
        (((4, 3, 2), (2, 5, 4)),),
        lambda a, b: _t("tensordot")(a, b, dims=([0, 2], [2, 0])),
        name="tensordot_axes",
    ),
    # --- movement ------------------------------------------------------------------------------
    OpCase(
        "reshape",
        lambda x: ops.reshape(x, (-1, 2)),
        (((3, 4),), ((2, 1, 3),)),
        lambda x: x.reshape(-1, 2),
    ),
    OpCase(
        "reshape",
        lambda x: ops.expand_dims(x, (0, -1)),
        (((3, 2),),),
        lambda x: x[None, ..., None],
        name="expand_dims",
    ),
    OpCase(
        "reshape",
        lambda x: ops.squeeze(x),
        (((3, 1, 2, 1),), ((1,),)),
        lambda x: x.squeeze(),
        name="squeeze",
    ),
    OpCase("reshape", ops.ravel, (((2, 3, 2),),), lambda x: x.reshape(-1), name="ravel"),
    OpCase(
        "transpose",
        lambda x: ops.transpose(x, (1, 2, 0)),
        (((2, 3, 4),), ((1, 3, 1),)),
        lambda x: x.permute(1, 2, 0),
    ),
    OpCase(
        "transpose",
        lambda x: ops.moveaxis(x, 0, -1),
        (((2, 3, 4),),),
        lambda x: _t("movedim")(x, 0, -1),
        name="moveaxis",
    ),
    OpCase(
        "broadcast_to",
        lambda x: ops.broadcast_to(x, (2, 3, 4)),
        (((3, 1),), ((4,),), ((1, 1, 1),), ((),)),
        lambda x: x.broadcast_to((2, 3, 4)),
    ),
    OpCase(
        "broadcast_to",
        lambda x: ops.tile(x, (2, 1, 3)),
        (((3, 2),), ((1,),)),
        lambda x: _t("tile")(x, (2, 1, 3)),
        name="tile",
    ),
    # --- indexing ------------------------------------------------------------------------------
    OpCase(
        "getitem",
        lambda x: x[1:, ::2],
        (((3, 5),), ((2, 1, 4),)),
        lambda x: x[1:, ::2],
    ),
    OpCase(
        "getitem",
        lambda x: x[np.array([0, 2, 0, 1])],
        (((3, 4),),),
        lambda x: x[_t("tensor")([0, 2, 0, 1])],
        name="getitem_repeated",
    ),
    OpCase(
        "getitem",
        lambda x: x[x.data > 0],
        (((3, 4),),),
        lambda x: x[x > 0],
        name="getitem_mask",
    ),
    OpCase(
        "getitem",
        lambda x: ops.take(x, np.array([[2, 0], [2, 2]]), axis=1),
        (((3, 4),), ((1, 3, 2),)),
        lambda x: x[:, _t("tensor")([[2, 0], [2, 2]])],
        name="take",
    ),
    OpCase(
        "getitem",
        lambda x: ops.take(x, np.array([5, 0, 5])),
        (((2, 3),),),
        lambda x: x.reshape(-1)[[5, 0, 5]],
        name="take_flat",
    ),
    OpCase(
        "getitem",
        lambda x: ops.take_along_axis(x, np.array([[1], [0], [3]]), axis=1),
        (((3, 4),),),
        lambda x: _t("take_along_dim")(x, _t("tensor")([[1], [0], [3]]), dim=1),
        name="take_along_axis",
    ),
    OpCase(
        "getitem",
        lambda x: ops.repeat(x, 2, axis=0),
        (((3, 2),),),
        lambda x: _t("repeat_interleave")(x, 2, dim=0),
        name="repeat",
    ),
    OpCase(
        "getitem",
        lambda x: (lambda p: p[0] + 2 * p[1] - p[2])(ops.split(x, 3, axis=1)),
        (((2, 6),), ((1, 3, 1),)),
        lambda x: (lambda p: p[0] + 2 * p[1] - p[2])(_t("chunk")(x, 3, dim=1)),
        name="split",
    ),
    # --- joining -------------------------------------------------------------------------------
    OpCase(
        "concatenate",
        lambda *xs: ops.concatenate(xs, axis=1),
        (((2, 3), (2, 1), (2, 2)), ((1, 1), (1, 4))),
        lambda *xs: _t("cat")(xs, dim=1),
    ),
    OpCase(
        "stack",
        lambda *xs: ops.stack(xs, axis=1),
        (((2, 3), (2, 3), (2, 3)), ((1,), (1,))),
        lambda *xs: _t("stack")(xs, dim=1),
    ),
    OpCase(
        "pad",
        lambda x: ops.pad(x, ((1, 0), (2, 3)), constant_values=1.5),
        (((2, 3),), ((1, 1),)),
        lambda x: _t("nn.functional.pad")(x, (2, 3, 1, 0), value=1.5),
    ),
    OpCase(
        "pad",
        lambda x: ops.pad(x, 2, mode="reflect"),
        (((3, 4),),),
        lambda x: torch_pad(x, (2, 2, 2, 2), "reflect"),
        name="pad_reflect",
    ),
    OpCase(
        "pad",
        lambda x: ops.pad(x, ((1, 2),), mode="edge"),
        (((3, 2),),),
        lambda x: torch_pad(x, (1, 2, 1, 2), "replicate"),
        name="pad_edge",
    ),
    OpCase("pad", lambda x: ops.pad(x, 1, mode="symmetric"), (((2, 3),),), name="pad_symmetric"),
    OpCase(
        "pad",
        lambda x: ops.pad(x, 1, mode="wrap"),
        (((2, 3),),),
        lambda x: torch_pad(x, (1, 1, 1, 1), "circular"),
        name="pad_wrap",
    ),
    # --- selection and dtype -------------------------------------------------------------------
    OpCase(
        "where",
        lambda a, b: ops.where(_CONDITION, a, b),
        (((3, 4), (3, 4)), ((4,), (3, 1)), ((), (3, 4))),
        lambda a, b: _t("where")(_t("tensor")(_CONDITION), a, b),
    ),
    OpCase(
        "cast",
        lambda x: Cast.apply(x, dtype=x.dtype),
        (((3, 2),), ((),)),
        lambda x: x.to(x.dtype),
    ),
)


CASES: tuple[OpCase, ...] = (*_PRIMITIVE_CASES, *FUSED_CASES)

# Registered ops without a case, each with the test that covers it instead and why
# (``"op": "tests/test_x.py::test_name: reason"``). The completeness test checks that the
# named test exists and that no entry is stale. Empty: every op has a case.
EXEMPT: dict[str, str] = {}


def cases_for(kind: str) -> list[OpCase]:
    """The cases whose shapes the property tests may generate of this kind."""
    return [case for case in CASES if case.kind == kind]


def torch_cases() -> list[OpCase]:
    """The cases with a PyTorch reference."""
    return [case for case in CASES if case.torch is not None]


__all__ = ["CASES", "EXEMPT", "FUSED_CASES", "OpCase", "cases_for", "sample", "torch_cases"]
