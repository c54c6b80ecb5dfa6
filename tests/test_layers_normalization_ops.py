"""The fused primitives behind the normalisation and embedding layers
(``dendrite.ops.normalization``): values, statistics and hand-written VJPs."""

import numpy as np
import pytest

from dendrite.core import OP_REGISTRY, Tensor, no_grad
from dendrite.ops.normalization import NormStats, embedding_lookup, normalize, scale_shift
from dendrite.testing import gradcheck

R = np.random.default_rng(0)

# (x shape, axes, param_shape): batch norm (channels last / first), layer norm (one or
# several axes), group norm on the grouped view (N, L, G, C/G).
CASES = [
    ((5, 3), (0,), (1, 3)),
    ((4, 3, 2), (0, 1), (1, 1, 2)),
    ((3, 4, 2, 2), (0, 2, 3), (1, 4, 1, 1)),
    ((4, 5), (1,), None),
    ((2, 3, 4), (1, 2), None),
    ((2, 3, 2, 2), (1, 3), (1, 1, 2, 2)),
]


def params_for(shape, axes, param_shape):
    if param_shape is None:
        param_shape = tuple(n if a in axes else 1 for a, n in enumerate(shape))
    size = tuple(n for n in param_shape if n != 1)
    return R.normal(size=size) + 1.0, R.normal(size=size), param_shape


@pytest.mark.parametrize("shape, axes, param_shape", CASES)
def test_normalize_value_and_statistics(shape, axes, param_shape):
    x = R.normal(size=shape) * 2 + 1
    gamma, beta, full_shape = params_for(shape, axes, param_shape)
    stats = NormStats()
    out = normalize(x, gamma, beta, axes=axes, param_shape=param_shape, stats=stats).numpy()
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma.reshape(full_shape)
    expected += beta.reshape(full_shape)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.mean, mean)
    np.testing.assert_allclose(stats.variance, var)


@pytest.mark.parametrize("shape, axes, param_shape", CASES)
@pytest.mark.parametrize("which", ["both", "scale", "center", "neither"])
def test_normalize_gradients(shape, axes, param_shape, which):
    x = R.normal(size=shape)
    gamma, beta, _ = params_for(shape, axes, param_shape)
    inputs = [x]
    if which in ("both", "scale"):
        inputs.append(gamma)
    if which in ("both", "center"):
        inputs.append(beta)

    def fn(x, *params):
        g = params[0] if which in ("both", "scale") else None
        b = params[-1] if which in ("both", "center") else None
        return normalize(x, g, b, axes=axes, param_shape=param_shape)

    gradcheck(fn, *inputs, mode="elementwise", name=f"normalize[{which}]")


def test_normalize_gradient_only_for_parameters():
    x = Tensor(R.normal(size=(4, 3)))
    gamma = Tensor(np.ones(3), requires_grad=True)
    beta = Tensor(np.zeros(3), requires_grad=True)
    out = normalize(x, gamma, beta, axes=(0,), param_shape=(1, 3))
    out.backward(np.ones((4, 3)))
    np.testing.assert_allclose(beta.grad, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(gamma.grad, [0.0, 0.0, 0.0], atol=1e-12)


def test_normalize_keeps_float32_and_records_nothing_under_no_grad():
    x = Tensor(R.normal(size=(6, 4)).astype("float32"), requires_grad=True)
    gamma = Tensor(np.ones(4, "float32"), requires_grad=True)
    out = normalize(x, gamma, None)
    assert out.dtype == np.float32 and out._ctx is not None
    with no_grad():
        assert normalize(x, gamma, None)._ctx is None


def test_scale_shift_value_and_gradients():
    x = R.normal(size=(3, 4, 2))
    a = R.normal(size=(1, 1, 2))
    b = R.normal(size=(2,))
    np.testing.assert_allclose(scale_shift(x, a, b).numpy(), x * a + b)
    gradcheck(scale_shift, x, a, b, mode="elementwise")


def test_embedding_lookup_value_and_gradient_with_repeated_ids():
    table = R.normal(size=(6, 3))
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    np.testing.assert_array_equal(embedding_lookup(table, ids).numpy(), table[ids])
    gradcheck(lambda t: embedding_lookup(t, ids), table, mode="elementwise")
    t = Tensor(table, requires_grad=True)
    upstream = R.normal(size=(2, 3, 3))
    embedding_lookup(t, ids).backward(upstream)
    expected = np.zeros_like(table)
    np.add.at(expected, ids.ravel(), upstream.reshape(-1, 3))
    np.testing.assert_allclose(t.grad, expected)
    assert np.all(t.grad[[1, 3, 4]] == 0)


def test_primitives_are_registered():
    assert {"normalize", "scale_shift", "embedding_lookup"} <= set(OP_REGISTRY)


def test_ordered_sums_match_numpy_for_every_axis_subset():
    import itertools

    from dendrite.ops.normalization import _sum_over

    for shape in [(3, 4, 5, 6), (2, 1, 3), (7,), (4, 3000, 2), (2, 300, 4, 3)]:
        x = R.normal(size=shape)
        for r in range(1, len(shape) + 1):
            for axes in itertools.combinations(range(len(shape)), r):
                np.testing.assert_allclose(
                    _sum_over(x, axes), x.sum(axis=axes, keepdims=True), rtol=1e-12, atol=1e-12
                )
