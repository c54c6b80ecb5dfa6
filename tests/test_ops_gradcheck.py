"""Every differentiable op against finite differences in float64, driven by the op table.

The table (``dendrite.testing.op_cases.CASES``) lists each op with shapes that include
broadcasting and size-1 axes; hypothesis adds generated shapes for the element-wise,
broadcasting and reducing ops. A primitive registered without a case fails
``test_every_registered_op_has_a_case``.
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dendrite.ops
from dendrite.core import OP_REGISTRY
from dendrite.testing import gradcheck
from dendrite.testing.op_cases import CASES, COVERED_MODULES, OpCase, cases_for, sample

TESTS = pathlib.Path(__file__).parent
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


def _check(case: OpCase, shapes: tuple, seed: int = 0, **kwargs) -> None:
    rng = np.random.default_rng(seed)
    inputs = [sample(case.domain, shape, rng) for shape in shapes]
    fn = (lambda x: case.fn(x, **kwargs)) if kwargs else case.fn
    label = f"{case.id}{list(shapes)}{kwargs or ''}"
    gradcheck(fn, *inputs, name=label, seed=seed)
    if sum(int(np.prod(s)) for s in shapes) <= 24:
        gradcheck(fn, *inputs, name=label, seed=seed, mode="elementwise")


def test_every_registered_op_has_a_case():
    """Every primitive of the families the table covers has a case; primitives registered
    elsewhere (fused layer and loss ops, tested by their own modules) must at least be named
    in some test module."""
    for module in pkgutil.iter_modules(dendrite.ops.__path__):
        importlib.import_module(f"dendrite.ops.{module.name}")
    covered = {case.op for case in CASES}
    other_tests = "".join(p.read_text() for p in TESTS.glob("test_*.py"))
    missing = []
    for name, cls in sorted(OP_REGISTRY.items()):
        if name in covered:
            continue
        if cls.__module__ not in COVERED_MODULES and name in other_tests:
            continue
        missing.append(f"{name} ({cls.__module__})")
    assert not missing, (
        f"registered ops without a test: {missing}. Add an OpCase to "
        f"dendrite/testing/op_cases.py (required for the modules it covers), or test the op "
        f"in a tests/test_*.py module that names it."
    )


def test_cases_name_registered_ops():
    unknown = sorted({case.op for case in CASES} - set(OP_REGISTRY))
    assert not unknown, f"op_cases names ops that are not registered: {unknown}"
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "op_cases ids must be unique"


FIXED = [
    pytest.param(case, shapes, id=f"{case.id}-{'x'.join(map(str, shapes))}")
    for case in CASES
    if case.kind != "reduce"
    for shapes in case.shapes
]


@pytest.mark.parametrize("case,shapes", FIXED)
def test_gradcheck_listed_shapes(case: OpCase, shapes: tuple):
    _check(case, shapes)


REDUCED = [
    pytest.param(case, shapes, axis, keepdims, id=f"{case.id}-{shapes}-{axis}-{keepdims}")
    for case in cases_for("reduce")
    for shapes in case.shapes
    for axis, keepdims in ((None, False), (-1, True), (0, False))
]


@pytest.mark.parametrize("case,shapes,axis,keepdims", REDUCED)
def test_gradcheck_reductions(case: OpCase, shapes: tuple, axis, keepdims):
    _check(case, shapes, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("case", cases_for("unary"), ids=lambda c: c.id)
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
def test_gradcheck_unary_generated_shapes(case: OpCase, shape: tuple):
    _check(case, (shape,), seed=len(shape))


@pytest.mark.parametrize("case", cases_for("binary"), ids=lambda c: c.id)
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_gradcheck_broadcasting_generated_shapes(case: OpCase, shapes):
    _check(case, shapes.input_shapes)


@st.composite
def _shape_axis_keepdims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(
        st.none()
        | st.integers(-len(shape), len(shape) - 1)
        | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)
    )
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("case", cases_for("reduce"), ids=lambda c: c.id)
@SETTINGS
@given(drawn=_shape_axis_keepdims())
def test_gradcheck_reductions_generated(case: OpCase, drawn):
    shape, axis, keepdims = drawn
    _check(case, (shape,), axis=axis, keepdims=keepdims)
