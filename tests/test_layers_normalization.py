"""BatchNormalization, LayerNormalization, GroupNormalization: Keras semantics, gradients,
moving statistics, configs, and (optionally) parity with PyTorch."""

import numpy as np
import pytest

from dendrite.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
)
from dendrite.testing import gradcheck


def rng(seed=0):
    return np.random.default_rng(seed)


def reference_norm(x, axes, eps, gamma=1.0, beta=0.0):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def with_params(layer, x):
    """Build ``layer`` on ``x`` and give gamma and beta random values."""
    layer(x)
    r = rng(7)
    for w in (layer.gamma, layer.beta):
        if w is not None:
            w.data[...] = r.normal(size=w.shape) + (1.0 if w is layer.gamma else 0.0)
    return layer


# --- BatchNormalization -----------------------------------------------------------------


def test_batchnorm_keras_defaults_weights_and_order():
    bn = BatchNormalization()
    assert (bn.axis, bn.momentum, bn.epsilon, bn.center, bn.scale) == (-1, 0.99, 1e-3, True, True)
    bn(np.ones((2, 3), "float32"))
    names = [w.name for w in bn.weights]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    gamma, beta, mean, var = bn.get_weights()
    assert all(w.shape == (3,) and w.dtype == np.float32 for w in (gamma, beta, mean, var))
    assert np.all(gamma == 1) and np.all(beta == 0) and np.all(mean == 0) and np.all(var == 1)


@pytest.mark.parametrize(
    "shape, axis", [((16, 3), -1), ((8, 5, 3), -1), ((4, 5, 6, 3), -1), ((4, 3, 5, 6), 1)]
)
def test_batchnorm_training_uses_batch_statistics_and_updates_moving_ones(shape, axis):
    x = (rng().normal(size=shape) * 2 + 0.5).astype("float32")
    bn = with_params(BatchNormalization(axis=axis, momentum=0.9), x)
    gamma, beta, mean0, var0 = [w.copy() for w in bn.get_weights()]
    out = bn(x, training=True).numpy()
    channel = axis % len(shape)
    axes = tuple(a for a in range(len(shape)) if a != channel)
    bshape = [1] * len(shape)
    bshape[channel] = shape[channel]
    expected = reference_norm(x, axes, 1e-3, gamma.reshape(bshape), beta.reshape(bshape))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # Moving statistics, in place, with the biased batch variance.
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), 0.9 * mean0 + 0.1 * x.mean(axis=axes), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), 0.9 * var0 + 0.1 * x.var(axis=axes), rtol=1e-5
    )
    # Inference uses the moving statistics.
    mm = bn.moving_mean.numpy().reshape(bshape)
    mv = bn.moving_variance.numpy().reshape(bshape)
    expected = gamma.reshape(bshape) * (x - mm) / np.sqrt(mv + 1e-3) + beta.reshape(bshape)
    before = bn.moving_mean.numpy().copy()
    np.testing.assert_allclose(bn(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_batchnorm_moving_statistics_converge_and_are_the_same_variables():
    bn = BatchNormalization(momentum=0.5)
    x = (rng(1).normal(size=(256, 2)) * [1.0, 3.0] + [2.0, -1.0]).astype("float32")
    bn(x)
    mean_var, var_var = bn.moving_mean, bn.moving_variance
    for _ in range(30):
        bn(x, training=True)
    assert bn.moving_mean is mean_var and bn.moving_variance is var_var
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(0), rtol=1e-4)
    # Now inference and training agree on this batch.
    np.testing.assert_allclose(bn(x).numpy(), bn(x, training=True).numpy(), atol=1e-4)


def test_batchnorm_frozen_layer_runs_in_inference_mode():
    x = rng(2).normal(size=(8, 3)).astype("float32") + 5
    bn = BatchNormalization()
    bn(x)
    bn.trainable = False
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    out = bn(x, training=True).numpy()
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-6)
    assert np.all(bn.moving_mean.numpy() == 0)


def test_batchnorm_without_center_and_scale():
    x = rng(3).normal(size=(6, 4)).astype("float32")
    bn = BatchNormalization(center=False, scale=False)
    out = bn(x, training=True).numpy()
    assert [w.name for w in bn.weights] == ["moving_mean", "moving_variance"]
    np.testing.assert_allclose(out, reference_norm(x, (0,), 1e-3), rtol=1e-4, atol=1e-5)
    mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(bn(x).numpy(), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-5)


@pytest.mark.parametrize("shape, axis", [((5, 3), -1), ((3, 4, 2), -1), ((2, 3, 2, 2), 1)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(shape, axis, training):
    x = rng(4).normal(size=shape)
    bn = with_params(BatchNormalization(axis=axis, dtype="float64"), x)
    if not training:
        bn.moving_mean.data[...] = rng(5).normal(size=bn.moving_mean.shape)
        bn.moving_variance.data[...] = rng(6).uniform(0.5, 2, size=bn.moving_variance.shape)
    saved = [w.copy() for w in bn.get_weights()]

    def run(inputs, gamma, beta):
        # Route the gradient through the given tensors.
        keep = bn.gamma, bn.beta
        bn.gamma, bn.beta = gamma, beta
        try:
            return bn(inputs, training=training)
        finally:
            bn.gamma, bn.beta = keep

    gradcheck(run, x, saved[0], saved[1], mode="elementwise")


def test_batchnorm_rejects_wrong_channels_and_rank():
    bn = BatchNormalization(name="bn_probe")
    bn(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError) as info:
        bn(np.ones((2, 5), "float32"))
    assert "bn_probe" in str(info.value) and "(2, 5)" in str(info.value)
    with pytest.raises(ValueError, match="ndim"):
        bn(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="out of range"):
        BatchNormalization(axis=3)(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="synchronized"):
        BatchNormalization(synchronized=True)


def test_batchnorm_mask_excludes_padded_positions_from_statistics():
    x = rng(8).normal(size=(4, 6, 3)).astype("float32")
    mask = np.ones((4, 6), bool)
    mask[:, 4:] = False
    x[~mask] = 100.0
    bn = BatchNormalization(momentum=0.0)
    out = bn(x, training=True, mask=mask).numpy()
    kept = x[mask]
    np.testing.assert_allclose(bn.moving_mean.numpy(), kept.mean(0), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), kept.var(0), rtol=1e-3)
    np.testing.assert_allclose(out[mask], reference_norm(kept, (0,), 1e-3), atol=1e-4)
    with pytest.raises(ValueError, match="one dimension less"):
        bn(x, training=True, mask=np.ones((4, 6, 3), bool))


def test_batchnorm_config_round_trip():
    bn = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False, name="bn_cfg")
    config = bn.get_config()
    clone = BatchNormalization.from_config(config)
    assert clone.get_config() == config
    assert config["axis"] == 1 and config["momentum"] == 0.9 and config["center"] is False
    assert config["gamma_initializer"]["class_name"] == "Ones"


def test_batchnorm_trains_in_a_model():
    import dendrite as tf
    from dendrite.layers.core import Dense

    tf.utils.set_random_seed(0)
    r = rng(9)
    x = (r.normal(size=(128, 4)) * [10, 0.1, 5, 1] + [50, -3, 0, 2]).astype("float32")
    y = (x[:, 0] > 50).astype("int64")
    model = tf.keras.Sequential(
        [Dense(8, activation="relu", input_shape=(4,)), BatchNormalization(), Dense(2)]
    )
    model.compile(
        optimizer=tf.optimizers.Adam(0.01),
        loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    bn = model.layers[1]
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.any(bn.moving_mean.numpy() != 0)


# --- LayerNormalization -----------------------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((2, 3, 5), -1), ((2, 3, 4), [1, 2])])
def test_layernorm_matches_reference(shape, axis):
    x = (rng(10).normal(size=shape) * 3 + 1).astype("float32")
    ln = with_params(LayerNormalization(axis=axis), x)
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, list) else [axis]))
    bshape = [shape[a] if a in axes else 1 for a in range(len(shape))]
    gamma, beta = ln.get_weights()
    assert gamma.shape == tuple(shape[a] for a in axes)
    expected = reference_norm(x, axes, 1e-3, gamma.reshape(bshape), beta.reshape(bshape))
    np.testing.assert_allclose(ln(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    # Same in training mode: no batch statistics.
    np.testing.assert_allclose(ln(x, training=True).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_layernorm_gradients(axis):
    x = rng(11).normal(size=(3, 2, 4))
    ln = with_params(LayerNormalization(axis=axis, dtype="float64"), x)

    def run(inputs, gamma, beta):
        keep = ln.gamma, ln.beta
        ln.gamma, ln.beta = gamma, beta
        try:
            return ln(inputs)
        finally:
            ln.gamma, ln.beta = keep

    gradcheck(run, x, ln.gamma.numpy().copy(), ln.beta.numpy().copy(), mode="elementwise")


def test_layernorm_rms_scaling_and_no_params():
    """rms_scaling=True computes what Keras computes for it (the variance about the mean,
    not the mean square), and warns as Keras does: RMSNormalization is the RMS layer."""
    x = rng(12).normal(size=(3, 5)).astype("float32") + 2  # a mean far from 0 tells them apart
    with pytest.warns(UserWarning, match="RMSNormalization"):
        rms = LayerNormalization(rms_scaling=True)
    out = rms(x).numpy()
    assert [w.name for w in rms.weights] == ["gamma"]
    expected = x / np.sqrt(x.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    plain = LayerNormalization(center=False, scale=False)
    np.testing.assert_allclose(plain(x).numpy(), reference_norm(x, (1,), 1e-3), atol=1e-5)
    assert plain.weights == []
    with pytest.warns(UserWarning):
        gradcheck(lambda t: LayerNormalization(rms_scaling=True, dtype="float64")(t), x)


def test_layernorm_config_and_errors():
    ln = LayerNormalization(axis=[1, 2], epsilon=1e-5, name="ln_cfg")
    config = ln.get_config()
    assert LayerNormalization.from_config(config).get_config() == config
    assert config["axis"] == [1, 2] and config["epsilon"] == 1e-5
    with pytest.raises(TypeError, match="axis"):
        LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="out of range"):
        LayerNormalization(axis=4)(np.ones((2, 3), "float32"))


def test_normalization_layers_pass_masks_through():
    from dendrite.core import Tensor

    x = Tensor(rng(13).normal(size=(2, 3, 4)).astype("float32"))
    x._keras_mask = Tensor(np.array([[True, True, False], [True, False, False]]))
    for layer in (LayerNormalization(), GroupNormalization(groups=2), BatchNormalization()):
        out = layer(x)
        np.testing.assert_array_equal(out._keras_mask.numpy(), x._keras_mask.numpy())


# --- GroupNormalization -----------------------------------------------------------------


@pytest.mark.parametrize("shape, groups", [((2, 5, 6), 3), ((2, 4, 4, 8), 4), ((3, 6), 2)])
def test_groupnorm_matches_reference(shape, groups):
    x = (rng(14).normal(size=shape) * 2 - 1).astype("float32")
    gn = with_params(GroupNormalization(groups=groups), x)
    gamma, beta = gn.get_weights()
    channels = shape[-1]
    grouped = x.reshape(*shape[:-1], groups, channels // groups)
    axes = tuple(range(1, len(shape) - 1)) + (len(shape),)
    normed = reference_norm(grouped, axes, 1e-3).reshape(shape)
    np.testing.assert_allclose(gn(x).numpy(), normed * gamma + beta, rtol=1e-4, atol=1e-5)


def test_groupnorm_gradients_channels_first_and_instance_norm():
    x = rng(15).normal(size=(2, 4, 3))
    gn = with_params(GroupNormalization(groups=2, axis=1, dtype="float64"), x)

    def run(inputs, gamma, beta):
        keep = gn.gamma, gn.beta
        gn.gamma, gn.beta = gamma, beta
        try:
            return gn(inputs)
        finally:
            gn.gamma, gn.beta = keep

    gradcheck(run, x, gn.gamma.numpy().copy(), gn.beta.numpy().copy(), mode="elementwise")
    instance = GroupNormalization(groups=-1)
    y = instance(x.astype("float32"))
    assert instance.groups == 3 and y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), reference_norm(x, (1,), 1e-3), atol=1e-5)


def test_groupnorm_errors_and_config():
    with pytest.raises(ValueError, match=r"groups \(4\).*channels \(6\)"):
        GroupNormalization(groups=4)(np.ones((2, 6), "float32"))
    with pytest.raises(ValueError, match="cannot be more than"):
        GroupNormalization(groups=8)(np.ones((2, 6), "float32"))
    gn = GroupNormalization(groups=32, name="gn_probe")
    with pytest.raises(ValueError, match="gn_probe"):
        gn(np.ones((2, 3, 16), "float32"))
    gn = GroupNormalization(groups=2, axis=1, epsilon=1e-5, name="gn_cfg")
    config = gn.get_config()
    assert GroupNormalization.from_config(config).get_config() == config
    assert config["groups"] == 2 and config["axis"] == 1


# --- PyTorch parity (optional) ----------------------------------------------------------


def test_parity_with_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng(16).normal(size=(8, 6, 5, 4)).astype("float32")
    xt = torch.tensor(x)

    bn = with_params(BatchNormalization(axis=1, momentum=0.9), x)
    gamma, beta = (torch.tensor(w) for w in bn.get_weights()[:2])
    running_mean = torch.zeros(6)
    running_var = torch.ones(6)
    expected = F.batch_norm(
        xt, running_mean, running_var, gamma, beta, training=True, momentum=0.1, eps=1e-3
    )
    np.testing.assert_allclose(bn(x, training=True).numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), running_mean.numpy(), atol=1e-6)
    # PyTorch's running variance uses the unbiased estimate; Keras' the biased one.
    n = x.size // 6
    unbiased = (bn.moving_variance.numpy() - 0.9) / 0.1 * n / (n - 1)
    np.testing.assert_allclose(0.9 + 0.1 * unbiased, running_var.numpy(), rtol=1e-5)

    ln = with_params(LayerNormalization(axis=[2, 3]), x)
    gamma, beta = (torch.tensor(w) for w in ln.get_weights())
    expected = F.layer_norm(xt, (5, 4), gamma, beta, eps=1e-3)
    np.testing.assert_allclose(ln(x).numpy(), expected.numpy(), atol=1e-5)

    gn = with_params(GroupNormalization(groups=3, axis=1), x)
    gamma, beta = (torch.tensor(w) for w in gn.get_weights())
    expected = F.group_norm(xt, 3, gamma, beta, eps=1e-3)
    np.testing.assert_allclose(gn(x).numpy(), expected.numpy(), atol=1e-5)


def test_gradient_parity_with_torch():
    torch = pytest.importorskip("torch")
    from dendrite.core import Tensor

    x = rng(17).normal(size=(16, 5)).astype("float32")
    upstream = rng(18).normal(size=(16, 5)).astype("float32")
    bn = with_params(BatchNormalization(), x)
    xt = torch.tensor(x, requires_grad=True)
    gamma = torch.tensor(bn.gamma.numpy(), requires_grad=True)
    beta = torch.tensor(bn.beta.numpy(), requires_grad=True)
    out = torch.nn.functional.batch_norm(xt, None, None, gamma, beta, training=True, eps=1e-3)
    out.backward(torch.tensor(upstream))
    xd = Tensor(x, requires_grad=True)
    bn(xd, training=True).backward(upstream)
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(bn.gamma.grad, gamma.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(bn.beta.grad, beta.grad.numpy(), atol=1e-5)


def test_shape_only_build_creates_weights():
    # A model built from shapes (summary, loading a saved model) builds each layer through
    # compute_output_shape.
    import dendrite as tf
    from dendrite.layers.embedding import Embedding

    model = tf.keras.Sequential(
        [Embedding(10, 4), LayerNormalization(), BatchNormalization(), GroupNormalization(2)]
    )
    model.build((None, 5))
    assert [len(layer.weights) for layer in model.layers] == [1, 2, 4, 2]
    assert BatchNormalization().compute_output_shape((None, 3, 2)) == (None, 3, 2)
