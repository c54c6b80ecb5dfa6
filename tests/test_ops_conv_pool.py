"""The fused convolution + max pooling primitive (``ConvMaxPool``) and the Sequential
fusion of ``Conv2D``/``Conv1D`` followed by ``MaxPooling2D``/``MaxPooling1D``.

The fused node must equal the two unfused nodes, value and gradient, ties included (a
constant image region gives equal convolution outputs in a window: the gradient goes to
the first of them); it is gradchecked in float64 on its own; and a Sequential model must
fuse only the pairs where nothing can tell the difference.
"""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as dn
from dendrite.core import GradientTape, Tensor, Variable
from dendrite.layers.conv import Conv2D
from dendrite.layers.pooling import MaxPooling2D
from dendrite.ops.conv import fused_conv
from dendrite.ops.conv_pool import ConvMaxPool, conv_max_pool
from dendrite.ops.pooling import max_pool
from dendrite.testing import gradcheck

RNG = np.random.default_rng(11)

# (input shape, kernel shape, pool size, convolution options)
CASES = [
    ((3, 9, 8, 2), (3, 3, 2, 4), (2, 2), {}),
    ((2, 7, 7, 3), (2, 3, 3, 5), (3, 2), {"padding": "same"}),
    ((2, 9, 9, 1), (3, 3, 1, 4), (2, 2), {"strides": 2}),
    ((2, 11, 10, 9), (3, 3, 9, 3), (2, 2), {"dilation_rate": 2, "padding": "same"}),
    ((2, 10, 3), (3, 3, 4), (3,), {"padding": "causal", "dilation_rate": 2}),
    ((2, 8, 2), (2, 2, 3), (1,), {}),
]


def _inputs(shape, kernel_shape, dtype=np.float64):
    x = RNG.standard_normal(shape).astype(dtype)
    x[0, : shape[1] // 2] = 0.0  # a constant region: ties inside pooling windows
    kernel = RNG.standard_normal(kernel_shape).astype(dtype)
    bias = (RNG.standard_normal(kernel_shape[-1]) * 0.3).astype(dtype)
    return x, kernel, bias


def _value_and_grads(fn, x, kernel, bias):
    variables = [Variable(x), Variable(kernel), Variable(bias)]
    with GradientTape() as tape:
        y = fn(*variables)
        weights = np.linspace(-1.0, 1.0, y.data.size).reshape(y.shape).astype(x.dtype)
        loss = dn.ops.sum(y * Tensor(weights))
    return y.data, [g.data if isinstance(g, Tensor) else g for g in tape.gradient(loss, variables)]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_fused_equals_conv_then_max_pool(case, relu):
    shape, kernel_shape, pool, options = CASES[case]
    x, kernel, bias = _inputs(shape, kernel_shape)

    def fused(x, k, b):
        return conv_max_pool(x, k, b, pool_size=pool, relu=relu, **options)

    def unfused(x, k, b):
        return max_pool(fused_conv(x, k, b, relu=relu, **options), pool)

    value, grads = _value_and_grads(fused, x, kernel, bias)
    expected_value, expected_grads = _value_and_grads(unfused, x, kernel, bias)
    assert value.shape == expected_value.shape
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-12)
    for got, expected in zip(grads, expected_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_fused_gradchecks_in_float64(case, relu):
    shape, kernel_shape, pool, options = CASES[case]
    # No exact ties here: a finite difference across a tie measures neither side.
    x = RNG.standard_normal(shape)
    kernel = RNG.standard_normal(kernel_shape)
    bias = RNG.standard_normal(kernel_shape[-1])

    def fn(x, k, b):
        return conv_max_pool(x, k, b, pool_size=pool, relu=relu, **options)

    gradcheck(fn, x, kernel, bias, name=f"conv_max_pool{case}")


@pytest.mark.parametrize("op", ["fused", "conv"])
def test_gradchecks_with_enough_rows_for_the_matrix_vector_bias_gradient(op):
    # 8 x 12 x 12 = 1,152 pooled rows (and 4,608 convolution rows): the bias gradient is
    # then summed by ones @ g (ops._util.sum_rows), not by NumPy's reduction.
    x = RNG.standard_normal((8, 26, 26, 1))
    kernel = RNG.standard_normal((3, 3, 1, 2))
    bias = RNG.standard_normal(2)

    def fn(x, k, b):
        if op == "fused":
            return conv_max_pool(x, k, b, pool_size=2, relu=True)
        return fused_conv(x, k, b)

    gradcheck(fn, x, kernel, bias, name=f"{op} with many rows")


def test_fused_without_bias_and_with_only_the_kernel_trainable():
    x, kernel = RNG.standard_normal((2, 6, 6, 3)), RNG.standard_normal((3, 3, 3, 2))
    gradcheck(lambda x, k: conv_max_pool(x, k, pool_size=2, relu=True), x, kernel)
    variable = Variable(kernel)
    with GradientTape() as tape:
        y = conv_max_pool(Tensor(x), variable, pool_size=2)
    (gk,) = tape.gradient(dn.ops.sum(y), [variable])
    assert gk.shape == kernel.shape


def test_ties_route_to_the_first_maximum():
    # A constant input: every convolution output in a window is equal, so each window's
    # gradient goes to its top-left output, which reads the top-left 1x1 "kernel" pixel.
    x = np.ones((1, 4, 4, 1))
    kernel = np.ones((1, 1, 1, 1))
    variable = Variable(x)
    with GradientTape() as tape:
        y = conv_max_pool(variable, Tensor(kernel), pool_size=2)
    (gx,) = tape.gradient(dn.ops.sum(y), [variable])
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(gx.data[0, :, :, 0], expected)


def test_uncovered_outputs_get_no_gradient():
    # A 5x5 output pooled 2x2 leaves its last row and column out: the input pixels only
    # they read get a zero gradient, as with the unfused max pooling.
    x, kernel, bias = _inputs((1, 7, 7, 1), (3, 3, 1, 2))
    _, grads = _value_and_grads(
        lambda x, k, b: conv_max_pool(x, k, b, pool_size=2, relu=True), x, kernel, bias
    )
    assert np.all(grads[0][0, 6, :, 0] == 0) and np.all(grads[0][0, :, 6, 0] == 0)


def test_errors_name_the_op_and_shapes():
    x, kernel, bias = _inputs((1, 5, 5, 2), (3, 3, 2, 4))
    with pytest.raises(
        ValueError, match=r"conv_max_pool: the input has 2 channels.*\(3, 3, 3, 4\)"
    ):
        conv_max_pool(x, np.zeros((3, 3, 3, 4)))
    with pytest.raises(ValueError, match=r"pool size \(4, 4\) does not fit.*\(3, 3\)"):
        conv_max_pool(x, kernel, bias, pool_size=4)
    with pytest.raises(ValueError, match=r"bias of shape \(4,\)"):
        conv_max_pool(x, kernel, np.zeros(3))
    big, k2, _ = _inputs((1, 19, 19, 1), (3, 3, 1, 2))
    with pytest.raises(ValueError, match=r"17 x 17 = 289 places.*256.*separate ops"):
        conv_max_pool(big, k2, pool_size=17)


def test_the_largest_pool_window_it_indexes_equals_the_unfused_ops():
    x, kernel, bias = _inputs((2, 18, 18, 2), (3, 3, 2, 3))
    fused = conv_max_pool(x, kernel, bias, pool_size=16, relu=True)
    unfused = max_pool(fused_conv(x, kernel, bias, relu=True), 16)
    np.testing.assert_array_equal(fused.data, unfused.data)


# --- the Sequential fusion ----------------------------------------------------------------
def _cnn(**conv_options):
    return dn.keras.Sequential(
        [
            dn.keras.Input((12, 12, 3)),
            Conv2D(4, 3, activation="relu", **conv_options),
            MaxPooling2D(2),
            Conv2D(5, 3),
            MaxPooling2D(2),
            dn.keras.layers.Flatten(),
            dn.keras.layers.Dense(3),
        ]
    )


def _layer_by_layer(model, x):
    for layer in model.layers:
        x = layer(x)
    return x


def _nodes(tensor):
    """The primitive types in the graph that produced ``tensor``."""
    seen, stack, kinds = set(), [tensor], set()
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        kinds.add(type(ctx).__name__)
        stack.extend(p for p in ctx.inputs or () if isinstance(p, Tensor))
    return kinds


def _model_value_and_grads(fn, model, x):
    """The output, the weights' gradients and the primitives that ran (read before the
    backward pass frees the graph)."""
    with GradientTape() as tape:
        y = fn(x)
        loss = dn.ops.sum(y * y)
    kinds = _nodes(y)
    return y, tape.gradient(loss, model.trainable_weights), kinds


def test_sequential_fuses_conv_and_pool_with_the_same_values_and_gradients():
    dn.keras.utils.set_random_seed(1)
    model = _cnn()
    x = RNG.standard_normal((4, 12, 12, 3)).astype(np.float32)
    x[:, :5] = 0.0
    fused, fused_grads, kinds = _model_value_and_grads(lambda x: model(x, training=True), model, x)
    plain, plain_grads, plain_kinds = _model_value_and_grads(
        lambda x: _layer_by_layer(model, x), model, x
    )
    assert "ConvMaxPool" in kinds and "MaxPool" not in kinds
    assert "ConvMaxPool" not in plain_kinds
    np.testing.assert_allclose(fused.data, plain.data, rtol=1e-5, atol=1e-6)
    for got, expected in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(got.data, expected.data, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "pool_layer",
    [
        MaxPooling2D(2, padding="same"),
        MaxPooling2D(2, strides=1),
        MaxPooling2D(2, data_format="channels_first"),
        MaxPooling2D(17),
    ],
    ids=["same", "overlapping", "channels_first", "over_256_places"],
)
def test_pairs_that_are_not_fused(pool_layer):
    size = 8 if pool_layer.pool_size[0] < 8 else pool_layer.pool_size[0] + 2
    model = dn.keras.Sequential(
        [dn.keras.Input((size, size, 3)), Conv2D(4, 3, activation="relu"), pool_layer]
    )
    y = model(np.ones((2, size, size, 3), np.float32))
    assert "ConvMaxPool" not in _nodes(y)


def test_other_activations_subclasses_and_regularizers_are_not_fused():
    class MyConv(Conv2D):
        def call(self, inputs):
            return super().call(inputs) * 2.0

    for conv in (
        Conv2D(4, 3, activation="tanh"),
        MyConv(4, 3),
        Conv2D(4, 3, activity_regularizer="l2"),
        Conv2D(4, 3, groups=1, data_format="channels_last", dilation_rate=1),
    ):
        model = dn.keras.Sequential([dn.keras.Input((8, 8, 3)), conv, MaxPooling2D()])
        x = RNG.standard_normal((2, 8, 8, 3)).astype(np.float32)
        y = model(x)
        expected = _layer_by_layer(model, x)
        # a fused shallow window is summed directly (csrc/shallow.c), not by BLAS
        np.testing.assert_allclose(y.data, expected.data, rtol=1e-5, atol=1e-6)
        fused = "ConvMaxPool" in _nodes(y)
        assert fused == (
            type(conv) is Conv2D
            and conv.activity_regularizer is None
            and conv.activation is dn.layers.activations.linear
        )


def test_fused_model_still_reports_the_layers_input_errors():
    model = _cnn()
    model(np.zeros((1, 12, 12, 3), np.float32))
    with pytest.raises(
        ValueError, match=r"conv2d.*expected axis -1 of input shape to have value 3"
    ):
        model(np.zeros((1, 12, 12, 2), np.float32))


def test_fused_sequential_trains_like_the_unfused_one():
    """One fit epoch with the fused model equals training the same weights on a model
    whose pooling cannot be fused (a subclass with the same maths)."""

    class PlainPool(MaxPooling2D):
        pass

    def build(pool_cls):
        dn.keras.utils.set_random_seed(3)
        model = dn.keras.Sequential(
            [
                dn.keras.Input((10, 10, 1)),
                Conv2D(3, 3, activation="relu"),
                pool_cls(2),
                dn.keras.layers.Flatten(),
                dn.keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    x = RNG.random((64, 10, 10, 1)).astype(np.float32)
    y = (x[:, :5].mean(axis=(1, 2, 3)) > x[:, 5:].mean(axis=(1, 2, 3))).astype("int64")
    fused, plain = build(MaxPooling2D), build(PlainPool)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    fused.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_registered_as_a_primitive():
    from dendrite.core import OP_REGISTRY

    assert OP_REGISTRY["conv_max_pool"] is ConvMaxPool


# --- the functional fusion ----------------------------------------------------------------
def _functional(branch_off: bool = False):
    inputs = dn.keras.Input((12, 12, 3))
    conv = Conv2D(4, 3, activation="relu")(inputs)
    pooled = MaxPooling2D(2)(conv)
    x = dn.keras.layers.Flatten()(pooled)
    outputs = [dn.keras.layers.Dense(3)(x)]
    if branch_off:  # the convolution's output is used twice: no fusion
        outputs.append(dn.keras.layers.GlobalAveragePooling2D()(conv))
    return dn.keras.Model(inputs, outputs if branch_off else outputs[0])


@pytest.mark.parametrize("branch_off", [False, True])
def test_functional_model_fuses_only_a_privately_used_conv_output(branch_off):
    dn.keras.utils.set_random_seed(2)
    model = _functional(branch_off)
    x = RNG.standard_normal((3, 12, 12, 3)).astype(np.float32)
    x[:, :4] = 0.0

    def by_layers(x):
        values = {}
        conv, pool, flatten, dense = [
            layer for layer in model.layers if not isinstance(layer, dn.keras.layers.InputLayer)
        ][:4]
        values["conv"] = conv(x)
        out = dense(flatten(pool(values["conv"])))
        return out

    first = (lambda y: y[0]) if branch_off else (lambda y: y)
    fused, grads, kinds = _model_value_and_grads(lambda x: first(model(x)), model, x)
    plain, plain_grads, _ = _model_value_and_grads(by_layers, model, x)
    assert ("ConvMaxPool" in kinds) == (not branch_off)
    np.testing.assert_allclose(fused.data, plain.data, rtol=1e-5, atol=1e-6)
    if not branch_off:
        for got, expected in zip(grads, plain_grads):
            np.testing.assert_allclose(got.data, expected.data, rtol=1e-4, atol=1e-5)


def test_functional_model_keeps_a_conv_output_that_is_a_model_output():
    inputs = dn.keras.Input((8, 8, 1))
    conv = Conv2D(2, 3)(inputs)
    pooled = MaxPooling2D(2)(conv)
    model = dn.keras.Model(inputs, [conv, pooled])
    conv_out, pooled_out = model(np.ones((1, 8, 8, 1), np.float32))
    assert conv_out.shape == (1, 6, 6, 2) and pooled_out.shape == (1, 3, 3, 2)


def test_empty_and_single_sample_batches_through_a_fused_cnn():
    model = _cnn()
    assert model.predict(np.zeros((0, 12, 12, 3), "float32"), verbose=0).shape == (0, 3)
    assert model.predict(np.ones((1, 12, 12, 3), "float64"), verbose=0).shape == (1, 3)
