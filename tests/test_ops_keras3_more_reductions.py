"""keras.ops NaN-skipping reductions (nanvar, nanstd, nanprod, nancumsum, nancumprod,
nanquantile, nanpercentile, nanmedian, nanargmax, nanargmin) and segment reductions
(segment_sum, segment_max, segment_min, segment_prod): values against NumPy (and PyTorch's
scatter_reduce), gradients against float64 central differences, dtypes and edge cases.
The same calls in real Keras: tests/test_ops_keras3_more_vs_keras.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 6))
N = np.where(RNG.random((4, 6)) < 0.3, np.nan, X)
N[2] = np.nan  # one all-NaN row
FULL = RNG.standard_normal((3, 5))  # no NaN: for finite differences


def _numpy(fn, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


AXES = [None, 0, 1, (0, 1), -1]


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["nanvar", "nanstd", "nanprod", "nanmedian"], ids=lambda n: n)
def test_nan_reductions_match_numpy(name, axis, keepdims):
    ours = _numpy(getattr(ops, name), Tensor(N), axis=axis, keepdims=keepdims)
    expected = _numpy(getattr(np, name), N, axis=axis, keepdims=keepdims)
    assert ours.shape == np.shape(expected) and ours.dtype == np.float64
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_nanquantile_and_nanpercentile_match_numpy(method, axis):
    q = [0.0, 0.2, 0.5, 0.77, 1.0]
    for keepdims in (False, True):
        ours = _numpy(ops.nanquantile, Tensor(N), q, axis=axis, method=method, keepdims=keepdims)
        expected = _numpy(np.nanquantile, N, q, axis=axis, method=method, keepdims=keepdims)
        np.testing.assert_allclose(ours.data, expected, rtol=1e-12)
    ours = _numpy(ops.nanpercentile, Tensor(N), 35.0, axis=axis, method=method)
    np.testing.assert_allclose(ours.data, _numpy(np.nanpercentile, N, 35.0, axis, method=method))


def test_cumulative_nan_reductions_match_numpy():
    for axis in (None, 0, 1):
        np.testing.assert_array_equal(
            ops.nancumsum(Tensor(N), axis=axis).data, np.nancumsum(N, axis=axis)
        )
        np.testing.assert_allclose(
            ops.nancumprod(Tensor(N), axis=axis).data, np.nancumprod(N, axis=axis)
        )
    assert ops.nancumsum(Tensor(N), axis=1, dtype="float32").dtype == "float32"
    inf = np.array([1.0, np.inf, np.nan, 2.0])  # only NaN is replaced (inf stays)
    np.testing.assert_array_equal(ops.nancumsum(Tensor(inf)).data, np.nancumsum(inf))


def test_nanargmax_and_nanargmin():
    for axis in (0, 1):
        got = ops.nanargmax(Tensor(N), axis=axis)
        expected = np.where(
            np.all(np.isnan(N), axis=axis), -1, np.argmax(np.where(np.isnan(N), -np.inf, N), axis)
        )
        np.testing.assert_array_equal(got.data, expected)
        assert got.dtype == "int32" and not got.requires_grad
        low = np.argmin(np.where(np.isnan(N), np.inf, N), axis)
        expected = np.where(np.all(np.isnan(N), axis=axis), -1, low)
        np.testing.assert_array_equal(ops.nanargmin(Tensor(N), axis=axis).data, expected)
    assert ops.nanargmax(Tensor(N)).data == np.nanargmax(N)
    assert ops.nanargmax(Tensor(N), axis=1, keepdims=True).shape == (4, 1)
    np.testing.assert_array_equal(ops.nanargmin(np.array([[3, 1, 2]]), axis=1).data, [1])


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: ops.nanvar(t, axis=1),
        lambda t: ops.nanstd(t, axis=0, keepdims=True),
        lambda t: ops.nanprod(t, axis=1),
        lambda t: ops.nancumsum(t, axis=0),
        lambda t: ops.nancumprod(t, axis=1),
        lambda t: ops.nanquantile(t, [0.3, 0.9], axis=1),
        lambda t: ops.nanmedian(t),
        lambda t: ops.nanpercentile(t, 60.0, axis=0, method="midpoint"),
    ],
    ids=[
        "nanvar",
        "nanstd",
        "nanprod",
        "nancumsum",
        "nancumprod",
        "nanquantile",
        "nanmedian",
        "nanpercentile",
    ],
)
def test_gradients(fn):
    gradcheck(fn, FULL, mode="elementwise")


def test_gradients_skip_the_nan_entries():
    t = Tensor(N, requires_grad=True)
    with np.errstate(all="ignore"):
        out = ops.nansum(ops.nanvar(t, axis=1)) + ops.nansum(ops.nanquantile(t, 0.4, axis=1))
    out.backward()
    assert np.all(t.grad[np.isnan(N)] == 0) and np.all(np.isfinite(t.grad))
    # The gradient of a row's nanvar: 2 (x - mean) / count on its present values.
    row = N[0]
    present = ~np.isnan(row)
    t = Tensor(N, requires_grad=True)
    ops.sum(ops.nanvar(t, axis=1)[0]).backward()
    centred = row[present] - row[present].mean()
    np.testing.assert_allclose(t.grad[0][present], 2 * centred / present.sum())


def test_dtypes_and_edge_cases():
    ints = np.arange(1, 7).reshape(2, 3).astype("int32")
    assert ops.nanvar(ints).dtype == "float32"
    assert ops.nanstd(Tensor(N.astype("float32")), axis=0).dtype == "float32"
    assert ops.nanquantile(ints, 0.5).dtype == "float32"
    assert ops.nanprod(ints, axis=0).dtype == "int32"
    np.testing.assert_array_equal(ops.nanprod(ints, axis=0).data, [4, 10, 18])
    np.testing.assert_array_equal(ops.nanprod(Tensor(N), axis=()).data, np.where(np.isnan(N), 1, N))
    np.testing.assert_array_equal(ops.nanmedian(Tensor(N), axis=()).data, N)
    with pytest.raises(ValueError, match="nanquantile: q must be"):
        ops.nanquantile(Tensor(N), 1.5)
    with pytest.raises(ValueError, match="nanquantile: method"):
        ops.nanquantile(Tensor(N), 0.5, method="cubic")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        ops.nanvar(Tensor(N), axis=3)


# --- segments ---------------------------------------------------------------------------------
IDS = np.array([0, 2, 0, 2, 2, 5, -1])  # segment 1 empty; 5 and -1 dropped with 4 segments
DATA = RNG.standard_normal((7, 3))


def _torch_segment(data, ids, num, reduce):
    torch = pytest.importorskip("torch")
    kept = (ids >= 0) & (ids < num)
    index = torch.tensor(ids[kept])[:, None].expand(-1, data.shape[1])
    init = {"sum": 0.0, "amax": -np.inf, "amin": np.inf, "prod": 1.0}[reduce]
    out = torch.full((num, data.shape[1]), init, dtype=torch.float64)
    return out.scatter_reduce(0, index, torch.tensor(data[kept]), reduce).numpy()


@pytest.mark.parametrize(
    "name, reduce", [("sum", "sum"), ("max", "amax"), ("min", "amin"), ("prod", "prod")]
)
def test_segment_values_match_pytorch(name, reduce):
    fn = getattr(ops, f"segment_{name}")
    out = fn(Tensor(DATA), IDS, num_segments=4)
    np.testing.assert_allclose(out.data, _torch_segment(DATA, IDS, 4, reduce))
    assert out.dtype == np.float64
    inferred = fn(Tensor(DATA), np.array([0, 0, 1, 3, 3, 3, 2]))
    assert inferred.shape == (4, 3)


def test_segment_gradients_against_finite_differences_and_pytorch():
    torch = pytest.importorskip("torch")
    tied = DATA.copy()
    tied[3] = tied[1]  # a tie in segment 2 for max and min
    tied[4, 0] = 0.0  # a zero for prod
    for name, reduce in (("sum", "sum"), ("max", "amax"), ("min", "amin"), ("prod", "prod")):
        fn = getattr(ops, f"segment_{name}")
        t = Tensor(tied, requires_grad=True)
        weights = RNG.standard_normal((3, 3))
        ids = np.array([0, 2, 0, 2, 1, 5, -1])  # every one of the 3 segments filled
        ops.sum(fn(t, ids, num_segments=3) * weights).backward()
        source = torch.tensor(tied, requires_grad=True)
        kept = (ids >= 0) & (ids < 3)
        index = torch.tensor(ids[kept])[:, None].expand(-1, 3)
        init = {"sum": 0.0, "amax": -np.inf, "amin": np.inf, "prod": 1.0}[reduce]
        out = torch.full((3, 3), init, dtype=torch.float64).scatter_reduce(
            0, index, source[torch.tensor(np.flatnonzero(kept))], reduce
        )
        (out * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(t.grad, source.grad.numpy(), err_msg=name, atol=1e-12)
    gradcheck(lambda d: ops.segment_prod(d, IDS, 3), tied, mode="elementwise")


def test_segment_integer_data_and_errors():
    data = np.array([[1, 5], [3, 2], [7, 0]], "int32")
    ids = np.array([1, 1, 3])
    np.testing.assert_array_equal(
        ops.segment_max(data, ids, num_segments=4).data,
        [[-(2**31)] * 2, [3, 5], [-(2**31)] * 2, [7, 0]],
    )
    assert ops.segment_sum(data, ids).dtype == "int32"
    np.testing.assert_array_equal(ops.segment_prod(data, ids).data[1], [3, 10])
    with pytest.raises(ValueError, match="one id per row"):
        ops.segment_sum(data, np.array([0, 1]))
    with pytest.raises(TypeError, match="segment_ids must be integers"):
        ops.segment_sum(data, np.array([0.0, 1.0, 1.0]))
