"""keras.ops that dendrite lacked (array manipulation, statistics, products, scatters and
index queries): values against NumPy, gradients against float64 central differences, and,
where Keras' semantics are its own, the same calls run by real Keras 3 (torch backend) in a
subprocess."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

RNG = np.random.default_rng(1)
X = RNG.standard_normal((3, 4))
X3 = RNG.standard_normal((2, 3, 4))
V = RNG.standard_normal(4)

# (name, dendrite function of Tensors, NumPy reference of arrays, inputs)
DIFFERENTIABLE = [
    ("flip", lambda t: ops.flip(t), np.flip, (X3,)),
    ("flip_axis", lambda t: ops.flip(t, axis=-1), lambda a: np.flip(a, -1), (X3,)),
    ("flip_axes", lambda t: ops.flip(t, axis=(0, 2)), lambda a: np.flip(a, (0, 2)), (X3,)),
    ("fliplr", ops.fliplr, np.fliplr, (X,)),
    ("flipud", ops.flipud, np.flipud, (X,)),
    ("roll_flat", lambda t: ops.roll(t, 5), lambda a: np.roll(a, 5), (X,)),
    ("roll_axis", lambda t: ops.roll(t, -1, axis=-1), lambda a: np.roll(a, -1, -1), (X3,)),
    (
        "roll_axes",
        lambda t: ops.roll(t, (1, 2), (0, 2)),
        lambda a: np.roll(a, (1, 2), (0, 2)),
        (X3,),
    ),
    ("rot90", ops.rot90, np.rot90, (X,)),
    ("rot90_k3", lambda t: ops.rot90(t, 3, (1, 2)), lambda a: np.rot90(a, 3, (1, 2)), (X3,)),
    ("rot90_k2", lambda t: ops.rot90(t, -2), lambda a: np.rot90(a, -2), (X,)),
    ("diagonal", ops.diagonal, np.diagonal, (X,)),
    (
        "diagonal_3d",
        lambda t: ops.diagonal(t, 1, -1, 1),
        lambda a: np.diagonal(a, 1, -1, 1),
        (X3,),
    ),
    ("trace", lambda t: ops.trace(t, -1), lambda a: np.trace(a, -1), (X,)),
    ("trace_3d", lambda t: ops.trace(t, 0, 1, 2), lambda a: np.trace(a, 0, 1, 2), (X3,)),
    ("diag_of_matrix", lambda t: ops.diag(t, 1), lambda a: np.diag(a, 1), (X,)),
    ("diag_of_vector", lambda t: ops.diag(t, -2), lambda a: np.diag(a, -2), (V,)),
    ("diagflat", lambda t: ops.diagflat(t, 1), lambda a: np.diagflat(a, 1), (X[:2, :2],)),
    ("hstack", lambda a, b: ops.hstack([a, b]), lambda a, b: np.hstack([a, b]), (X, X[:, :2])),
    ("hstack_1d", lambda a, b: ops.hstack([a, b]), lambda a, b: np.hstack([a, b]), (V, V[:2])),
    ("vstack", lambda a, b: ops.vstack([a, b]), lambda a, b: np.vstack([a, b]), (X, V)),
    ("dstack", lambda a, b: ops.dstack([a, b]), lambda a, b: np.dstack([a, b]), (X, X)),
    ("dstack_1d", lambda a, b: ops.dstack([a, b]), lambda a, b: np.dstack([a, b]), (V, V)),
    ("append", ops.append, np.append, (X, V)),
    (
        "append_axis",
        lambda a, b: ops.append(a, b, axis=0),
        lambda a, b: np.append(a, b, 0),
        (X, X[:1]),
    ),
    ("copy", ops.copy, np.copy, (X,)),
    ("median", ops.median, np.median, (X,)),
    ("median_axis", lambda t: ops.median(t, axis=-1), lambda a: np.median(a, -1), (X3,)),
    (
        "median_keepdims",
        lambda t: ops.median(t, axis=(0, 2), keepdims=True),
        lambda a: np.median(a, (0, 2), keepdims=True),
        (X3,),
    ),
    ("quantile", lambda t: ops.quantile(t, 0.3, 1), lambda a: np.quantile(a, 0.3, 1), (X,)),
    (
        "quantile_vector_q",
        lambda t: ops.quantile(t, [0.1, 0.5, 0.9], axis=0),
        lambda a: np.quantile(a, [0.1, 0.5, 0.9], axis=0),
        (X,),
    ),
    (
        "percentile",
        lambda t: ops.percentile(t, [25, 80], axis=-1, keepdims=True),
        lambda a: np.percentile(a, [25, 80], axis=-1, keepdims=True),
        (X3,),
    ),
    ("average", ops.average, np.average, (X,)),
    (
        "average_weights",
        lambda t, w: ops.average(t, axis=1, weights=w),
        lambda a, w: np.average(a, axis=1, weights=w),
        (X, np.abs(V) + 0.5),
    ),
    (
        "average_full_weights",
        lambda t, w: ops.average(t, axis=0, weights=w),
        lambda a, w: np.average(a, axis=0, weights=w),
        (X, np.abs(X) + 0.5),
    ),
    ("ptp", lambda t: ops.ptp(t, axis=1), lambda a: np.ptp(a, axis=1), (X,)),
    ("nansum", lambda t: ops.nansum(t, axis=0), lambda a: np.nansum(a, axis=0), (X,)),
    ("nanmean", lambda t: ops.nanmean(t, axis=1), lambda a: np.nanmean(a, axis=1), (X,)),
    (
        "nanmax",
        lambda t: ops.nanmax(t, axis=-1, keepdims=True),
        lambda a: np.nanmax(a, -1, keepdims=True),
        (X,),
    ),
    ("nanmin", ops.nanmin, np.nanmin, (X,)),
    ("moments_mean", lambda t: ops.moments(t, [0])[0], lambda a: a.mean(0), (X,)),
    (
        "moments_var",
        lambda t: ops.moments(t, [0, 1], keepdims=True)[1],
        lambda a: a.var(keepdims=True),
        (X,),
    ),
    (
        "normalize",
        ops.normalize,
        lambda a: a / np.sqrt(np.maximum((a * a).sum(-1, keepdims=True), 1e-7)),
        (X,),
    ),
    (
        "normalize_l1",
        lambda t: ops.normalize(t, axis=0, order=1),
        lambda a: a / np.maximum(np.abs(a).sum(0, keepdims=True), 1e-7),
        (X,),
    ),
    ("cross", ops.cross, np.cross, (X[:, :3], X[::-1, 1:])),
    (
        "cross_axis",
        lambda a, b: ops.cross(a, b, axis=0),
        lambda a, b: np.cross(a, b, axis=0),
        (X[:, :2], X[:, 2:]),
    ),
    ("inner", ops.inner, np.inner, (X3, X)),
    ("kron", ops.kron, np.kron, (X[:2, :3], X3)),
    ("vdot", ops.vdot, np.vdot, (X, X[::-1])),
    (
        "select",
        lambda a, b: ops.select([X > 0.5, X < -0.5], [a, b], default=2.0),
        lambda a, b: np.select([X > 0.5, X < -0.5], [a, b], default=2.0),
        (X, X * 3),
    ),
    ("slice", lambda t: ops.slice(t, (1, 0, 2), (1, 2, 2)), lambda a: a[1:2, 0:2, 2:4], (X3,)),
]


@pytest.mark.parametrize(
    "name, fn, ref, inputs", DIFFERENTIABLE, ids=[d[0] for d in DIFFERENTIABLE]
)
def test_values_and_gradients(name, fn, ref, inputs):
    out = fn(*[Tensor(a) for a in inputs])
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=1e-12, atol=1e-12)
    assert out.dtype == "float64"
    gradcheck(fn, *inputs, mode="elementwise", name=name)


def test_quantile_methods_match_numpy():
    x = RNG.standard_normal((5, 6))
    for method in ("linear", "lower", "higher", "midpoint", "nearest"):
        for q in (0.0, 0.2, 0.5, 0.75, 1.0):
            np.testing.assert_allclose(
                ops.quantile(Tensor(x), q, axis=1, method=method).data,
                np.quantile(x, q, axis=1, method=method),
                rtol=1e-12,
            )
        gradcheck(lambda t, m=method: ops.quantile(t, [0.2, 0.7], axis=0, method=m), x)
    assert ops.median(Tensor(np.array(3.0))).data == 3.0
    assert ops.median(np.array([1, 2, 3, 4])).dtype == "float32"
    with pytest.raises(ValueError, match=r"q must be .* in \[0, 1\]"):
        ops.quantile(Tensor(x), 1.5)
    with pytest.raises(ValueError, match="method must be"):
        ops.quantile(Tensor(x), 0.5, method="weird")
    with pytest.raises(ValueError, match="out of range"):
        ops.median(Tensor(x), axis=2)


def test_nan_reductions_ignore_nan():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        for fn, ref in (
            (ops.nanmean, np.nanmean),
            (ops.nanmax, np.nanmax),
            (ops.nanmin, np.nanmin),
        ):
            np.testing.assert_array_equal(fn(Tensor(x), axis=1).data, ref(x, axis=1))
    np.testing.assert_array_equal(ops.nansum(Tensor(x), axis=1).data, [4.0, 0.0])
    t = Tensor(x[0], requires_grad=True)
    ops.nansum(t).backward()
    np.testing.assert_array_equal(t.grad, [1.0, 0.0, 1.0])


def test_splits_and_unstack():
    for got, expected in (
        (ops.array_split(Tensor(X3), 3, axis=-1), np.array_split(X3, 3, axis=-1)),
        (ops.array_split(Tensor(X), [1, 3], axis=1), np.array_split(X, [1, 3], axis=1)),
        (ops.hsplit(Tensor(X), 2), np.hsplit(X, 2)),
        (ops.hsplit(Tensor(V), [1]), np.hsplit(V, [1])),
        (ops.vsplit(Tensor(X3), 2), np.vsplit(X3, 2)),
        (ops.unstack(Tensor(X3), axis=-2), list(np.moveaxis(X3, -2, 0))),
    ):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g.data, e)
    gradcheck(lambda t: ops.array_split(t, 3, axis=1)[0] * 2, X)
    gradcheck(lambda t: ops.unstack(t, 3, axis=1)[2], X3)
    with pytest.raises(ValueError, match="unstack: num=2"):
        ops.unstack(Tensor(X), num=2)
    with pytest.raises(ValueError, match="vsplit: needs at least 2 axes"):
        ops.vsplit(Tensor(V), 2)
    with pytest.raises(ValueError, match="sections must be > 0"):
        ops.array_split(Tensor(V), 0)


def test_meshgrid_tri_identity_and_edges():
    a, b, c = np.arange(3.0), np.arange(2.0), np.arange(4.0)
    for indexing in ("xy", "ij"):
        got = ops.meshgrid(Tensor(a), Tensor(b), Tensor(c), indexing=indexing)
        for g, e in zip(got, np.meshgrid(a, b, c, indexing=indexing)):
            np.testing.assert_array_equal(g.data, e)
    gradcheck(lambda s, t: ops.meshgrid(s, t)[0] * ops.meshgrid(s, t)[1], a, b)
    with pytest.raises(ValueError, match="indexing must be"):
        ops.meshgrid(Tensor(a), indexing="yx")
    np.testing.assert_array_equal(ops.tri(3, 4, -1).data, np.tri(3, 4, -1))
    assert ops.tri(2).dtype == "float32" and ops.tri(2, dtype="int32").dtype == "int32"
    np.testing.assert_array_equal(ops.identity(3).data, np.identity(3))
    assert ops.identity(2).dtype == "float32"
    assert ops.flip(Tensor(np.zeros((0, 3))), 0).shape == (0, 3)
    assert ops.trace(Tensor(np.zeros((0, 0)))).data == 0.0
    assert ops.diag(Tensor(np.zeros(0))).shape == (0, 0)
    np.testing.assert_array_equal(ops.copy(np.array([1, 2])).data, [1, 2])
    with pytest.raises(ValueError, match="flip: axis 3"):
        ops.flip(Tensor(X), 3)
    with pytest.raises(ValueError, match="rot90: the two axes must differ"):
        ops.rot90(Tensor(X), axes=(1, 1))
    with pytest.raises(ValueError, match="diag: needs a 1-D or 2-D"):
        ops.diag(Tensor(X3))
    with pytest.raises(ValueError, match="cross: the vector axes"):
        ops.cross(Tensor(X), Tensor(X))
    with pytest.raises(ValueError, match="inner: the last axes differ"):
        ops.inner(Tensor(X), Tensor(X.T))


def test_count_nonzero_isclose_allclose():
    x = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    assert ops.count_nonzero(Tensor(x)).data == 3 and ops.count_nonzero(x).dtype == "int32"
    np.testing.assert_array_equal(ops.count_nonzero(Tensor(x), axis=-1).data, [2, 1])
    np.testing.assert_array_equal(ops.count_nonzero(Tensor(x), axis=(0, 1)).data, 3)
    y = x + np.array([1e-9, 1e-3, 0.0])
    np.testing.assert_array_equal(ops.isclose(Tensor(x), Tensor(y)).data, np.isclose(x, y))
    assert not bool(ops.allclose(x, y).data) and bool(ops.allclose(x, y, atol=1e-2).data)
    nan = np.array([np.nan])
    assert bool(ops.allclose(nan, nan, equal_nan=True).data) and not bool(
        ops.allclose(nan, nan).data
    )


def test_scatter_and_updates_with_gradients():
    idx = np.array([[0, 1], [2, 3], [0, 1]])
    values = np.array([1.0, 2.0, 5.0])
    expected = np.zeros((3, 4))
    np.add.at(expected, (idx[:, 0], idx[:, 1]), values)
    np.testing.assert_array_equal(ops.scatter(idx, Tensor(values), (3, 4)).data, expected)
    gradcheck(lambda v: ops.scatter(idx, v, (3, 4)), values, mode="elementwise")
    rows = RNG.standard_normal((2, 4))
    gradcheck(lambda v: ops.scatter(np.array([[2], [0]]), v, (3, 4)), rows, mode="elementwise")
    # replace: the last of repeated indices wins; add: they add up
    out = ops.scatter_update(Tensor(X), idx, Tensor(values)).data
    manual = X.copy()
    manual[0, 1], manual[2, 3] = 5.0, 2.0
    np.testing.assert_array_equal(out, manual)
    added = X.copy()
    np.add.at(added, (idx[:, 0], idx[:, 1]), values)
    np.testing.assert_allclose(
        ops.scatter_update(Tensor(X), idx, values, reduction="add").data, added
    )
    for reduction in (None, "add"):
        gradcheck(
            lambda x, v, r=reduction: ops.scatter_update(x, idx, v, reduction=r),
            X,
            values,
            mode="elementwise",
        )
    with pytest.raises(ValueError, match="reduction must be None or 'add'"):
        ops.scatter_update(Tensor(X), idx, values, reduction="max")
    with pytest.raises(IndexError, match="out of range"):
        ops.scatter(np.array([[3, 0]]), np.ones(1), (3, 4))
    with pytest.raises(TypeError, match="indices must be integers"):
        ops.scatter(np.array([[0.0, 1.0]]), np.ones(1), (3, 4))


def test_slice_update():
    updates = RNG.standard_normal((2, 2))
    expected = X.copy()
    expected[1:3, 1:3] = updates
    np.testing.assert_array_equal(
        ops.slice_update(Tensor(X), (1, 1), Tensor(updates)).data, expected
    )
    gradcheck(lambda x, u: ops.slice_update(x, [1, 1], u), X, updates, mode="elementwise")
    assert ops.slice_update(Tensor(X), (0, 0), Tensor(np.ones((1, 1)))).dtype == "float64"
    assert ops.slice_update(Tensor(X.astype("float32")), (0, 0), np.ones((1, 1))).dtype == "float32"
    with pytest.raises(ValueError, match="do not fit"):
        ops.slice_update(Tensor(X), (2, 3), Tensor(updates))
    with pytest.raises(ValueError, match="one entry per axis"):
        ops.slice(Tensor(X), (0,), (1, 1))


def test_index_queries_match_numpy():
    seq = np.array([1.0, 2.0, 2.0, 5.0])
    vals = np.array([[0.0, 2.0], [3.0, 9.0]])
    for side in ("left", "right"):
        got = ops.searchsorted(Tensor(seq), Tensor(vals), side=side)
        np.testing.assert_array_equal(got.data, np.searchsorted(seq, vals, side=side))
        assert got.dtype == "int32"
    with pytest.raises(ValueError, match="side must be"):
        ops.searchsorted(seq, vals, side="middle")
    np.testing.assert_array_equal(ops.digitize(vals, seq).data, np.digitize(vals, seq))
    labels = np.array([0, 1, 1, 3])
    np.testing.assert_array_equal(ops.bincount(labels).data, np.bincount(labels))
    assert ops.bincount(labels).dtype == "int32"
    w = np.array([0.5, 1.0, 2.0, 4.0], "float32")
    np.testing.assert_array_equal(
        ops.bincount(labels, w, minlength=6).data, np.bincount(labels, w, 6)
    )
    assert ops.bincount(labels, w).dtype == "float32"
    np.testing.assert_array_equal(
        ops.bincount(np.array([[0, 1], [2, 2]])).data, [[1, 1, 0], [0, 0, 2]]
    )
    with pytest.raises(ValueError, match="non-negative integers"):
        ops.bincount(np.array([-1, 2]))
    np.testing.assert_array_equal(
        np.stack([t.data for t in ops.unravel_index(np.array([1, 5, 7]), (2, 4))]),
        np.stack(np.unravel_index([1, 5, 7], (2, 4))),
    )
    x = np.array([[0.0, 1.5], [2.0, 0.0]])
    for got, e in zip(ops.nonzero(Tensor(x)), np.nonzero(x)):
        np.testing.assert_array_equal(got.data, e)
        assert got.dtype == "int32"
    part = ops.argpartition(Tensor(X), 1, axis=-1).data
    np.testing.assert_array_equal(np.take_along_axis(X, part, -1)[:, 1], np.sort(X, -1)[:, 1])


def test_unique_matches_numpy():
    x = np.array([3, 1, 3, 2, 1, 3])
    values, index, inverse, counts = ops.unique(
        x, return_index=True, return_inverse=True, return_counts=True
    )
    ev, ei, einv, ec = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for got, e in ((values, ev), (index, ei), (inverse, einv), (counts, ec)):
        np.testing.assert_array_equal(got.data, e)
    np.testing.assert_array_equal(ops.unique(x, sorted=False).data, [3, 1, 2])
    np.testing.assert_array_equal(ops.unique(x, size=5, fill_value=-1).data, [1, 2, 3, -1, -1])
    np.testing.assert_array_equal(ops.unique(x, size=2).data, [1, 2])
    rows = np.array([[1, 2], [0, 0], [1, 2]])
    np.testing.assert_array_equal(ops.unique(rows, axis=0).data, np.unique(rows, axis=0))


def test_new_ops_record_on_symbolic_tensors():
    x = keras.Input((3, 4))
    outs = [
        ops.flip(x, axis=-1),
        ops.roll(x, 1, axis=2),
        ops.trace(x, axis1=1, axis2=2),
        ops.median(x, axis=-1),
        ops.nanmean(x, axis=1),
        ops.normalize(x),
        ops.cross(x[..., :3], x[..., 1:]),
        ops.slice_update(x, [0, 0, 1], np.ones((1, 2, 2), "float32")),
        ops.concatenate(ops.array_split(x, 2, axis=2), axis=2),
    ]
    model = keras.Model(x, outs)
    a = RNG.standard_normal((2, 3, 4)).astype("float32")
    eager = [
        ops.flip(a, axis=-1),
        ops.roll(a, 1, axis=2),
        ops.trace(a, axis1=1, axis2=2),
        ops.median(a, axis=-1),
        ops.nanmean(a, axis=1),
        ops.normalize(a),
        ops.cross(a[..., :3], a[..., 1:]),
        ops.slice_update(a, [0, 0, 1], np.ones((1, 2, 2), "float32")),
        ops.concatenate(ops.array_split(a, 2, axis=2), axis=2),
    ]
    for got, e in zip(model.predict(a, verbose=0), eager):
        np.testing.assert_allclose(np.asarray(got), e.data, rtol=1e-6)


# --- the same calls in real Keras 3 -----------------------------------------------------------
# Each entry is evaluated as written with ``ops`` bound to keras.ops in a subprocess and to
# dendrite.ops here, on the same arrays (float32, as Keras computes).
KERAS_CALLS = {
    "sparse_plus": "ops.sparse_plus(A)",
    "sparse_sigmoid": "ops.sparse_sigmoid(A)",
    "threshold": "ops.threshold(A, 0.2, -1.0)",
    "celu": "ops.celu(A, alpha=0.5)",
    "glu": "ops.glu(A)",
    "hard_shrink": "ops.hard_shrink(A)",
    "soft_shrink": "ops.soft_shrink(A, 0.3)",
    "squareplus": "ops.squareplus(A)",
    "divide_no_nan": "ops.divide_no_nan(A, Z)",
    "heaviside": "ops.heaviside(Z - 1, A)",
    "fmod": "ops.fmod(A * 5, B)",
    "normalize": "ops.normalize(A, axis=0)",
    "normalize_l1": "ops.normalize(A, order=1)",
    "moments_var": "ops.moments(A, axes=[1])[1]",
    "median": "ops.median(A, axis=0)",
    "quantile": "ops.quantile(A, 0.3, axis=1, method='midpoint')",
    "average": "ops.average(A, axis=1, weights=W)",
    "nanmean": "ops.nanmean(N, axis=1)",
    "multi_hot": "ops.multi_hot(I, 5)",
    "multi_hot_axis0": "ops.multi_hot(I, 5, axis=0)",
    "multi_hot_1d": "ops.multi_hot(I[0], 5)",
    "multi_hot_3d": "ops.multi_hot(I.reshape(2, 2, 3), 5)",
    "in_top_k": "ops.in_top_k(L, A, 2)",
    "scatter": "ops.scatter(I[:, :2], A[:, 0], (5, 5))",
    "scatter_update": "ops.scatter_update(A, I[:2, :2], B[0, :2])",
    "slice_update": "ops.slice_update(A, (1, 2), B[:2, :2])",
    "select": "ops.select([A > 0.5, A < 0], [A, B], 7.0)",
    "searchsorted": "ops.searchsorted(S, A[0])",
    "digitize": "ops.digitize(A, S)",
    "count_nonzero": "ops.count_nonzero(Z, axis=1)",
    "diag": "ops.diag(A[0], 1)",
    "diagonal": "ops.diagonal(A, 1)",
    "rot90": "ops.rot90(A, 3)",
    "kron": "ops.kron(A[:2, :2], B[:2])",
    "cross": "ops.cross(A[:, :3], B[:, 3:])",
    "tri": "ops.tri(3, 4, 1)",
    "arctan2": "ops.arctan2(A, B)",
    "logaddexp": "ops.logaddexp(A, B)",
    "erfinv": "ops.erfinv(A / 3)",
    "erfc": "ops.erfc(A)",
    "sparsemax_single": "ops.sparsemax(A * 20)",
}


def _keras_inputs() -> dict:
    rng = np.random.default_rng(7)
    a = rng.uniform(-2, 2, (4, 6)).astype("float32")
    z = np.where(rng.random((4, 6)) < 0.3, 0.0, rng.uniform(0.5, 2, (4, 6))).astype("float32")
    n = np.where(rng.random((4, 6)) < 0.3, np.nan, a).astype("float32")
    return {
        "A": a,
        "B": rng.uniform(0.5, 2, (4, 6)).astype("float32"),
        "Z": z,
        "N": n,
        "W": rng.uniform(0.1, 1, 6).astype("float32"),
        "I": np.array([[0, 2, 4], [1, 1, 3], [4, 0, 0], [2, 3, 1]], "int32"),
        "L": np.array([0, 5, 2, 3], "int32"),
        "S": np.array([-1.0, 0.0, 0.5, 1.5], "float32"),
    }


_KERAS_SIDE = """
import json, sys
import numpy as np
from keras import ops
root = sys.argv[1]
inputs = dict(np.load(root + "/inputs.npz"))
calls = json.load(open(root + "/calls.json"))
out = {name: ops.convert_to_numpy(eval(code, {"ops": ops, "np": np}, inputs))
       for name, code in calls.items()}
np.savez(root + "/keras.npz", **out)
"""


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("real Keras 3 with the torch backend is not installed")
    root = tmp_path_factory.mktemp("keras_ops")
    np.savez(root / "inputs.npz", **_keras_inputs())
    (root / "calls.json").write_text(json.dumps(KERAS_CALLS))
    run_keras_side(_KERAS_SIDE, root, backend="torch")
    return dict(np.load(root / "keras.npz"))


@pytest.mark.parametrize("name", sorted(KERAS_CALLS))
def test_same_results_as_keras(keras_results, name):
    ours = eval(KERAS_CALLS[name], {"ops": ops, "np": np}, _keras_inputs())
    theirs = keras_results[name]
    assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
    if theirs.dtype.kind == "f":
        np.testing.assert_allclose(ours.data, theirs, rtol=2e-6, atol=2e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(ours.data, theirs, err_msg=name)


def test_normalize_floors_the_norm_not_its_square():
    """Keras floors the L2 norm at epsilon (rsqrt capped at 1 / epsilon): a vector of norm
    2.2e-5 is still scaled to unit length, and the zero vector stays zero with a finite
    gradient."""
    x = np.array([[1e-5, 2e-5, 0.0], [0.0, 0.0, 0.0], [3.0, 4.0, 0.0]], "float32")
    expected = np.array([[1, 2, 0], [0, 0, 0], [3, 4, 0]], "float32")
    expected /= np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-7)
    np.testing.assert_allclose(ops.normalize(x).data, expected, rtol=1e-5)
    t = Tensor(x.astype("float64"), requires_grad=True)
    ops.sum(ops.normalize(t)).backward()
    assert np.isfinite(t.grad).all()
