"""Keras 3's RandomErasing, RandomGaussianBlur, RandomShear, RandomPerspective and
RandomElasticTransform. Images are (batch, H, W, C) or one image (H, W, C) (channels_first:
(batch, C, H, W) or (C, H, W)); ``n`` is the batch size (1 for one image), pixel ``(y, x)``
has row y and column x, and ``u ~ U[a, b)`` is one uniform draw.

In training (``fit``, or a direct call: ``training`` defaults to True, as in Keras) each
layer draws as below; with ``training=False`` (``predict``, ``evaluate``) it returns its
input, values unchanged (integer images cast to the layer's float dtype, as Keras casts
them in both modes: uint8 in, float32 out). Several layers act on an image only with a
probability: ``p ~ U[factor]`` and ``t ~ U[0, 1)`` per image, and the image is changed
when ``t < p``.

- RandomErasing: per image, ``(s_w, s_h) ~ U[scale]`` and a box of width ``b_w = sqrt(s_w) W``
  and height ``b_h = sqrt(s_h) H`` (not rounded), starting at ``x0 = u (W - b_w)``,
  ``y0 = u' (H - b_h)``. Its pixels ``x0 <= x < x0 + b_w``, ``y0 <= y < y0 + b_h`` become
  ``clip(fill, value_range)``: ``fill_value`` (a number, or one per channel), or when it is
  None Gaussian noise ``z high`` (``z ~ N(0, 1)`` per value, ``high`` the top of
  ``value_range``).
- RandomGaussianBlur: one ``(s_x, s_y) ~ U[sigma] + 1e-6`` per batch; the chosen images are
  convolved per channel with the normalised kernel ``g_y(i) g_x(j)``,
  ``g(i) ∝ exp(-(i - (k - 1) / 2)^2 / 2 s^2)`` of ``kernel_size`` = (k_x, k_y) taps, the
  image zero-padded by ``(k - 1) / 2``; then every image is clipped to ``value_range``.
- RandomShear: per image ``s_x ~ U[x_factor]``, ``s_y ~ U[y_factor]`` (a number f: [-f, f])
  and a sign ``e`` (-1 when ``u > 1/2``); output pixel (y, x) reads the input at
  ``x' = x + e s_x y``, ``y' = y + e s_y x`` (about the top-left corner, as Keras).
- RandomPerspective: per image, the corners ``c_k`` = (0, 0), (W-1, 0), (0, H-1),
  (W-1, H-1) (as (x, y)) move to ``d_k = c_k (1 + f_k)``, ``f_k ~ U[-scale/2, scale/2)``
  per coordinate (so (0, 0) stays); the homography ``P`` with ``P(d_k) = c_k`` gives the
  input point of each output pixel, ``(x', y') = ((a0 x + a1 y + a2) / q,
  (a3 x + a4 y + a5) / q)``, ``q = a6 x + a7 y + 1``; outside the image reads ``fill_value``.
- RandomElasticTransform: one ``d ~ U[scale]`` per batch gives ``alpha = 0.1 d max(H, W)``
  and ``sigma = 0.05 d min(H, W)``; per image two fields ``dx, dy = sigma z`` (``z ~ N(0, 1)``
  per pixel) are smoothed by the Gaussian of ``sigma`` over ``int(6 sigma) | 1`` taps (zero
  padding), and pixel (y, x) reads the input at ``(y + alpha dy, x + alpha dx)``; every image
  is then clipped to ``value_range`` (none of this when the top of ``scale`` or ``factor``
  is 0: the input comes back unchanged).

The geometric three sample bilinearly (``interpolation="bilinear"``) or at the nearest
pixel; a coordinate outside the image follows ``fill_mode`` (``augmentation._sample``:
"reflect", "wrap", "nearest", "constant" with ``fill_value``; RandomElasticTransform also
takes Keras' "mirror", ``c d c b | a b c d | c b a b``). Every result is a composition of ops
(gathers, products, sums, where, clip), so gradients reach the images; the draws,
coordinates and masks are constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import (
    _FILL_MODES,
    _INTERPOLATIONS,
    _check,
    _data_format,
    _grid,
    _RandomAffine,
    _RandomImageLayer,
    _sample,
)
from dendrite.layers.augmentation_color import _value_range
from dendrite.layers.augmentation_color_more import _Channels
from dendrite.layers.registry import register_layer
from dendrite.ops.creation import as_float_tensor


def _pair(value: Any, name: str, layer: str) -> tuple[float, float]:
    """Keras' rule for an argument in [0, 1]: a number f gives (0, f); a pair is sorted
    (its first value at most 1, its second at least 0)."""
    message = (
        f"{layer}: `{name}` must be a number, or a list of two numbers, in [0, 1]; received "
        f"{name}={value!r}."
    )
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise ValueError(message)
        if value[0] > 1 or value[1] < 0:
            raise ValueError(message)
        lower, upper = sorted(float(v) for v in value)
        return lower, upper
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(message)
    return 0.0, float(value)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.number))


def _gaussian(taps: int, sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian of ``taps`` weights centred on the middle one."""
    t = np.arange(taps, dtype=np.float64) - (taps - 1) / 2
    weights = np.exp(-0.5 * (t / sigma) ** 2)
    return weights / weights.sum()


def _blur_axis(x: Tensor, weights: np.ndarray, axis: int) -> Tensor:
    """``x`` convolved along ``axis`` with ``weights`` (symmetric), zero-padded to keep its
    size: a sum of shifted slices, so the gradient reaches ``x``."""
    taps, size = len(weights), x.shape[axis]
    before = (taps - 1) // 2
    widths = [(0, 0)] * len(x.shape)
    widths[axis] = (before, taps - 1 - before)
    padded = ops.pad(x, widths)
    total = None
    for i, weight in enumerate(weights):
        index = [slice(None)] * len(x.shape)
        index[axis] = slice(i, i + size)
        term = padded[tuple(index)] * float(weight)
        total = term if total is None else total + term
    return total


def _blur_fields(fields: np.ndarray, sigma: float) -> np.ndarray:
    """(n, H, W) arrays smoothed by the Gaussian of ``sigma`` over ``int(6 sigma) | 1``
    taps along H then W, zero-padded (the fields need no gradient: plain NumPy)."""
    if sigma <= 0:
        return fields
    weights = _gaussian(int(6 * sigma) | 1, sigma)
    before = (len(weights) - 1) // 2
    out = fields
    for axis in (1, 2):
        widths = [(0, 0)] * 3
        widths[axis] = (before, len(weights) - 1 - before)
        padded = np.pad(out, widths)
        size = out.shape[axis]
        out = sum(
            weight * np.take(padded, np.arange(i, i + size), axis=axis)
            for i, weight in enumerate(weights)
        )
    return out


def _mirrored(coordinate: np.ndarray, size: int) -> np.ndarray:
    """Coordinates folded into [0, size - 1] by reflection about the edge pixels' centres
    (Keras' "mirror": c d c b | a b c d | c b a b)."""
    if size == 1:
        return np.zeros_like(coordinate)
    period = 2 * (size - 1)
    folded = np.mod(coordinate, period)
    return np.where(folded > size - 1, period - folded, folded)


def _float_images(layer: Any, inputs: Tensor) -> Tensor:
    """The inference output of the layers that Keras casts in both modes: ``inputs``
    unchanged when floating, integer images cast to the layer's float dtype."""
    return inputs if inputs.dtype.kind == "f" else as_float_tensor(inputs, layer.dtype)


def _constant(values: np.ndarray, like: Tensor) -> Tensor:
    return Tensor._make(np.asarray(values, dtype=like.dtype))


class _Augment(_Channels):
    """Training: the images, channels-last and batched, through ``_augment``; inference:
    the input, its rank checked."""

    def call(self, inputs: Tensor, training: Any = True) -> Tensor:
        if not isinstance(inputs, Tensor):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects one tensor of images; "
                f"received a {type(inputs).__name__} (dicts of images and labels are taken "
                f"by MixUp and CutMix only)."
            )
        if len(inputs.shape) not in (3, 4):
            self._batched(inputs)  # type: ignore[attr-defined]  # raises, naming the layer
        if not training:
            return _float_images(self, inputs)
        x, single = self._to_last(inputs)
        return self._from_last(self._augment(x, tuple(inputs.shape)), single)

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        raise NotImplementedError


def _chosen(rng: Any, factor: tuple[float, float], n: int) -> np.ndarray:
    """Keras' per-image choice: ``U[0, 1) < p`` with ``p ~ U[factor]``."""
    probability = rng.uniform(factor[0], factor[1], size=(n,))
    return rng.uniform(0.0, 1.0, size=(n,)) < probability


@register_layer
class RandomErasing(_Augment, _RandomImageLayer):
    """Replaces a random box of each chosen image by a constant or by noise (see the module
    docstring).

    Args:
        factor: the probability of erasing an image: a number f (drawn from [0, f]) or a
            pair (lower, upper); default 1.
        scale: (lower, upper) in [0, 1] of the box's width and height as squared fractions
            of the image's (default (0.02, 0.33)).
        fill_value: the value of the box: None (Gaussian noise scaled by the top of
            ``value_range``), a number, or a list of one number per channel.
        value_range: (low, high) of the images' values; the fill is clipped to it.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {
        "kwargs": {"scale": (0.1, 0.4), "fill_value": 0.5, "value_range": (-3, 3), "seed": 1},
        "input_shape": (2, 6, 7, 3),
    }

    def __init__(
        self,
        factor: Any = 1.0,
        scale: Any = (0.02, 0.33),
        fill_value: Any = None,
        value_range: Any = (0, 255),
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.factor = _pair(factor, "factor", "RandomErasing")
        self.scale = _pair(scale, "scale", "RandomErasing")
        if isinstance(fill_value, (list, tuple)):
            if len(fill_value) != 3 or not all(_is_number(v) for v in fill_value):
                raise ValueError(
                    "RandomErasing: `fill_value` must be None, a number or a list of three "
                    f"numbers (one per channel); received fill_value={fill_value!r}."
                )
            fill_value = [float(v) for v in fill_value]
        elif fill_value is not None:
            if not _is_number(fill_value):
                raise ValueError(
                    "RandomErasing: `fill_value` must be None, a number or a list of three "
                    f"numbers (one per channel); received fill_value={fill_value!r}."
                )
            fill_value = float(fill_value)
        self.fill_value = fill_value
        self.value_range = _value_range(value_range, "RandomErasing")
        self.data_format = _data_format(data_format, "RandomErasing")

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        n, h, w, c = x.shape
        rng = self._generator()
        sides = np.sqrt(rng.uniform(self.scale[0], self.scale[1], size=(n, 2)))
        box_w, box_h = sides[:, 0] * w, sides[:, 1] * h
        x0 = rng.uniform(0.0, 1.0, size=(n,)) * (w - box_w)
        y0 = rng.uniform(0.0, 1.0, size=(n,)) * (h - box_h)
        erase = _chosen(rng, self.factor, n)
        low, high = self.value_range
        if self.fill_value is None:
            noise = rng.standard_normal(shape) * high  # drawn in the input's own layout
            if self.data_format == "channels_first":
                noise = np.moveaxis(noise, -3, -1)
            fill = noise.reshape(n, h, w, c)
        elif isinstance(self.fill_value, list):
            if c != 3:
                raise ValueError(
                    f"Layer '{self.name}' (RandomErasing): a `fill_value` of three numbers "
                    f"needs images with 3 channels; received input of shape {shape}."
                )
            fill = np.broadcast_to(np.asarray(self.fill_value), (n, h, w, c))
        else:
            fill = np.full((n, h, w, c), self.fill_value)
        fill = np.clip(fill, low, high)
        ys, xs = _grid(n, h, w)
        inside = (
            (xs >= x0[:, None, None])
            & (xs < (x0 + box_w)[:, None, None])
            & (ys >= y0[:, None, None])
            & (ys < (y0 + box_h)[:, None, None])
            & erase[:, None, None]
        )
        return ops.where(inside[..., None], _constant(fill, x), x)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "scale": list(self.scale),
            "fill_value": self.fill_value,
            "value_range": list(self.value_range),
            "data_format": self.data_format,
        }


def _kernel_size(value: Any, layer: str) -> tuple[int, int]:
    """An odd number k (k by k taps) or a pair of odd numbers (width taps, height taps)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value, value]
    if (
        len(values) != 2
        or not all(_is_number(v) and np.isfinite(v) and float(v) == int(v) > 0 for v in values)
        or any(int(v) % 2 == 0 for v in values)
    ):
        raise ValueError(
            f"{layer}: `kernel_size` must be a positive odd integer or a pair of them; "
            f"received kernel_size={value!r}."
        )
    return int(values[0]), int(values[1])


@register_layer
class RandomGaussianBlur(_Augment, _RandomImageLayer):
    """Blurs each chosen image with a Gaussian of random standard deviations, then clips
    every image to ``value_range`` (see the module docstring).

    Args:
        factor: the probability of blurring an image: a number f (drawn from [0, f]) or a
            pair (lower, upper); default 1.
        kernel_size: the kernel's taps, an odd number or a pair (width, height); default 3.
        sigma: the standard deviations' range: a number s in [0, 1] (drawn from [0, s]) or
            a pair (lower, upper); one (sigma_x, sigma_y) draw per batch.
        value_range: (low, high) of the images' values; the result is clipped to it.
        data_format: "channels_last" (the default) or "channels_first".
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"kernel_size": 3, "sigma": (0.5, 1.0), "value_range": (-5, 5), "seed": 2},
        "input_shape": (2, 5, 6, 2),
    }

    def __init__(
        self,
        factor: Any = 1.0,
        kernel_size: Any = 3,
        sigma: Any = 1.0,
        value_range: Any = (0, 255),
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.factor = _pair(factor, "factor", "RandomGaussianBlur")
        self.kernel_size = _kernel_size(kernel_size, "RandomGaussianBlur")
        self.sigma = _pair(sigma, "sigma", "RandomGaussianBlur")
        self.value_range = _value_range(value_range, "RandomGaussianBlur")
        self.data_format = _data_format(data_format, "RandomGaussianBlur")

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        rng = self._generator()
        blur = _chosen(rng, self.factor, x.shape[0])
        sigma_x, sigma_y = rng.uniform(self.sigma[0], self.sigma[1], size=(2,)) + 1e-6
        blurred = _blur_axis(x, _gaussian(self.kernel_size[0], sigma_x), axis=2)
        blurred = _blur_axis(blurred, _gaussian(self.kernel_size[1], sigma_y), axis=1)
        out = ops.where(blur[:, None, None, None], blurred, x)
        return ops.clip(out, *self.value_range)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "kernel_size": list(self.kernel_size),
            "sigma": list(self.sigma),
            "value_range": list(self.value_range),
            "data_format": self.data_format,
        }


def _shear_range(value: Any, name: str) -> tuple[float, float]:
    """Keras' shear factor: a number f in [0, 1] gives (-f, f); a pair of numbers in
    [0, 1] is sorted."""
    message = (
        f"RandomShear: `{name}` must be a number, or a list of two numbers, in [0, 1]; "
        f"received {name}={value!r}."
    )
    pair = isinstance(value, (list, tuple))
    values = list(value) if pair else [value]
    if (pair and len(values) != 2) or not all(_is_number(v) and 0 <= v <= 1 for v in values):
        raise ValueError(message)
    if not pair:
        return -float(value), float(value)
    lower, upper = sorted(float(v) for v in values)
    return lower, upper


@register_layer
class RandomShear(_Augment, _RandomAffine):
    """Shears each image along x and y by random amounts about its top-left corner (see
    the module docstring).

    Args:
        x_factor, y_factor: a number f in [0, 1] (drawn from [-f, f]) or a pair of numbers
            in [0, 1]; the shear's slope along x (y). Default 0: no shear on that axis.
        interpolation: "bilinear" (default) or "nearest".
        fill_mode: "reflect" (default), "wrap", "nearest" or "constant".
        fill_value: the value read outside the image when ``fill_mode="constant"``.
        data_format: "channels_last" (the default) or "channels_first".
        seed: seed of this layer's own generator.
    """

    example = {
        "kwargs": {"x_factor": 0.3, "y_factor": (0.1, 0.2), "seed": 3},
        "input_shape": (2, 5, 6, 2),
    }

    def __init__(
        self,
        x_factor: Any = 0.0,
        y_factor: Any = 0.0,
        interpolation: str = "bilinear",
        fill_mode: str = "reflect",
        fill_value: float = 0.0,
        data_format: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.x_factor = _shear_range(x_factor, "x_factor")
        self.y_factor = _shear_range(y_factor, "y_factor")
        # the config keeps the arguments as given: Keras writes the (-f, f) pairs, which its
        # own check (values in [0, 1]) then refuses when the config is read back
        self._given = {
            "x_factor": list(x_factor) if isinstance(x_factor, (list, tuple)) else x_factor,
            "y_factor": list(y_factor) if isinstance(y_factor, (list, tuple)) else y_factor,
        }
        self.data_format = _data_format(data_format, "RandomShear")

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        n, h, w, _ = x.shape
        ys, xs = _grid(n, h, w)
        rng = self._generator()
        sign = np.where(rng.uniform(0.0, 1.0, size=(n, 1)) > 0.5, -1.0, 1.0)
        shear_y = rng.uniform(self.y_factor[0], self.y_factor[1], size=(n, 1)) * sign
        shear_x = rng.uniform(self.x_factor[0], self.x_factor[1], size=(n, 1)) * sign
        source_x = xs + shear_x[:, :, None] * ys
        source_y = ys + shear_y[:, :, None] * xs
        return _sample(x, source_y, source_x, self.fill_mode, self.interpolation, self.fill_value)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            **self._given,
            "data_format": self.data_format,
        }


def _homographies(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per image, the 8 coefficients of the homography taking ``end`` (n, 4, 2) to
    ``start`` (Keras' ``compute_homography_matrix``), solved in float64."""
    n = start.shape[0]
    system = np.zeros((n, 8, 8))
    target = np.zeros((n, 8))
    for k in range(4):
        sx, sy = start[:, k, 0], start[:, k, 1]
        ex, ey = end[:, k, 0], end[:, k, 1]
        system[:, 2 * k, 0:3] = np.stack([ex, ey, np.ones(n)], axis=-1)
        system[:, 2 * k, 6:8] = np.stack([-sx * ex, -sx * ey], axis=-1)
        system[:, 2 * k + 1, 3:6] = np.stack([ex, ey, np.ones(n)], axis=-1)
        system[:, 2 * k + 1, 6:8] = np.stack([-sy * ex, -sy * ey], axis=-1)
        target[:, 2 * k], target[:, 2 * k + 1] = sx, sy
    return np.linalg.solve(system, target[..., None])[..., 0]


@register_layer
class RandomPerspective(_Augment, _RandomImageLayer):
    """Moves the corners of each chosen image by random fractions of their coordinates and
    warps the image to match (see the module docstring).

    Args:
        factor: the probability of warping an image: a number f (drawn from [0, f]) or a
            pair (lower, upper); default 1.
        scale: in [0, 1], how far the corners move (default 1).
        interpolation: "bilinear" (default) or "nearest".
        fill_value: the value read outside the image.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {"kwargs": {"scale": 0.4, "seed": 4}, "input_shape": (2, 6, 5, 2)}

    def __init__(
        self,
        factor: Any = 1.0,
        scale: float = 1.0,
        interpolation: str = "bilinear",
        fill_value: float = 0.0,
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.factor = _pair(factor, "factor", "RandomPerspective")
        if not _is_number(scale) or not 0 <= scale <= 1:
            raise ValueError(
                f"RandomPerspective: `scale` must be a number in [0, 1]; received scale={scale!r}."
            )
        self.scale = float(scale)
        self.interpolation = _check(
            interpolation, _INTERPOLATIONS, "interpolation", "RandomPerspective"
        )
        self.fill_value = float(fill_value)
        self.data_format = _data_format(data_format, "RandomPerspective")

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        n, h, w, _ = x.shape
        if h < 2 or w < 2:
            raise ValueError(
                f"Layer '{self.name}' (RandomPerspective) needs images of at least 2 x 2 "
                f"pixels to place its four corners; received input of shape {shape}."
            )
        rng = self._generator()
        warp = _chosen(rng, self.factor, n)
        shifts = rng.uniform(-0.5 * self.scale, 0.5 * self.scale, size=(n, 4, 2))
        corners = np.asarray([[0.0, 0.0], [w - 1, 0.0], [0.0, h - 1], [w - 1, h - 1]])
        start = np.broadcast_to(corners, (n, 4, 2))
        end = np.where(warp[:, None, None], start + start * shifts, start)
        a = _homographies(start, end)[:, :, None, None]
        ys, xs = _grid(n, h, w)
        q = a[:, 6] * xs + a[:, 7] * ys + 1.0
        source_x = (a[:, 0] * xs + a[:, 1] * ys + a[:, 2]) / q
        source_y = (a[:, 3] * xs + a[:, 4] * ys + a[:, 5]) / q
        out = _sample(x, source_y, source_x, "constant", self.interpolation, self.fill_value)
        return ops.where(warp[:, None, None, None], out, x)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "scale": self.scale,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
            "data_format": self.data_format,
        }


@register_layer
class RandomElasticTransform(_Augment, _RandomImageLayer):
    """Displaces each chosen image's pixels along smooth random fields, then clips every
    image to ``value_range`` (see the module docstring).

    Args:
        factor: the probability of transforming an image: a number f (drawn from [0, f])
            or a pair (lower, upper); default 1.
        scale: the distortion's magnitude d: a number s in [0, 1] (drawn from [0, s]) or a
            pair (lower, upper); one draw per batch; default 1.
        interpolation: "bilinear" (default) or "nearest".
        fill_mode: "reflect" (default), "mirror", "wrap", "nearest" or "constant".
        fill_value: the value read outside the image when ``fill_mode="constant"``.
        value_range: (low, high) of the images' values; the result is clipped to it.
        seed: seed of this layer's own generator.
        data_format: "channels_last" (the default) or "channels_first".
    """

    example = {
        "kwargs": {"scale": (0.5, 1.0), "value_range": (-5, 5), "seed": 5},
        "input_shape": (2, 8, 7, 2),
    }

    def __init__(
        self,
        factor: Any = 1.0,
        scale: Any = 1.0,
        interpolation: str = "bilinear",
        fill_mode: str = "reflect",
        fill_value: float = 0.0,
        value_range: Any = (0, 255),
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        cls = "RandomElasticTransform"
        self.factor = _pair(factor, "factor", cls)
        self.scale = _pair(scale, "scale", cls)
        self.interpolation = _check(interpolation, _INTERPOLATIONS, "interpolation", cls)
        self.fill_mode = _check(fill_mode, (*_FILL_MODES, "mirror"), "fill_mode", cls)
        self.fill_value = float(fill_value)
        self.value_range = _value_range(value_range, cls)
        self.data_format = _data_format(data_format, cls)

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        if self.scale[1] == 0 or self.factor[1] == 0:
            return x  # Keras draws nothing and does not clip
        n, h, w, _ = x.shape
        rng = self._generator()
        move = _chosen(rng, self.factor, n)
        d = float(rng.uniform(self.scale[0], self.scale[1], size=()))
        alpha, sigma = max(h, w) * 0.1 * d, min(h, w) * 0.05 * d
        dx = _blur_fields(rng.standard_normal((n, h, w)) * sigma, sigma)
        dy = _blur_fields(rng.standard_normal((n, h, w)) * sigma, sigma)
        ys, xs = _grid(n, h, w)
        source_y, source_x = ys + alpha * dy, xs + alpha * dx
        mode = self.fill_mode
        if mode == "mirror":
            source_y, source_x = _mirrored(source_y, h), _mirrored(source_x, w)
            mode = "nearest"  # every coordinate is inside now
        out = _sample(x, source_y, source_x, mode, self.interpolation, self.fill_value)
        out = ops.where(move[:, None, None, None], out, x)
        return ops.clip(out, *self.value_range)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "scale": list(self.scale),
            "interpolation": self.interpolation,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "value_range": list(self.value_range),
            "data_format": self.data_format,
        }
