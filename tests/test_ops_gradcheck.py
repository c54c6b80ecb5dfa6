"""Every differentiable op against finite differences in float64, driven by the op table.

The table (``dendrite.testing.op_cases.CASES``) lists each op with shapes that include
broadcasting and size-1 axes; hypothesis adds generated shapes for the element-wise,
broadcasting and reducing ops; cases with a NumPy reference (every fused primitive) also
check their forward value. A primitive registered without a case (and not exempted, with
the test that covers it, in ``op_cases.EXEMPT``) fails ``test_every_registered_op_has_a_case``.
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
from dendrite import registry
from dendrite.core import OP_REGISTRY, Tensor
from dendrite.testing import gradcheck
from dendrite.testing.fused_cases import FUSED_CASES
from dendrite.testing.op_cases import CASES, EXEMPT, OpCase, cases_for, sample

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


def _import_every_op_module() -> None:
    for module in pkgutil.walk_packages(dendrite.ops.__path__, "dendrite.ops."):
        importlib.import_module(module.name)


def test_every_registered_op_has_a_case():
    """Every registered primitive has an OpCase in the table, or an entry in EXEMPT naming
    the test that covers it; a name appearing somewhere in a test file is not enough."""
    _import_every_op_module()
    covered = {case.op for case in CASES}
    missing = [
        f"{name} ({cls.__module__}.{cls.__name__})"
        for name, cls in sorted(registry.items("op").items())
        if name not in covered and name not in EXEMPT
    ]
    assert not missing, (
        f"registered ops without an OpCase: {missing}. Add one to "
        f"dendrite/testing/op_cases.py (or fused_cases.py for a fused primitive, with a NumPy "
        f"reference of its unfused maths), or, where a case cannot express it, list it in "
        f"op_cases.EXEMPT with the test that covers it."
    )


def test_exemptions_name_existing_tests_of_registered_ops_without_cases():
    ops_by_name = registry.items("op")
    covered = {case.op for case in CASES}
    for name, where in EXEMPT.items():
        assert name in ops_by_name, f"EXEMPT lists {name!r}, which is not a registered op"
        assert name not in covered, f"EXEMPT lists {name!r}, which has an OpCase: remove it"
        target, _, reason = where.partition(": ")
        path, _, test_name = target.partition("::")
        assert reason, f"EXEMPT[{name!r}] must say why a case cannot cover it"
        source = TESTS.parent / path
        assert source.exists(), f"EXEMPT[{name!r}] names {path}, which does not exist"
        assert f"def {test_name}(" in source.read_text(), (
            f"EXEMPT[{name!r}] names {target}, which is not a test in {path}"
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


REFERENCED = [
    pytest.param(case, shapes, id=f"{case.id}-{'x'.join(map(str, shapes))}")
    for case in CASES
    if case.reference is not None
    for shapes in case.shapes
]


@pytest.mark.parametrize("case,shapes", REFERENCED)
def test_forward_matches_the_reference(case: OpCase, shapes: tuple):
    """The value in float64 equals the case's NumPy reference (the unfused maths)."""
    rng = np.random.default_rng(0)
    arrays = [sample(case.domain, shape, rng) for shape in shapes]
    value = case.fn(*[Tensor(a) for a in arrays])
    expected = case.reference(*arrays)
    assert value.dtype == np.float64, f"{case.id}: float64 inputs gave {value.dtype}"
    assert value.shape == expected.shape, f"{case.id}: shape {value.shape} != {expected.shape}"
    np.testing.assert_allclose(value.data, expected, rtol=1e-10, atol=1e-12, err_msg=case.id)


def test_every_fused_primitive_case_has_a_reference():
    missing = [case.id for case in FUSED_CASES if case.reference is None]
    assert not missing, f"fused cases without a NumPy reference: {missing}"


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
