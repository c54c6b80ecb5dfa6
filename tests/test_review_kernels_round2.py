"""Review of the second round of C kernels (narrow and depthwise convolutions reading the
unpadded input, blocks of samples for dL/dK, the recurrences' last-states mode, the tiled
axis swap, the ReLU epilogue and unbroadcast's few-repeats path): geometries the existing
tests leave out, thread determinism, float64 gradients, and the layer-level last-states
mode against the step-by-step cell path."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest

import dendrite as tf
from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.recurrent import GRU, LSTM, SimpleRNN
from dendrite.ops._util import unbroadcast
from dendrite.testing import gradcheck

conv_module = importlib.import_module("dendrite.ops.conv")
native = importlib.import_module("dendrite._native")
rnn_cells = importlib.import_module("dendrite.layers.rnn_cells")


# --- convolutions: the kernels against the NumPy reference -------------------------------

# (x shape, kernel shape, strides, padding, dilation, groups): explicit padding wider than
# the kernel (whole windows in the padding), strides and dilations together, even kernels
# with 'same' and strides, 1-D causal with a dilation, a window wider than the bias-fold
# limit (bias added after the product), a batch of one, channels off the vector widths.
CONV_CASES = [
    ((2, 5, 6, 9), (2, 4, 9, 1), (2, 3), ((4, 1), (0, 6)), (2, 1), 1),
    ((1, 7, 4, 17), (3, 2, 17, 2), (3, 1), ((0, 5), (3, 3)), (1, 3), 1),
    ((3, 8, 8, 5), (4, 2, 5, 1), (2, 2), "same", (1, 1), 1),
    ((2, 9, 7, 64), (3, 3, 64, 2), (1, 2), "same", (1, 1), 1),  # kh kw C = 576 > 512
    ((3, 11, 17), (4, 17, 1), 1, "causal", 3, 1),  # 1-D
    ((2, 5, 6, 9), (2, 4, 1, 18), (2, 3), ((4, 1), (0, 6)), (2, 1), 9),  # depthwise, M = 2
    ((1, 6, 7, 17), (4, 4, 1, 17), (2, 3), "same", (1, 1), 17),
    ((2, 3, 3, 1), (3, 3, 1, 1), (1, 1), ((5, 5), (2, 4)), (2, 3), 1),  # narrow, C = 1
    ((3, 12, 8), (3, 1, 8), 1, "causal", 2, 8),  # 1-D depthwise
]


def _conv_outputs(x, kernel, bias, strides, padding, dilation, groups, relu, needs):
    xt = Tensor(x, requires_grad=needs[0])
    kt = Tensor(kernel, requires_grad=needs[1])
    bt = Tensor(bias, requires_grad=needs[2])
    out = conv_module.fused_conv(xt, kt, bt, strides, padding, dilation, groups=groups, relu=relu)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    out.backward(upstream)
    return [out.data, xt.grad, kt.grad, bt.grad]


@pytest.mark.needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True)])
def test_direct_convolution_kernels_match_the_numpy_path(dtype, case, needs, monkeypatch):
    x_shape, k_shape, strides, padding, dilation, groups = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(k_shape[-1]).astype(dtype)
    monkeypatch.setattr(conv_module, "_NARROW_FROM", 0)
    calls = []
    for name in ("narrow_forward", "depthwise_forward"):
        original = getattr(native.kernels, name)
        monkeypatch.setattr(native.kernels, name, lambda *a, _o=original: calls.append(1) or _o(*a))
    args = (x, kernel, bias, strides, padding, dilation, groups, True, needs)
    with_kernels = _conv_outputs(*args)
    assert calls, "no direct convolution kernel ran"
    monkeypatch.setattr(native, "usable", lambda *a, **k: False)
    reference = _conv_outputs(*args)
    tolerance = 3e-6 if dtype == np.float32 else 1e-13
    for name, got, want in zip(["output", "dx", "dK", "db"], with_kernels, reference):
        assert (got is None) == (want is None), name
        if want is not None:
            assert got.shape == want.shape and got.dtype == want.dtype, name
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * scale, err_msg=name)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[4], CONV_CASES[5], CONV_CASES[7]])
def test_direct_convolution_gradcheck_float64(case, monkeypatch):
    x_shape, k_shape, strides, padding, dilation, groups = case
    rng = np.random.default_rng(12)
    x = rng.standard_normal(x_shape)
    kernel = rng.standard_normal(k_shape)
    bias = rng.standard_normal(k_shape[-1])
    monkeypatch.setattr(conv_module, "_NARROW_FROM", 0)

    def fn(x, kernel, bias):
        return conv_module.fused_conv(x, kernel, bias, strides, padding, dilation, groups=groups)

    gradcheck(fn, x, kernel, bias, name=f"conv {case}")


@pytest.mark.needs_kernels
@pytest.mark.parametrize("kind", ["narrow", "depthwise"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_gradient_does_not_depend_on_the_threads(kind, dtype, monkeypatch):
    """dL/dK and dL/db summed by blocks of samples: the same bits with one thread or two
    (the job is large enough to be shared), and from run to run."""
    if native.kernels.threads() < 2 and native.kernel_threads < 2:
        pytest.skip("the kernels run without their helper thread here")
    monkeypatch.setattr(conv_module, "_NARROW_FROM", 0)
    rng = np.random.default_rng(13)
    c, n = 19, 37  # 37 samples: 19 blocks of 2 (the last of 1)
    x = rng.standard_normal((n, 24, 24, c)).astype(dtype)
    shape = (3, 3, c, 1) if kind == "narrow" else (3, 3, 1, c)
    kernel = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    groups = 1 if kind == "narrow" else c
    args = (x, kernel, bias, 1, "same", 1, groups, True, (True, True, True))
    before = native.kernels.threads()
    results = []
    try:
        for threads in (2, 1, 2):
            native.kernels.set_threads(threads)
            results.append(_conv_outputs(*args))
    finally:
        native.kernels.set_threads(before)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)


# --- the recurrences' last-states mode, at the layer level -------------------------------

B, T, F, U = 3, 5, 4, 6
LAYERS = {
    "lstm": lambda **kw: LSTM(U, **kw),
    "gru": lambda **kw: GRU(U, **kw),
    "gru_reset_before": lambda **kw: GRU(U, reset_after=False, **kw),
    "simple_rnn": lambda **kw: SimpleRNN(U, **kw),
}


def _mask() -> np.ndarray:
    mask = np.random.default_rng(1).random((B, T)) > 0.35
    mask[0] = [True, True, True, False, False]
    mask[1] = [False, False, True, True, True]
    mask[2] = False  # a sample with no step at all
    return mask


def _flat(outputs) -> Tensor:
    items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return ops.concatenate([ops.reshape(o, (-1,)) for o in items], axis=0)


def _layer_run(name, options, masked, initial, bidirectional, fused, monkeypatch):
    """Outputs and gradients (input, initial states, weights) of a float64 layer."""
    import dendrite.layers as L

    with monkeypatch.context() as patch:
        if not fused:  # the step-by-step cell path
            base = next(
                cls
                for cls in rnn_cells.SimpleRNNCell.__mro__
                if "fused_activations" in cls.__dict__
            )
            patch.setattr(base, "fused_activations", lambda self: None)
        tf.utils.set_random_seed(3)
        layer = LAYERS[name](dtype="float64", **options)
        if bidirectional:
            layer = L.Bidirectional(layer)
        x = Tensor(np.random.default_rng(0).standard_normal((B, T, F)), requires_grad=True)
        kwargs = {"mask": _mask()} if masked else {}
        states = []
        if initial:
            count = 2 if name == "lstm" else 1
            states = [
                Tensor(np.random.default_rng(5 + i).standard_normal((B, U)), requires_grad=True)
                for i in range(count)
            ]
            kwargs["initial_state"] = states
        out = _flat(layer(x, **kwargs))
        out.backward(np.random.default_rng(2).standard_normal(out.shape))
        return (
            [out.data, x.grad]
            + [s.grad for s in states]
            + [w.grad for w in layer.trainable_weights]
        )


LAST_STATE_CASES = [
    (return_state, go_backwards, masked, initial, bidirectional)
    for return_state, go_backwards, masked, initial, bidirectional in itertools.product(
        [False, True], [False, True], [False, True], [False, True], [False, True]
    )
    if not (initial and bidirectional)
]


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("case", LAST_STATE_CASES)
def test_layers_without_sequences_match_the_cell_path(name, case, monkeypatch):
    return_state, go_backwards, masked, initial, bidirectional = case
    options = {
        "return_sequences": False,
        "return_state": return_state,
        "go_backwards": go_backwards,
    }
    fused = _layer_run(name, options, masked, initial, bidirectional, True, monkeypatch)
    cells = _layer_run(name, options, masked, initial, bidirectional, False, monkeypatch)
    assert len(fused) == len(cells)
    for index, (got, want) in enumerate(zip(fused, cells)):
        assert (got is None) == (want is None), index
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=str(index))


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN], ids=["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_stateful_layers_without_sequences_continue_the_sequence(make, go_backwards):
    rng = np.random.default_rng(9)
    tf.utils.set_random_seed(4)
    stateful = make(4, stateful=True, go_backwards=go_backwards)
    plain = make(4, go_backwards=go_backwards)
    x = rng.standard_normal((3, 8, 5)).astype("float32")
    stateful(x[:, :1])
    plain(x[:, :1])
    plain.set_weights(stateful.get_weights())
    stateful.reset_states()
    first, second = (x[:, 5:], x[:, :5]) if go_backwards else (x[:, :5], x[:, 5:])
    stateful(first)
    np.testing.assert_allclose(stateful(second).data, plain(x).data, atol=1e-6)


@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN], ids=["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_float32_layer_takes_a_float64_output_gradient(make, return_sequences):
    """A float32 recurrent layer whose output meets a float64 tensor receives a float64
    gradient: with sequences the backward pass falls back to NumPy for it; without them the
    last states' gradient (float64) was handed to the float32 kernel as dh / dc, which
    raised "need ... arrays of one dtype"."""
    tf.utils.set_random_seed(4)
    layer = make(5, return_sequences=return_sequences)
    data = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")
    grads = []
    for upstream_dtype in ("float32", "float64"):
        x = Tensor(data, requires_grad=True)
        out = layer(x)
        factor = Tensor(np.full(out.shape, 2.0, dtype=upstream_dtype))
        ops.sum(ops.multiply(out, factor)).backward()
        grads.append(x.grad)
    assert grads[1].dtype == np.float32
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


# --- unbroadcast's few-repeats path: NumPy's bits -----------------------------------------


@pytest.mark.parametrize(
    "dtype, grad_shape, shape",
    [
        (np.float64, (5, 16), (5, 1)),  # an inner axis of 8..16 repeats: NumPy sums it
        (np.float64, (3, 9), (3, 1)),  # pairwise (8 accumulators), not one by one
        (np.float64, (2, 12), (2, 1)),
        (np.float32, (4, 3, 16, 1), (4, 3, 1, 1)),
        (np.float32, (2, 3, 4), (1, 3, 1)),  # two axes: NumPy's iteration order
    ],
)
def test_unbroadcast_few_repeats_keep_numpys_bits(dtype, grad_shape, shape):
    """``_sum_repeats`` promises the bits of NumPy's reduction (and replaced it); adding
    whole slabs one after another does not give them when NumPy reduces the repeats along
    the innermost axis (pairwise, with 8 partial sums) or over two axes."""
    rng = np.random.default_rng(0)
    grad = (rng.standard_normal(grad_shape) * 10 ** rng.uniform(-3, 3, grad_shape)).astype(dtype)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad_shape[i] != 1)
    want = np.add.reduce(grad, axis=axes, keepdims=True).reshape(shape)
    got = unbroadcast(grad, shape)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))
