"""Batch normalisation over a channels-last array's rows by csrc/batchnorm.c, against the
NumPy path of ops/normalization.py's Normalize (the kernels unloaded).

The kernel sums over the rows by fixed blocks where NumPy sums pairwise: the statistics,
values and gradients agree within float rounding, not bit for bit, and do not depend on
the helper thread. Without the kernels (``DENDRITE_NO_KERNELS=1``) these tests skip.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dendrite as dn
from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops.normalization import NormStats, normalize
from dendrite.testing import (
    assert_paths_agree,
    assert_same_on_any_kernel_threads,
    gradcheck,
)

pytestmark = pytest.mark.needs_kernels


def _run(x, gamma, beta, upstream, needs=(True, True, True), epsilon=1e-3):
    """(value, dL/dx, dL/dgamma, dL/dbeta, batch mean, batch variance) as NumPy arrays."""
    xt = Tensor(x, requires_grad=needs[0])
    gt = None if gamma is None else Tensor(gamma, requires_grad=needs[1])
    bt = None if beta is None else Tensor(beta, requires_grad=needs[2])
    stats = NormStats()
    param_shape = (1,) * (x.ndim - 1) + (x.shape[-1],)
    axes = tuple(range(x.ndim - 1))
    out = normalize(xt, gt, bt, axes=axes, epsilon=epsilon, param_shape=param_shape, stats=stats)
    if out.requires_grad:
        out.backward(upstream)
    grads = [None if t is None else t.grad for t in (xt, gt, bt)]
    return [out.data, *grads, stats.mean, stats.variance]


def _both(monkeypatch, *args, **kwargs):
    """``_run`` by the kernel, then by the NumPy path."""
    fast = _run(*args, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(_native, "kernels", None)
        return fast, _run(*args, **kwargs)


_close = assert_paths_agree


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape", [(32, 16, 16, 64), (7, 5, 3), (33, 20), (1, 4, 4, 3), (300, 1, 17)]
)
@pytest.mark.parametrize("params", list(itertools.product([False, True], repeat=2)))
def test_values_statistics_and_gradients_match_numpy(shape, dtype, params, monkeypatch):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(shape[-1]).astype(dtype) if params[0] else None
    beta = rng.standard_normal(shape[-1]).astype(dtype) if params[1] else None
    upstream = rng.standard_normal(shape).astype(dtype)
    fast, reference = _both(monkeypatch, x, gamma, beta, upstream)
    _close(fast, reference, dtype)


@pytest.mark.parametrize("needs", list(itertools.product([False, True], repeat=3))[1:])
def test_every_combination_of_gradients(needs, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 6, 6, 12)).astype(np.float32)
    gamma, beta = rng.standard_normal((2, 12)).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    fast, reference = _both(monkeypatch, x, gamma, beta, upstream, needs=needs)
    for wanted, got in zip(needs, fast[1:4]):
        assert (got is not None) == wanted
    _close(fast, reference, np.float32)


def test_one_row_normalises_to_beta(monkeypatch):
    """A batch of one: every value is its channel's mean, the variance 0, the output beta."""
    x = np.arange(6, dtype=np.float32).reshape(1, 6)
    beta = np.linspace(-1, 1, 6).astype(np.float32)
    fast, reference = _both(monkeypatch, x, np.ones(6, np.float32), beta, np.ones_like(x))
    np.testing.assert_array_equal(fast[0], beta[None])
    _close(fast, reference, np.float32)


def test_the_helper_thread_does_not_change_a_bit():
    """The row blocks are fixed and their sums added in order, whichever thread ran them."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 20, 20, 48)).astype(np.float32)  # split: above SPLIT_FROM
    gamma, beta = rng.standard_normal((2, 48)).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    assert_same_on_any_kernel_threads(lambda: _run(x, gamma, beta, upstream))


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5))
    gamma, beta = rng.standard_normal((2, 5))

    def fn(x, gamma, beta):
        return normalize(x, gamma, beta, axes=(0, 1), param_shape=(1, 1, 5))

    gradcheck(fn, x, gamma, beta, mode="elementwise", name="batchnorm kernel")


def test_other_layouts_and_dtypes_take_the_numpy_path(monkeypatch):
    """A transposed view, mixed dtypes, statistics over other axes: the NumPy path, the
    same results as with the kernels unloaded."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 5, 8)).astype(np.float32)
    calls = []
    original = _native.kernels.batchnorm_forward

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(_native.kernels, "batchnorm_forward", counting, raising=False)
    view = x.transpose(1, 0, 2)  # not C-ordered
    gamma = np.ones(8, np.float64)  # another dtype
    for array, g in ((view, None), (x, gamma)):
        fast = _run(array, g, None, np.ones(array.shape, np.float32), needs=(True, False, False))
        assert np.isfinite(fast[0]).all()
    out = normalize(Tensor(x), axes=(0, 2), param_shape=(1, 5, 1))  # channels_first-like
    assert out.shape == x.shape
    assert not calls


def test_a_batch_normalized_model_trains_as_with_numpy(monkeypatch):
    """Conv2D, BatchNormalization, ReLU: the same losses and moving statistics, within
    float rounding, with the kernel and without."""

    def train():
        dn.keras.utils.set_random_seed(0)
        layers = dn.keras.layers
        model = dn.keras.Sequential(
            [
                dn.keras.Input((8, 8, 3)),
                layers.Conv2D(12, 3, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
                layers.GlobalAveragePooling2D(),
                layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((64, 8, 8, 3)).astype(np.float32)
        y = (x[:, :4].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        bn = model.layers[1]
        return history.history["loss"], bn.moving_mean.numpy(), bn.moving_variance.numpy()

    fast = train()
    monkeypatch.setattr(_native, "kernels", None)
    reference = train()
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert fast[0][-1] < fast[0][0]


def test_the_kernels_check_their_arguments():
    kernels = _native.kernels
    x = np.zeros((4, 3), np.float32)
    c = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="rows or channels"):
        kernels.batchnorm_forward(x, None, None, x, x, c, c, c, 0, 3, 1e-3)
    with pytest.raises(ValueError):  # arrays of other sizes than rows x channels
        kernels.batchnorm_forward(x, None, None, x[:2], x, c, c, c, 4, 3, 1e-3)
    with pytest.raises(ValueError):
        kernels.batchnorm_backward(x, x, c, None, None, c, c[:2], 4, 3)
