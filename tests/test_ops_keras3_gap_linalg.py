"""keras.ops linear algebra that dendrite lacked: det, inv, solve, cholesky (values against
NumPy, gradients against float64 central differences, batches, errors) and the plain
decompositions eigh, qr, svd, lstsq."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(2)
A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
BATCH = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)
B = RNG.standard_normal((3, 2))
SPD = A @ A.T + np.eye(3)


def _spd(m):
    """A symmetric positive definite function of a free matrix (for cholesky's gradient)."""
    return ops.add(ops.matmul(m, ops.transpose(m)), np.eye(3, dtype=m.dtype))


CASES = [
    ("det", ops.det, np.linalg.det, (A,)),
    ("det_batch", ops.det, np.linalg.det, (BATCH,)),
    ("inv", ops.inv, np.linalg.inv, (A,)),
    ("inv_batch", ops.inv, np.linalg.inv, (BATCH,)),
    ("solve_matrix", ops.solve, np.linalg.solve, (A, B)),
    ("solve_vector", ops.solve, lambda a, b: np.linalg.solve(a, b[:, None])[:, 0], (A, B[:, 0])),
    (
        "solve_batch_vector",
        ops.solve,
        lambda a, b: np.linalg.solve(a, b[..., None])[..., 0],
        (BATCH, RNG.standard_normal((2, 3))),
    ),
    (
        "cholesky",
        lambda m: ops.cholesky(_spd(m)),
        lambda m: np.linalg.cholesky(m @ m.T + np.eye(3)),
        (A,),
    ),
    (
        "cholesky_upper",
        lambda m: ops.cholesky(_spd(m), upper=True),
        lambda m: np.linalg.cholesky(m @ m.T + np.eye(3)).T,
        (A,),
    ),
]


@pytest.mark.parametrize("name, fn, ref, inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients(name, fn, ref, inputs):
    out = fn(*[Tensor(a) for a in inputs])
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=1e-11, atol=1e-12)
    assert out.dtype == "float64"
    gradcheck(fn, *inputs, mode="elementwise", name=name)
    assert fn(*[Tensor(a.astype("float32")) for a in inputs]).dtype == "float32"


def test_cholesky_gradient_on_the_symmetric_input_directly():
    # Perturbations of a symmetric input that stay symmetric: d/dA of <G, chol(A)>.
    def fn(m):
        return ops.cholesky(ops.multiply(ops.add(m, ops.transpose(m)), 0.5))

    gradcheck(fn, SPD, mode="elementwise")


def test_errors():
    with pytest.raises(ValueError, match="det: needs square matrices"):
        ops.det(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="inv: needs square matrices"):
        ops.inv(Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="not positive definite"):
        ops.cholesky(Tensor(-np.eye(2)))
    with pytest.raises(np.linalg.LinAlgError):
        ops.solve(Tensor(np.zeros((2, 2))), Tensor(np.ones(2)))


def test_plain_decompositions_match_numpy():
    values, vectors = ops.eigh(Tensor(SPD))
    np.testing.assert_allclose(values.data, np.linalg.eigvalsh(SPD), rtol=1e-12)
    np.testing.assert_allclose(
        vectors.data @ np.diag(values.data) @ vectors.data.T, SPD, atol=1e-10
    )
    m = RNG.standard_normal((4, 3))
    for mode, shape in (("reduced", (4, 3)), ("complete", (4, 4))):
        q, r = ops.qr(Tensor(m), mode=mode)
        assert q.shape == shape
        np.testing.assert_allclose(q.data @ r.data, m, atol=1e-12)
    with pytest.raises(ValueError, match="qr: mode"):
        ops.qr(Tensor(m), mode="raw")
    u, s, vt = ops.svd(Tensor(m))
    assert u.shape == (4, 4) and vt.shape == (3, 3)
    np.testing.assert_allclose(
        ops.svd(Tensor(m), compute_uv=False).data, np.linalg.svd(m, compute_uv=False)
    )
    u, s, vt = ops.svd(Tensor(m), full_matrices=False)
    np.testing.assert_allclose(u.data * s.data @ vt.data, m, atol=1e-12)
    y = RNG.standard_normal((4, 2))
    np.testing.assert_allclose(
        ops.lstsq(Tensor(m), Tensor(y)).data, np.linalg.lstsq(m, y, rcond=None)[0]
    )
    for out in (values, vectors, q, r, u, s, vt):
        assert not out.requires_grad


def test_det_records_on_symbolic_tensors():
    # (inv, solve and cholesky cannot: the graph learns shapes from a run on zeros, which
    # is a singular matrix.)
    x = keras.Input((3, 3))
    model = keras.Model(x, [ops.det(x), ops.trace(x, axis1=1, axis2=2)])
    a = BATCH.astype("float32")
    det, trace = model.predict(a, verbose=0)
    np.testing.assert_allclose(np.asarray(det), np.linalg.det(a), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(trace), np.trace(a, axis1=1, axis2=2), rtol=1e-6)
