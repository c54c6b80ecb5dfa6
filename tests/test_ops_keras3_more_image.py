"""keras.ops.image (resize, extract_patches, crop_images, pad_images, rgb_to_grayscale,
rgb_to_hsv, hsv_to_rgb, map_coordinates, affine_transform, gaussian_blur): values against
PyTorch, the standard library and direct constructions, gradients against float64 central
differences, dtypes and errors. The same calls in real Keras:
tests/test_ops_keras3_more_vs_keras.py."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(9)
IMAGES = RNG.uniform(0, 1, (2, 5, 7, 3))


def _torch_resize(images, size, mode, antialias=False):
    torch = pytest.importorskip("torch")
    x = torch.tensor(images).permute(0, 3, 1, 2)
    corners = False if mode in ("bilinear", "bicubic") else None
    out = torch.nn.functional.interpolate(
        x, size=size, mode=mode, align_corners=corners, antialias=antialias
    )
    return out.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("size", [(3, 4), (9, 11), (5, 3), (1, 1)], ids=str)
@pytest.mark.parametrize(
    "interpolation, mode",
    [("bilinear", "bilinear"), ("nearest", "nearest-exact"), ("bicubic", "bicubic")],
)
def test_resize_matches_torch(size, interpolation, mode):
    out = ops.image.resize(Tensor(IMAGES), size, interpolation=interpolation)
    np.testing.assert_allclose(out.data, _torch_resize(IMAGES, size, mode), atol=1e-12)
    if interpolation != "nearest":
        aa = ops.image.resize(Tensor(IMAGES), size, interpolation=interpolation, antialias=True)
        np.testing.assert_allclose(
            aa.data, _torch_resize(IMAGES, size, mode, antialias=True), atol=1e-12
        )


def test_resize_options_gradients_and_dtypes():
    first = IMAGES.transpose(0, 3, 1, 2)
    out = ops.image.resize(first, (4, 4), data_format="channels_first")
    np.testing.assert_allclose(
        out.data, ops.image.resize(IMAGES, (4, 4)).data.transpose(0, 3, 1, 2), atol=1e-12
    )
    assert ops.image.resize(IMAGES[0], (2, 3)).shape == (2, 3, 3)
    cropped = ops.image.resize(IMAGES, (2, 2), crop_to_aspect_ratio=True)
    np.testing.assert_allclose(cropped.data, ops.image.resize(IMAGES[:, :, 1:6], (2, 2)).data)
    padded = ops.image.resize(IMAGES, (7, 7), pad_to_aspect_ratio=True, fill_value=0.5)
    np.testing.assert_allclose(padded.data[:, 0], 0.5)
    np.testing.assert_allclose(padded.data[:, 1:6], IMAGES)
    gradcheck(lambda x: ops.image.resize(x, (3, 4)), IMAGES[:1, :3, :4, :1], mode="elementwise")
    gradcheck(
        lambda x: ops.image.resize(x, (2, 2), interpolation="bicubic", antialias=True),
        IMAGES[:1, :4, :3, :1],
        mode="elementwise",
    )
    ints = (IMAGES * 255).astype("uint8")
    out = ops.image.resize(ints, (3, 3), interpolation="bicubic")
    assert out.dtype == "uint8"
    assert ops.image.resize(IMAGES.astype("float32"), (3, 3)).dtype == "float32"
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.resize(IMAGES, (3, 3), interpolation="lanczos3")
    with pytest.raises(ValueError, match="only one of"):
        ops.image.resize(IMAGES, (3, 3), crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="rank 3"):
        ops.image.resize(IMAGES[0, 0], (3, 3))


def test_extract_patches():
    patches = ops.image.extract_patches(Tensor(IMAGES), 2)
    assert patches.shape == (2, 2, 3, 12)
    np.testing.assert_array_equal(patches.data[1, 1, 2], IMAGES[1, 2:4, 4:6].reshape(-1))
    same = ops.image.extract_patches(Tensor(IMAGES), (3, 2), strides=(2, 3), padding="same")
    assert same.shape == (2, 3, 3, 18)
    dilated = ops.image.extract_patches(Tensor(IMAGES[0]), 2, strides=1, dilation_rate=2)
    np.testing.assert_array_equal(dilated.data[0, 0], IMAGES[0, 0:4:2, 0:4:2].reshape(-1))
    first = ops.image.extract_patches(IMAGES.transpose(0, 3, 1, 2), 2, data_format="channels_first")
    np.testing.assert_allclose(first.data.transpose(0, 2, 3, 1), patches.data)
    gradcheck(lambda x: ops.image.extract_patches(x, 2), IMAGES[:1, :4, :4, :1], mode="elementwise")


def test_crop_and_pad():
    crop = ops.image.crop_images(Tensor(IMAGES), 1, 2, target_height=3, target_width=4)
    np.testing.assert_array_equal(crop.data, IMAGES[:, 1:4, 2:6])
    crop = ops.image.crop_images(
        IMAGES[0], bottom_cropping=1, right_cropping=2, target_height=3, target_width=4
    )
    np.testing.assert_array_equal(crop.data, IMAGES[0, 1:4, 1:5])
    padded = ops.image.pad_images(Tensor(IMAGES), 1, 2, target_height=8, target_width=10)
    assert padded.shape == (2, 8, 10, 3)
    np.testing.assert_array_equal(padded.data[:, 1:6, 2:9], IMAGES)
    assert padded.data.sum() == pytest.approx(IMAGES.sum())
    first = ops.image.pad_images(
        IMAGES.transpose(0, 3, 1, 2),
        bottom_padding=1,
        right_padding=1,
        top_padding=0,
        left_padding=0,
        data_format="channels_first",
    )
    assert first.shape == (2, 3, 6, 8)
    gradcheck(lambda x: ops.image.crop_images(x, 1, 1, 1, 1), IMAGES[:1, :4, :4, :1])
    with pytest.raises(ValueError, match="exactly two"):
        ops.image.pad_images(IMAGES, 1, 1)
    with pytest.raises(ValueError, match="must be >= 0"):
        ops.image.pad_images(IMAGES, 9, 0, target_height=6, target_width=7)
    with pytest.raises(ValueError, match="does not fit"):
        ops.image.crop_images(IMAGES, 4, 0, target_height=3, target_width=2)


def test_colour_spaces():
    grey = ops.image.rgb_to_grayscale(Tensor(IMAGES))
    np.testing.assert_allclose(grey.data[..., 0], IMAGES @ np.array([0.2989, 0.587, 0.114]))
    assert grey.shape == (2, 5, 7, 1)
    assert ops.image.rgb_to_grayscale(IMAGES[..., :1]).shape == (2, 5, 7, 1)
    first = ops.image.rgb_to_grayscale(IMAGES.transpose(0, 3, 1, 2), data_format="channels_first")
    np.testing.assert_allclose(first.data[:, 0], grey.data[..., 0])
    assert ops.image.rgb_to_grayscale((IMAGES * 255).astype("uint8")).dtype == "uint8"
    hsv = ops.image.rgb_to_hsv(Tensor(IMAGES))
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in IMAGES.reshape(-1, 3)])
    np.testing.assert_allclose(hsv.data.reshape(-1, 3), expected, atol=1e-12)
    back = ops.image.hsv_to_rgb(hsv)
    np.testing.assert_allclose(back.data, IMAGES, atol=1e-12)
    expected = np.array([colorsys.hsv_to_rgb(*p) for p in IMAGES.reshape(-1, 3)])
    np.testing.assert_allclose(
        ops.image.hsv_to_rgb(Tensor(IMAGES)).data.reshape(-1, 3), expected, atol=1e-12
    )
    grey_pixels = np.full((1, 2, 2, 3), 0.4)  # no spread: hue and saturation 0
    np.testing.assert_allclose(ops.image.rgb_to_hsv(grey_pixels).data[..., :2], 0.0)
    gradcheck(ops.image.rgb_to_hsv, IMAGES[:1, :2, :2], mode="elementwise")
    gradcheck(ops.image.hsv_to_rgb, IMAGES[:1, :2, :2] * 0.9 + 0.05, mode="elementwise")
    with pytest.raises(ValueError, match="float images"):
        ops.image.rgb_to_hsv(np.ones((2, 2, 3), "uint8"))
    with pytest.raises(ValueError, match="3 \\(RGB\\) or 1"):
        ops.image.rgb_to_grayscale(np.ones((2, 2, 2)))


PLANE = RNG.uniform(0, 1, (5, 6))
COORDS = np.stack(np.meshgrid(np.linspace(-1.3, 5.7, 4), np.linspace(-2.2, 7.4, 5), indexing="ij"))


def _reference_sample(plane, coords, order, mode, cval):
    """Per output point, the corner values read with the mode's index rule (SciPy's
    grid-modes), mixed with the (multi)linear weights."""

    def fix(i, n):
        if mode == "constant":
            return i if 0 <= i < n else None
        if mode == "nearest":
            return min(max(i, 0), n - 1)
        if mode == "wrap":
            return i % n
        if mode == "mirror":
            period = 2 * (n - 1)
            i = abs(i) % period
            return period - i if i >= n else i
        period = 2 * n  # reflect
        i = i % period
        return period - 1 - i if i >= n else i

    out = np.zeros(coords.shape[1:])
    for idx in np.ndindex(*coords.shape[1:]):
        y, x = coords[(0,) + idx], coords[(1,) + idx]
        if order == 0:
            corners = [(int(np.round(y)), int(np.round(x)), 1.0)]
        else:
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            corners = [
                (y0, x0, (1 - fy) * (1 - fx)),
                (y0, x0 + 1, (1 - fy) * fx),
                (y0 + 1, x0, fy * (1 - fx)),
                (y0 + 1, x0 + 1, fy * fx),
            ]
        total = 0.0
        for cy, cx, w in corners:
            iy, ix = fix(cy, plane.shape[0]), fix(cx, plane.shape[1])
            total += w * (cval if iy is None or ix is None else plane[iy, ix])
        out[idx] = total
    return out


@pytest.mark.parametrize("mode", ["constant", "nearest", "wrap", "mirror", "reflect"])
@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates(mode, order):
    out = ops.image.map_coordinates(Tensor(PLANE), COORDS, order, fill_mode=mode, fill_value=0.7)
    expected = _reference_sample(PLANE, COORDS, order, mode, 0.7)
    np.testing.assert_allclose(out.data, expected, atol=1e-12)
    if order == 1:
        gradcheck(lambda p: ops.image.map_coordinates(p, COORDS, 1, fill_mode=mode), PLANE)
        inside = COORDS * 0.5 + 1.0  # away from integer coordinates: smooth in them
        gradcheck(
            lambda c: ops.image.map_coordinates(PLANE, [c[0], c[1]], 1, fill_mode=mode),
            inside + 0.013,
            mode="elementwise",
        )


def test_map_coordinates_errors_and_integers():
    with pytest.raises(ValueError, match="one array per axis"):
        ops.image.map_coordinates(PLANE, COORDS[:1], 1)
    with pytest.raises(NotImplementedError):
        ops.image.map_coordinates(PLANE, COORDS, 3)
    with pytest.raises(ValueError, match="fill_mode"):
        ops.image.map_coordinates(PLANE, COORDS, 1, fill_mode="edge")
    ints = (PLANE * 100).astype("int32")
    out = ops.image.map_coordinates(ints, COORDS, 1)
    assert out.dtype == "int32"


def test_affine_transform():
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], "float64")
    np.testing.assert_allclose(
        ops.image.affine_transform(Tensor(IMAGES), identity).data, IMAGES, atol=1e-12
    )
    shift = np.array([1, 0, 2, 0, 1, 1, 0, 0], "float64")  # reads (x + 2, y + 1)
    out = ops.image.affine_transform(Tensor(IMAGES), shift, interpolation="nearest")
    np.testing.assert_array_equal(out.data[:, :4, :5], IMAGES[:, 1:, 2:])
    np.testing.assert_array_equal(out.data[:, 4:], 0.0)
    wrapped = ops.image.affine_transform(Tensor(IMAGES), shift, fill_mode="wrap")
    np.testing.assert_allclose(wrapped.data, np.roll(IMAGES, (-1, -2), axis=(1, 2)), atol=1e-12)
    batch = np.stack([identity, shift])
    out = ops.image.affine_transform(Tensor(IMAGES), batch, fill_value=0.25)
    np.testing.assert_allclose(out.data[0], IMAGES[0], atol=1e-12)
    np.testing.assert_allclose(out.data[1, 4:], 0.25)
    rotation = np.array([0.9, -0.3, 1.2, 0.25, 0.95, -0.4, 0.01, 0.02])
    first = ops.image.affine_transform(
        IMAGES.transpose(0, 3, 1, 2), rotation, data_format="channels_first"
    )
    last = ops.image.affine_transform(IMAGES, rotation)
    np.testing.assert_allclose(first.data.transpose(0, 2, 3, 1), last.data, atol=1e-12)
    gradcheck(lambda x: ops.image.affine_transform(x, rotation), IMAGES[:1, :3, :4, :1])
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.affine_transform(IMAGES, identity, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"\(8,\)"):
        ops.image.affine_transform(IMAGES, identity[:6])


def test_gaussian_blur():
    torch = pytest.importorskip("torch")
    out = ops.image.gaussian_blur(Tensor(IMAGES), (3, 3), (0.8, 0.8))
    x = torch.tensor(IMAGES).permute(0, 3, 1, 2)
    t = torch.arange(3, dtype=torch.float64) - 1
    k = torch.exp(-0.5 * (t / 0.8) ** 2)
    k = torch.outer(k / k.sum(), k / k.sum())
    expected = torch.nn.functional.conv2d(x, k.expand(3, 1, 3, 3), padding=1, groups=3)
    np.testing.assert_allclose(out.data, expected.permute(0, 2, 3, 1).numpy(), atol=1e-12)
    single = ops.image.gaussian_blur(IMAGES[0], (5, 5), (1.5, 1.5))
    assert single.shape == IMAGES[0].shape
    gradcheck(lambda x: ops.image.gaussian_blur(x), IMAGES[:1, :3, :3, :1], mode="elementwise")
