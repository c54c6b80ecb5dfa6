"""SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, ActivityRegularization."""

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.regularization import (
    ActivityRegularization,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from dendrite.testing import gradcheck

R = np.random.default_rng(0)


@pytest.mark.parametrize(
    "cls, shape, kwargs, channel_axis",
    [
        (SpatialDropout1D, (16, 7, 32), {}, 2),
        (SpatialDropout2D, (16, 5, 6, 32), {}, 3),
        (SpatialDropout2D, (16, 32, 5, 6), {"data_format": "channels_first"}, 1),
        (SpatialDropout3D, (8, 3, 4, 2, 32), {}, 4),
        (SpatialDropout3D, (8, 32, 3, 4, 2), {"data_format": "channels_first"}, 1),
    ],
)
def test_spatial_dropout_drops_whole_channels(cls, shape, kwargs, channel_axis):
    x = (R.uniform(0.5, 1.5, size=shape)).astype("float32")
    layer = cls(0.5, seed=1, **kwargs)
    np.testing.assert_array_equal(layer(x).numpy(), x)  # inference: identity
    out = layer(x, training=True).numpy()
    ratio = np.moveaxis(out / x, channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    # Each (sample, channel) is either all dropped or all scaled by 1 / (1 - rate).
    first = ratio[..., :1]
    assert np.all(np.isclose(ratio, first)) and set(np.unique(first.round(5))) <= {0.0, 2.0}
    dropped = np.mean(first == 0)
    assert 0.3 < dropped < 0.7


def test_spatial_dropout_gradient_uses_the_same_mask_and_rank_errors():
    x = Tensor(R.normal(size=(4, 3, 5)).astype("float32"), requires_grad=True)
    layer = SpatialDropout1D(0.4, seed=3)
    out = layer(x, training=True)
    out.backward(np.ones(out.shape, "float32"))
    np.testing.assert_allclose(x.grad, out.numpy() / x.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="expected ndim=3"):
        SpatialDropout1D(0.5)(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="expected ndim=4"):
        SpatialDropout2D(0.5)(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="rate"):
        SpatialDropout1D(1.5)
    with pytest.raises(ValueError, match="data_format"):
        SpatialDropout2D(0.5, data_format="channels_middle")


def test_spatial_dropout_config_round_trip():
    for layer in (
        SpatialDropout1D(0.2, seed=4),
        SpatialDropout2D(0.3, data_format="channels_first"),
        SpatialDropout3D(0.1),
    ):
        config = layer.get_config()
        assert "noise_shape" not in config
        clone = type(layer).from_config(config)
        assert clone.get_config() == config and clone.noise_shape == layer.noise_shape
    assert SpatialDropout2D(0.3, data_format="channels_first").get_config()["data_format"] == (
        "channels_first"
    )


def test_gaussian_noise_training_only_with_the_right_spread():
    x = np.full((200, 100), 3.0, "float32")
    layer = GaussianNoise(0.5, seed=0)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    noise = layer(x, training=True).numpy() - x
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    assert layer(x, training=True).dtype == np.float32
    # Seeded layers repeat their noise.
    again = GaussianNoise(0.5, seed=0)(x, training=True).numpy() - x
    np.testing.assert_array_equal(again, noise)
    with pytest.raises(ValueError, match="stddev"):
        GaussianNoise(1.5)


def test_gaussian_dropout_has_mean_one_multiplicative_noise():
    x = np.full((300, 100), 2.0, "float32")
    layer = GaussianDropout(0.2, seed=0)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    factor = layer(x, training=True).numpy() / x
    assert abs(factor.mean() - 1) < 0.01
    assert abs(factor.std() - np.sqrt(0.2 / 0.8)) < 0.01
    with pytest.raises(ValueError, match="rate"):
        GaussianDropout(1.0)


def test_noise_layers_pass_gradients():
    x = R.normal(size=(3, 4))
    gradcheck(lambda t: GaussianNoise(0.3, seed=5, dtype="float64")(t, training=True), x)
    gradcheck(lambda t: GaussianDropout(0.3, seed=5, dtype="float64")(t, training=True), x)


def test_noise_layers_config_round_trip():
    for layer in (GaussianNoise(0.2, seed=3), GaussianDropout(0.4)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


def test_activity_regularization_adds_penalty_and_passes_through():
    x = R.normal(size=(1, 5)).astype("float32")
    layer = ActivityRegularization(l1=0.1, l2=0.2)
    out = layer(x)
    np.testing.assert_array_equal(out.numpy(), x)
    (penalty,) = layer.losses
    expected = 0.1 * np.abs(x).sum() + 0.2 * (x**2).sum()
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)
    # The penalty's gradient reaches the input.
    t = Tensor(x.astype("float64"), requires_grad=True)
    layer64 = ActivityRegularization(l1=0.1, l2=0.2, dtype="float64")
    layer64(t)
    layer64.losses[0].backward()
    np.testing.assert_allclose(t.grad, 0.1 * np.sign(x) + 0.4 * x, rtol=1e-5)
    # Fresh penalties each call (not accumulated over calls).
    layer(x)
    assert len(layer.losses) == 1


def test_activity_regularization_config_and_masks():
    layer = ActivityRegularization(l1=0.01)
    config = layer.get_config()
    assert config["l1"] == 0.01 and config["l2"] == 0.0
    assert ActivityRegularization.from_config(config).get_config() == config
    x = Tensor(np.ones((2, 3, 4), "float32"))
    x._keras_mask = Tensor(np.array([[True, False, True]] * 2))
    for other in (GaussianNoise(0.1), SpatialDropout1D(0.2)):
        assert other(x, training=True)._keras_mask is not None
    assert layer(x)._keras_mask is not None
