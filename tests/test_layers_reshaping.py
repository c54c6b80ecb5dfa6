"""Reshaping layers: ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D, Permute,
RepeatVector (values against NumPy, gradchecks in float64, configs, errors; bilinear
upsampling against PyTorch when it is installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Permute,
    RepeatVector,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from dendrite.testing import gradcheck

RNG = np.random.default_rng(5)


@pytest.mark.parametrize(
    "layer,shape,expected",
    [
        (
            lambda: ZeroPadding2D(1),
            (2, 2, 3, 2),
            lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))),
        ),
        (
            lambda: ZeroPadding2D((1, 2)),
            (2, 2, 3, 2),
            lambda x: np.pad(x, ((0, 0), (1, 1), (2, 2), (0, 0))),
        ),
        (
            lambda: ZeroPadding2D(((0, 1), (2, 0)), data_format="channels_first"),
            (2, 2, 3, 2),
            lambda x: np.pad(x, ((0, 0), (0, 0), (0, 1), (2, 0))),
        ),
        (lambda: ZeroPadding1D((2, 1)), (2, 3, 2), lambda x: np.pad(x, ((0, 0), (2, 1), (0, 0)))),
        (lambda: Cropping1D((1, 2)), (2, 6, 3), lambda x: x[:, 1:4]),
        (lambda: Cropping2D(1), (2, 5, 6, 2), lambda x: x[:, 1:4, 1:5]),
        (lambda: Cropping2D(((1, 0), (0, 2))), (2, 5, 6, 2), lambda x: x[:, 1:, :4]),
        (
            lambda: Cropping2D((1, 2), data_format="channels_first"),
            (2, 2, 5, 6),
            lambda x: x[:, :, 1:4, 2:4],
        ),
        (lambda: UpSampling1D(3), (2, 4, 2), lambda x: np.repeat(x, 3, axis=1)),
        (
            lambda: UpSampling2D((2, 3)),
            (2, 3, 2, 2),
            lambda x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2),
        ),
        (
            lambda: UpSampling2D(2, data_format="channels_first"),
            (2, 2, 3, 2),
            lambda x: np.repeat(np.repeat(x, 2, axis=2), 2, axis=3),
        ),
        (lambda: Permute((2, 1)), (2, 3, 4), lambda x: np.transpose(x, (0, 2, 1))),
        (lambda: Permute((3, 1, 2)), (2, 3, 4, 5), lambda x: np.transpose(x, (0, 3, 1, 2))),
        (lambda: RepeatVector(3), (2, 4), lambda x: np.repeat(x[:, None], 3, axis=1)),
    ],
)
def test_values_shapes_and_gradients(layer, shape, expected):
    instance = layer()
    x = RNG.standard_normal(shape)
    out = instance(x)
    np.testing.assert_allclose(out.data, expected(x).astype(np.float32))
    none_batch = instance.compute_output_shape((None, *shape[1:]))
    assert none_batch == (None, *out.shape[1:])
    as_float64 = type(instance).from_config({**instance.get_config(), "dtype": "float64"})
    gradcheck(as_float64, x, name=instance.name)


def test_upsampling2d_bilinear_matches_half_pixel_interpolation():
    x = np.array([0.0, 1.0, 3.0]).reshape(1, 1, 3, 1)
    out = UpSampling2D((1, 2), interpolation="bilinear", dtype="float64")(x)
    np.testing.assert_allclose(out.data.ravel(), [0.0, 0.25, 0.75, 1.5, 2.5, 3.0])
    layer = UpSampling2D((2, 3), interpolation="bilinear", dtype="float64")
    gradcheck(layer, RNG.standard_normal((2, 3, 4, 2)))


def test_upsampling2d_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)  # channels_first
    layer = UpSampling2D((2, 3), data_format="channels_first", interpolation="bilinear")
    expected = torch.nn.functional.interpolate(
        torch.tensor(x), scale_factor=(2, 3), mode="bilinear", align_corners=False
    )
    np.testing.assert_allclose(layer(x).data, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: ZeroPadding2D(((1, 2), (3, 4)), data_format="channels_first"),
        lambda: ZeroPadding1D(3),
        lambda: Cropping2D(((1, 0), (2, 3))),
        lambda: Cropping1D(2),
        lambda: UpSampling2D((2, 3), interpolation="bilinear"),
        lambda: UpSampling1D(4),
        lambda: Permute((2, 3, 1)),
        lambda: RepeatVector(5),
    ],
)
def test_config_round_trip(layer):
    original = layer()
    config = json.loads(json.dumps(original.get_config()))
    clone = type(original).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config


def test_errors_name_layer_and_shapes():
    with pytest.raises(
        ValueError, match=r"'crop'.*must be smaller than the input shape.*\(2, 3, 8, 1\)"
    ):
        Cropping2D(((1, 2), (0, 0)), name="crop")(np.zeros((2, 3, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"'rv'.*expected ndim=2, found ndim=3"):
        RepeatVector(2, name="rv")(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"'zp'.*expected ndim=4"):
        ZeroPadding2D(name="zp")(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"'perm'.*expected ndim=3, found ndim=4"):
        Permute((2, 1), name="perm")(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="consecutive and start from 1"):
        Permute((0, 1))
    with pytest.raises(ValueError, match="interpolation"):
        UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="padding"):
        ZeroPadding2D((1, 2, 3))
    with pytest.raises(TypeError, match="RepeatVector"):
        RepeatVector(0)
