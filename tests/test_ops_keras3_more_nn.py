"""keras.ops neural-network and linear-algebra functions dendrite lacked
(dot_product_attention, batch_normalization, layer_normalization, depth_to_space,
space_to_depth, psnr, unfold, fold; logdet, slogdet, pinv, solve_triangular,
cholesky_inverse, matrix_rank, eig, lu_factor) and the function transformations (switch,
vectorized_map, vectorize, custom_gradient, rearrange): values against NumPy and PyTorch,
gradients against float64 central differences, errors. The same calls in real Keras:
tests/test_ops_keras3_more_vs_keras.py."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(8)
Q = RNG.standard_normal((2, 3, 4, 5))  # (B, T, N, H)
K = RNG.standard_normal((2, 6, 4, 5))  # (B, S, N, H)
V = RNG.standard_normal((2, 6, 4, 5))
MASK = RNG.random((2, 1, 3, 6)) < 0.6


def _torch_attention(q, k, v, mask=None, bias=None, scale=None, is_causal=False):
    torch = pytest.importorskip("torch")
    t = [torch.tensor(a).transpose(1, 2) for a in (q, k, v)]
    if t[0].shape[1] != t[1].shape[1]:
        groups = t[0].shape[1] // t[1].shape[1]
        t[1], t[2] = (x.repeat_interleave(groups, dim=1) for x in t[1:])
    attn = None
    if mask is not None:
        attn = torch.where(torch.tensor(mask), 0.0, -0.7 * 3.38953e38).to(torch.float64)
    if bias is not None:
        attn = torch.tensor(bias)
    out = torch.nn.functional.scaled_dot_product_attention(
        *t, attn_mask=attn, scale=scale, is_causal=is_causal
    )
    return out.transpose(1, 2).numpy()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"is_causal": True},
        {"mask": MASK},
        {"scale": 0.2},
        {"bias": RNG.standard_normal((1, 4, 3, 6))},
    ],
    ids=["plain", "causal", "mask", "scale", "bias"],
)
def test_dot_product_attention_matches_torch(kwargs):
    out = ops.dot_product_attention(Tensor(Q), Tensor(K), Tensor(V), **kwargs)
    np.testing.assert_allclose(out.data, _torch_attention(Q, K, V, **kwargs), rtol=1e-10)
    if "mask" not in kwargs and "bias" not in kwargs:
        gradcheck(
            lambda q, k, v: ops.dot_product_attention(q, k, v, **kwargs),
            Q[:1, :2, :2, :3],
            K[:1, :3, :2, :3],
            V[:1, :3, :2, :3],
        )


def test_dot_product_attention_grouped_heads_3d_and_errors():
    out = ops.dot_product_attention(Tensor(Q), Tensor(K[:, :, :2]), Tensor(V[:, :, :2]))
    np.testing.assert_allclose(out.data, _torch_attention(Q, K[:, :, :2], V[:, :, :2]), rtol=1e-10)
    single = ops.dot_product_attention(Tensor(Q[0]), Tensor(K[0]), Tensor(V[0]))
    np.testing.assert_allclose(single.data, _torch_attention(Q, K, V)[0], rtol=1e-10)
    gradcheck(
        lambda q, k, v: ops.dot_product_attention(q, k, v, is_causal=True),
        Q[:1, :2, :2, :3],
        K[:1, :3, :1, :3],
        V[:1, :3, :1, :3],
        mode="elementwise",
    )
    assert ops.dot_product_attention(Q.astype("float32"), K, V).dtype == "float64"
    with pytest.raises(ValueError, match="only one of"):
        ops.dot_product_attention(Q, K, V, bias=np.zeros(1), mask=MASK)
    with pytest.raises(ValueError, match="multiple"):
        ops.dot_product_attention(Q, K[:, :, :3], V[:, :, :3])
    with pytest.raises(ValueError, match="4-D"):
        ops.dot_product_attention(Q[0, 0], K[0, 0], V[0, 0])
    # A row with nothing to attend to averages every value, as Keras' torch backend does.
    nothing = np.zeros((2, 1, 3, 6), bool)
    out = ops.dot_product_attention(Tensor(Q), Tensor(K), Tensor(V), mask=nothing)
    np.testing.assert_allclose(
        out.data, np.broadcast_to(V.mean(axis=1, keepdims=True), out.shape), rtol=1e-12
    )


X = RNG.standard_normal((3, 4, 5))


def test_batch_normalization():
    mean, var = RNG.standard_normal(4), RNG.uniform(0.5, 2, 4)
    offset, scale = RNG.standard_normal(4), RNG.standard_normal(4)
    out = ops.batch_normalization(Tensor(X), mean, var, axis=1, offset=offset, scale=scale)
    view = (1, 4, 1)
    expected = (X - mean.reshape(view)) / np.sqrt(var.reshape(view) + 1e-3)
    expected = expected * scale.reshape(view) + offset.reshape(view)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    gradcheck(
        lambda x, m, v, o, s: ops.batch_normalization(x, m, v, 1, o, s, epsilon=0.1),
        X,
        mean,
        var,
        offset,
        scale,
        mode="elementwise",
    )
    plain = ops.batch_normalization(Tensor(X), mean[:3] * 0, var[:3] * 0 + 1, axis=0, epsilon=0)
    np.testing.assert_allclose(plain.data, X)


@pytest.mark.parametrize("axis", [-1, [1, 2], 1, [0, 2]], ids=str)
def test_layer_normalization(axis):
    axes = tuple(np.atleast_1d(axis) % 3)
    mean = X.mean(axis=axes, keepdims=True)
    var = X.var(axis=axes, keepdims=True)
    expected = (X - mean) / np.sqrt(var + 1e-7)
    np.testing.assert_allclose(
        ops.layer_normalization(Tensor(X), axis=axis).data, expected, rtol=1e-9
    )
    shape = [X.shape[a] if a in axes else 1 for a in range(3)]
    gamma = RNG.standard_normal([X.shape[a] for a in axes])
    beta = RNG.standard_normal([X.shape[a] for a in axes])
    out = ops.layer_normalization(Tensor(X), gamma, beta, axis=axis, epsilon=1e-3)
    expected = (X - mean) / np.sqrt(var + 1e-3) * gamma.reshape(shape) + beta.reshape(shape)
    np.testing.assert_allclose(out.data, expected, rtol=1e-9)
    gradcheck(lambda x, g, b: ops.layer_normalization(x, g, b, axis=axis), X, gamma, beta)


def test_layer_normalization_dtypes():
    x16 = X.astype("float16")
    out = ops.layer_normalization(x16)
    assert out.dtype == "float16"
    np.testing.assert_allclose(out.data, ops.layer_normalization(X).data, atol=2e-3)
    assert ops.layer_normalization(X.astype("float32")).dtype == "float32"
    with pytest.raises(TypeError, match="unexpected"):
        ops.layer_normalization(X, unknown=1)


IMG = RNG.standard_normal((2, 4, 6, 8))


def test_depth_to_space_and_space_to_depth():
    out = ops.depth_to_space(Tensor(IMG), 2)
    expected = IMG.reshape(2, 4, 6, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(2, 8, 12, 2)
    np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal(ops.space_to_depth(out, 2).data, IMG)
    torch = pytest.importorskip("torch")
    first = IMG.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(
        ops.depth_to_space(first, 2, data_format="channels_first").data,
        torch.nn.functional.pixel_shuffle(torch.tensor(first), 2).numpy(),
    )
    np.testing.assert_array_equal(
        ops.space_to_depth(first, 2, data_format="channels_first").data,
        torch.nn.functional.pixel_unshuffle(torch.tensor(first), 2).numpy(),
    )
    gradcheck(lambda x: ops.depth_to_space(x, 2), IMG[:1, :2, :2, :4], mode="elementwise")
    with pytest.raises(ValueError, match="at least 2"):
        ops.depth_to_space(IMG, 1)
    with pytest.raises(ValueError, match="divisible"):
        ops.space_to_depth(IMG, 4)
    with pytest.raises(ValueError, match="4-D"):
        ops.space_to_depth(IMG[0], 2)


def test_psnr():
    a, b = RNG.uniform(0, 1, (4, 4)), RNG.uniform(0, 1, (4, 4))
    expected = 20 * np.log10(1.0) - 10 * np.log10(np.mean((a - b) ** 2))
    np.testing.assert_allclose(ops.psnr(Tensor(a), Tensor(b), 1.0).data, expected, rtol=1e-12)
    np.testing.assert_allclose(
        ops.psnr(Tensor(a * 255), Tensor(b * 255), 255.0).data, expected, rtol=1e-12
    )
    gradcheck(lambda x, y: ops.psnr(x, y, 2.0), a, b)
    with pytest.raises(ValueError, match="must match"):
        ops.psnr(a, b[:2], 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"kernel_size": 2}, {"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": 2}],
    ids=["plain", "options"],
)
def test_unfold_and_fold_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    image = RNG.standard_normal((2, 3, 5, 6))
    columns = ops.unfold(Tensor(image), **kwargs)
    expected = torch.nn.functional.unfold(torch.tensor(image), **kwargs).numpy()
    np.testing.assert_array_equal(columns.data, expected)
    back = ops.fold(columns, (5, 6), **kwargs)
    expected = torch.nn.functional.fold(torch.tensor(expected), (5, 6), **kwargs).numpy()
    np.testing.assert_allclose(back.data, expected, rtol=1e-12)
    gradcheck(lambda x: ops.unfold(x, **kwargs), image[:1, :2], mode="elementwise")
    gradcheck(lambda c: ops.fold(c, (5, 6), **kwargs), columns.data[:1])


# --- linear algebra -----------------------------------------------------------------------------
A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
BATCH = RNG.standard_normal((2, 3, 3))
SPD = A @ A.T + np.eye(3)


def test_logdet_and_slogdet():
    sign, value = ops.slogdet(Tensor(BATCH))
    expected = np.linalg.slogdet(BATCH)
    np.testing.assert_array_equal(sign.data, expected[0])
    np.testing.assert_allclose(value.data, expected[1], rtol=1e-12)
    assert not sign.requires_grad
    np.testing.assert_allclose(ops.logdet(Tensor(SPD)).data, np.log(np.linalg.det(SPD)))
    negative = np.diag([1.0, -2.0, 3.0])
    assert np.isnan(ops.logdet(Tensor(negative)).data)
    assert ops.logdet(Tensor(np.zeros((2, 2)))).data == -np.inf
    gradcheck(lambda a: ops.logdet(ops.matmul(a, ops.transpose(a)) + np.eye(3)), A)
    gradcheck(lambda a: ops.slogdet(a)[1], BATCH, mode="elementwise")
    assert ops.logdet(np.eye(2, dtype="int32")).dtype == "float32"


def test_pinv():
    for shape in ((4, 3), (2, 5), (2, 3, 3)):
        m = RNG.standard_normal(shape)
        np.testing.assert_allclose(ops.pinv(Tensor(m)).data, np.linalg.pinv(m), rtol=1e-10)
        gradcheck(ops.pinv, m, mode="elementwise")
    low = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    np.testing.assert_allclose(ops.pinv(Tensor(low)).data, np.linalg.pinv(low), atol=1e-12)
    np.testing.assert_allclose(
        ops.pinv(Tensor(A), rcond=0.5).data, np.linalg.pinv(A, rcond=0.5), atol=1e-12
    )


def test_solve_triangular_and_cholesky_inverse():
    b = RNG.standard_normal((3, 2))
    lower = np.tril(A)
    np.testing.assert_allclose(
        ops.solve_triangular(Tensor(A), Tensor(b), lower=True).data,
        np.linalg.solve(lower, b),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        ops.solve_triangular(Tensor(A), Tensor(b[:, 0])).data,
        np.linalg.solve(np.triu(A), b[:, 0]),
        rtol=1e-12,
    )
    t = Tensor(A, requires_grad=True)
    ops.sum(ops.solve_triangular(t, b, lower=True)).backward()
    assert np.all(np.triu(t.grad, 1) == 0)  # the unread triangle gets no gradient
    gradcheck(lambda a, y: ops.solve_triangular(a, y, lower=True), A, b, mode="elementwise")
    factor = np.linalg.cholesky(SPD)
    np.testing.assert_allclose(
        ops.cholesky_inverse(Tensor(factor)).data, np.linalg.inv(SPD), rtol=1e-10
    )
    np.testing.assert_allclose(
        ops.cholesky_inverse(Tensor(factor.T), upper=True).data, np.linalg.inv(SPD), rtol=1e-10
    )
    gradcheck(ops.cholesky_inverse, factor, mode="elementwise")


def test_plain_decompositions():
    assert ops.matrix_rank(Tensor(A)).data == 3
    assert ops.matrix_rank(np.outer([1.0, 2.0], [3.0, 4.0])).dtype == "int32"
    np.testing.assert_array_equal(ops.matrix_rank(BATCH).data, [3, 3])
    assert ops.matrix_rank(np.diag([1.0, 1e-3]), tol=1e-2).data == 1
    values, vectors = ops.eig(Tensor(A))
    assert values.dtype == "complex128" and not values.requires_grad
    np.testing.assert_allclose(A @ vectors.data, vectors.data * values.data, atol=1e-10)
    assert ops.eig(A.astype("float32"))[0].dtype == "complex64"
    lu, pivots = ops.lu_factor(Tensor(BATCH))
    for matrix, packed, swaps in zip(BATCH, lu.data, pivots.data):
        perm = np.arange(3)
        for i, p in enumerate(swaps):
            perm[[i, p]] = perm[[p, i]]
        lower = np.tril(packed, -1) + np.eye(3)
        np.testing.assert_allclose(lower @ np.triu(packed), matrix[perm], atol=1e-12)
    assert pivots.dtype == "int32"
    torch = pytest.importorskip("torch")
    expected, expected_pivots = torch.linalg.lu_factor(torch.tensor(BATCH))
    np.testing.assert_allclose(lu.data, expected.numpy(), atol=1e-12)
    np.testing.assert_array_equal(pivots.data, expected_pivots.numpy() - 1)
    wide = RNG.standard_normal((2, 4))
    lu, pivots = ops.lu_factor(wide)
    expected, expected_pivots = torch.linalg.lu_factor(torch.tensor(wide))
    np.testing.assert_allclose(lu.data, expected.numpy(), atol=1e-12)
    np.testing.assert_array_equal(pivots.data, expected_pivots.numpy() - 1)


# --- function transformations ---------------------------------------------------------------
def test_switch():
    branches = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    np.testing.assert_array_equal(ops.switch(1, branches, x).data, [10.0, 20.0])
    np.testing.assert_array_equal(ops.switch(np.array(7), branches, x).data, [-1.0, -2.0])
    np.testing.assert_array_equal(ops.switch(-3, branches, x).data, [2.0, 3.0])
    ops.sum(ops.switch(1, branches, x)).backward()
    np.testing.assert_array_equal(x.grad, [10.0, 10.0])
    assert ops.switch(0, [lambda a, b: a - b], 5.0, 2.0) == 3.0


def test_vectorized_map():
    x = RNG.standard_normal((4, 3))
    out = ops.vectorized_map(lambda row: ops.sum(row * row), Tensor(x))
    np.testing.assert_allclose(out.data, (x * x).sum(1))
    pair = ops.vectorized_map(lambda p: (p[0] + p[1], p[0] * 2), (Tensor(x), Tensor(x[::-1])))
    np.testing.assert_allclose(pair[0].data, x + x[::-1])
    np.testing.assert_allclose(pair[1].data, 2 * x)
    gradcheck(lambda t: ops.vectorized_map(lambda r: ops.outer(r, r), t), x, mode="elementwise")
    with pytest.raises(ValueError, match="first axis"):
        ops.vectorized_map(lambda p: p, (Tensor(x), Tensor(x[:2])))


def test_vectorize():
    scalar = ops.vectorize(lambda a, b: a * b + 1.0)
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    np.testing.assert_allclose(scalar(Tensor(a), Tensor(b)).data, a * b + 1.0)
    dot = ops.vectorize(lambda u, v: ops.sum(u * v), signature="(n),(n)->()")
    np.testing.assert_allclose(dot(Tensor(a), Tensor(b)).data, a @ b)
    gradcheck(lambda u, v: dot(u, v), a, b)
    outer = ops.vectorize(ops.outer, signature="(n),(m)->(n,m)")
    np.testing.assert_allclose(outer(Tensor(a), Tensor(b[:2])).data, a[:, :, None] * b[:2])
    shifted = ops.vectorize(lambda x, k: x + k, excluded={1})
    np.testing.assert_allclose(shifted(Tensor(a), 5.0).data, a + 5.0)
    assert ops.vectorize(lambda x: x * 2)(Tensor(np.array(3.0))).data == 6.0


def test_custom_gradient():
    @ops.custom_gradient
    def clipped_identity(x):
        def grad(upstream):
            return ops.clip(upstream, -0.5, 0.5)

        return x * 1.0, grad

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = clipped_identity(x)
    np.testing.assert_array_equal(out.data, [1.0, 2.0])
    ops.sum(out * np.array([3.0, 0.25])).backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.25])

    @ops.custom_gradient
    def product(a, b, scale=1.0):
        def grad(upstream):  # deliberately swapped, to see it used
            return upstream * scale, upstream * 2 * scale

        return a * b * scale, grad

    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    ops.sum(product(a, b, scale=3.0)).backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])
    np.testing.assert_array_equal(b.grad, [6.0, 6.0])

    @ops.custom_gradient
    def keras_style(x):  # Keras' documented form: grad(*args, upstream=None)
        e = ops.exp(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))

        return ops.log(1 + e), grad

    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    ops.sum(keras_style(x)).backward()
    np.testing.assert_allclose(x.grad, 1 / (1 + np.exp(-x.data)))
    with pytest.raises(ValueError, match="must return"):
        ops.custom_gradient(lambda x: x)(Tensor(np.ones(2), requires_grad=True))


IMAGES = RNG.standard_normal((2, 4, 6, 3))


@pytest.mark.parametrize(
    "pattern, lengths, expected",
    [
        ("b h w c -> b (h w) c", {}, IMAGES.reshape(2, 24, 3)),
        ("b h w c -> c b w h", {}, IMAGES.transpose(3, 0, 2, 1)),
        (
            "b (h p) (w q) c -> b h w (p q c)",
            {"p": 2, "q": 3},
            IMAGES.reshape(2, 2, 2, 2, 3, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 2, 2, 18),
        ),
        ("b h w c -> (b h) w c", {}, IMAGES.reshape(8, 6, 3)),
        ("... c -> c ...", {}, np.moveaxis(IMAGES, -1, 0)),
        ("b ... c -> b c ...", {}, np.moveaxis(IMAGES, -1, 1)),
        ("b h w c -> b h w 1 c", {}, IMAGES[:, :, :, None]),
        ("b h w c -> b (h w c)", {}, IMAGES.reshape(2, -1)),
        (
            "b (h2 h) w c -> b h (w h2) c",
            {"h2": 2},
            IMAGES.reshape(2, 2, 2, 6, 3).transpose(0, 2, 3, 1, 4).reshape(2, 2, 12, 3),
        ),
    ],
)
def test_rearrange(pattern, lengths, expected):
    out = ops.rearrange(Tensor(IMAGES), pattern, **lengths)
    np.testing.assert_array_equal(out.data, expected)


def test_rearrange_gradient_units_and_errors():
    gradcheck(
        lambda t: ops.rearrange(t, "a (b c) -> c a b", c=2),
        RNG.standard_normal((3, 4)),
        mode="elementwise",
    )
    assert ops.rearrange(np.ones((2, 1, 3)), "a 1 b -> b a").shape == (3, 2)
    assert ops.rearrange(np.ones((2, 3)), "a b -> a () b").shape == (2, 1, 3)
    with pytest.raises(ValueError, match="same axes"):
        ops.rearrange(IMAGES, "b h w c -> b h w")
    with pytest.raises(ValueError, match="rank"):
        ops.rearrange(IMAGES, "b h w -> b h w")
    with pytest.raises(ValueError, match="cannot infer"):
        ops.rearrange(IMAGES, "b (h p) w c -> b h p w c")
    with pytest.raises(ValueError, match="cannot split"):
        ops.rearrange(IMAGES, "b (h p) w c -> b h p w c", p=3)
    with pytest.raises(ValueError, match="'->'"):
        ops.rearrange(IMAGES, "b h w c")
