"""``keras.ops.image``: image ops with Keras 3's names and signatures, as Keras' PyTorch
backend computes them, composed of existing ops (gradients with respect to the images, and
to the coordinates where the result depends on them smoothly, follow from those ops):

- resize: each spatial axis through an interpolation matrix (``out = M_h x M_w^T``):
  "bilinear" and "bicubic" (PyTorch's half-pixel centres, cubic a = -0.75, edge indices
  clamped), "nearest" (PyTorch's "nearest-exact": ``floor((i + 0.5) in / out)``);
  ``antialias`` widens the bilinear / bicubic filter by the downscale factor (PyTorch's and
  Pillow's rule, cubic a = -0.5); ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio`` first;
- extract_patches: a convolution with the identity kernel (Keras' own construction):
  (..., out_h, out_w, size_h size_w channels);
- crop_images / pad_images: slices and zero padding, sizes inferred as Keras infers them;
- rgb_to_grayscale (0.2989 R + 0.587 G + 0.114 B), rgb_to_hsv and hsv_to_rgb (dm_pix'
  formulas, as Keras);
- map_coordinates(inputs, coordinates, order 0 or 1, fill_mode): each output value the
  (multi-)linear mix of the input at the corners around its coordinate; fill modes
  "constant" (corners outside read ``fill_value``), "nearest", "wrap", "mirror", "reflect";
- affine_transform: the inverse map ``(x, y) -> ((a0 x + a1 y + a2) / k,
  (b0 x + b1 y + b2) / k)``, ``k = c0 x + c1 y + 1``, sampled as map_coordinates does;
- gaussian_blur: a depthwise convolution with the normalised Gaussian kernel, zero padding
  of kernel_size // 2 as Keras' PyTorch backend pads;
- perspective_transform: affine_transform's sampling with the homography that takes the
  four end points to the four start points (an 8 x 8 linear solve per image, so the result
  is differentiable in the points too);
- elastic_transform: random displacement fields (two standard normal draws per image,
  times sigma, Gaussian-blurred with sigma, times alpha) added to the pixel grid, sampled
  as map_coordinates samples;
- scale_and_translate: JAX's resampler, one (in, out) weight matrix per spatial axis from
  the triangle / Keys cubic / Lanczos filter (stretched by 1 / scale when antialiasing a
  downscale), applied by tensordot; the matrices are built from ops, so gradients reach
  images, scale and translation;
- sobel_edges: a depthwise convolution with the two 3 x 3 Sobel kernels, [dy, dx] on a new
  last axis;
- ssim: Wang et al.'s structural similarity with Gaussian-weighted local statistics
  ('valid' convolutions), averaged over positions and channels, one value per image.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import add, multiply, subtract
from dendrite.ops.comparison import clip, maximum, minimum, where
from dendrite.ops.creation import cast
from dendrite.ops.einsum_op import einsum
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import pad, stack
from dendrite.ops.movement import reshape, transpose
from dendrite.ops.unary import abs as absolute

__all__ = [
    "affine_transform",
    "crop_images",
    "elastic_transform",
    "extract_patches",
    "extract_patches_3d",
    "gaussian_blur",
    "hsv_to_rgb",
    "map_coordinates",
    "pad_images",
    "perspective_transform",
    "resize",
    "rgb_to_grayscale",
    "rgb_to_hsv",
    "scale_and_translate",
    "sobel_edges",
    "ssim",
]


def _data_format(data_format: str | None) -> str:
    value = data_format or _settings.image_data_format()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; got {value!r}.")
    return value


def _rank(images: Any, op: str) -> int:
    rank = np.ndim(raw(images))
    if rank not in (3, 4):
        raise ValueError(
            f"{op}: expected rank 3 (single image) or rank 4 (batch of images); got "
            f"images.shape={np.shape(raw(images))}."
        )
    return rank


def _as_batch_last(images: Any, data_format: str) -> tuple[Any, bool]:
    """images as (N, H, W, C), and whether a batch axis was added."""
    single = np.ndim(raw(images)) == 3
    if single:
        images = reshape(images, (1,) + np.shape(raw(images)))
    if data_format == "channels_first":
        images = transpose(images, (0, 2, 3, 1))
    return images, single


def _restore(images: Any, data_format: str, single: bool) -> Any:
    if data_format == "channels_first":
        images = transpose(images, (0, 3, 1, 2))
    if single:
        images = reshape(images, np.shape(raw(images))[1:])
    return images


# --- resize ------------------------------------------------------------------------------------
def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _matrix(size_in: int, size_out: int, method: str, antialias: bool) -> np.ndarray:
    """The (size_out, size_in) interpolation matrix of one axis (PyTorch's conventions)."""
    scale = size_in / size_out
    rows = np.arange(size_out)
    m = np.zeros((size_out, size_in), dtype=np.float64)
    if method == "nearest":
        source = np.minimum(np.floor((rows + 0.5) * scale).astype(np.int64), size_in - 1)
        m[rows, source] = 1.0
        return m
    if antialias:
        # Pillow / PyTorch's separable anti-aliased filter.
        support = (1.0 if method == "bilinear" else 2.0) * max(scale, 1.0)
        inverse = 1.0 / max(scale, 1.0)
        for i in rows:
            centre = scale * (i + 0.5)
            lo = max(int(centre - support + 0.5), 0)
            hi = min(int(centre + support + 0.5), size_in)
            offsets = (np.arange(lo, hi) - centre + 0.5) * inverse
            if method == "bilinear":
                weights = np.maximum(1.0 - np.abs(offsets), 0.0)
            else:
                weights = _cubic(offsets, -0.5)
            total = weights.sum()
            m[i, lo:hi] = weights / total if total else 0.0
        return m
    source = (rows + 0.5) * scale - 0.5
    if method == "bilinear":
        source = np.maximum(source, 0.0)
        lower = np.floor(source).astype(np.int64)
        lower = np.minimum(lower, size_in - 1)
        upper = np.minimum(lower + 1, size_in - 1)
        fraction = source - lower
        np.add.at(m, (rows, lower), 1.0 - fraction)
        np.add.at(m, (rows, upper), fraction)
        return m
    lower = np.floor(source).astype(np.int64)
    fraction = source - lower
    for k in range(-1, 3):
        index = np.clip(lower + k, 0, size_in - 1)
        np.add.at(m, (rows, index), _cubic(fraction - k, -0.75))
    return m


_RESIZE_METHODS = ("bilinear", "nearest", "bicubic")


def resize(
    images: Any,
    size: Any,
    interpolation: str = "bilinear",
    antialias: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: str | None = None,
) -> Tensor:
    """Images resized to ``size`` = (height, width); see the module docstring."""
    if interpolation not in _RESIZE_METHODS:
        raise ValueError(
            f"resize: interpolation must be one of {_RESIZE_METHODS}; got {interpolation!r}."
        )
    if fill_mode != "constant":
        raise ValueError(f"resize: only fill_mode='constant' is supported; got {fill_mode!r}.")
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError(
            "resize: only one of pad_to_aspect_ratio and crop_to_aspect_ratio can be True."
        )
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f"resize: size must be (height, width); got {size}.")
    data_format = _data_format(data_format)
    _rank(images, "resize")
    out_dtype = raw(images).dtype
    if out_dtype.kind != "f":
        images = cast(images, "float32")
    x, single = _as_batch_last(images, data_format)
    _, height, width, channels = np.shape(raw(x))
    target_h, target_w = size
    if crop_to_aspect_ratio:
        crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
        crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
        top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
        x = getitem(x, (slice(None), slice(top, top + crop_h), slice(left, left + crop_w)))
    elif pad_to_aspect_ratio:
        pad_h = max(height, int(float(width * target_h) / target_w))
        pad_w = max(width, int(float(height * target_w) / target_h))
        top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
        if top > 0 or left > 0:
            x = pad(
                x,
                [(0, 0), (top, top), (left, left), (0, 0)],
                constant_values=fill_value,
            )
    _, height, width, _ = np.shape(raw(x))
    dtype = raw(x).dtype
    use_aa = antialias and interpolation != "nearest"
    rows = _matrix(height, target_h, interpolation, use_aa).astype(dtype)
    cols = _matrix(width, target_w, interpolation, use_aa).astype(dtype)
    out = einsum("oh,nhwc->nowc", rows, x)
    out = einsum("pw,nowc->nopc", cols, out)
    out = _restore(out, data_format, single)
    if out_dtype.kind != "f":
        if interpolation == "bicubic" and out_dtype == np.uint8:
            out = clip(out, 0, 255)
        return Tensor._make(np.round(raw(out)).astype(out_dtype))
    return out


# --- patches, crops, pads ------------------------------------------------------------------------
def extract_patches(
    images: Any,
    size: Any,
    strides: Any = None,
    dilation_rate: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Patches of ``size`` (an int or (h, w)) every ``strides`` (``size`` when None), each
    flattened (row, column, channel) into the channel axis."""
    return _patches("extract_patches", images, size, strides, dilation_rate, padding, data_format)


def extract_patches_3d(
    volumes: Any,
    size: Any,
    strides: Any = None,
    dilation_rate: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Patches of ``size`` (an int or (d, h, w)) of volumes (N, D, H, W, C), or one
    volume of rank 4, every ``strides`` (``size`` when None), each flattened (depth, row,
    column, channel) into the channel axis."""
    return _patches(
        "extract_patches_3d", volumes, size, strides, dilation_rate, padding, data_format
    )


def _patches(
    op: str,
    images: Any,
    size: Any,
    strides: Any,
    dilation_rate: Any,
    padding: str,
    data_format: str | None,
) -> Tensor:
    """Each patch of k = prod(size) positions and C channels as one output position of a
    convolution whose kernel is the identity of size k C: out[..., j] = patch[j], so the
    gradient reaches the images through the convolution's."""
    from dendrite.ops.conv import conv

    spatial = 3 if op == "extract_patches_3d" else 2
    if isinstance(size, (int, np.integer)):
        window = (int(size),) * spatial
    elif isinstance(size, (tuple, list)) and len(size) == spatial:
        window = tuple(int(v) for v in size)
    else:
        expected = "(d, h, w)" if spatial == 3 else "(h, w)"
        raise TypeError(f"{op}: size must be an int or {expected}; got {size!r}.")
    data_format = _data_format(data_format)
    shape = np.shape(raw(images))
    if len(shape) not in (spatial + 1, spatial + 2):
        kind = "volume" if spatial == 3 else "image"
        raise ValueError(
            f"{op}: expected rank {spatial + 1} (a single {kind}) or rank {spatial + 2} (a "
            f"batch); got shape {shape}."
        )
    channels = shape[-1] if data_format == "channels_last" else shape[-spatial - 1]
    if isinstance(strides, (int, np.integer)):
        strides = (int(strides),) * spatial
    strides = tuple(strides) if strides else window
    if len(strides) != spatial:
        raise ValueError(f"{op}: strides must have {spatial} entries; got {strides!r}.")
    depth = int(np.prod(window)) * channels
    dtype = raw(images).dtype if raw(images).dtype.kind == "f" else np.dtype("float32")
    kernel = np.eye(depth, dtype=dtype).reshape(*window, channels, depth)
    single = len(shape) == spatial + 1
    batch = reshape(images, (1,) + shape) if single else images
    patches = conv(
        cast(batch, dtype),
        kernel,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
    )
    return reshape(patches, np.shape(raw(patches))[1:]) if single else patches


def _spatial(images: Any, data_format: str) -> tuple[int, int]:
    shape = np.shape(raw(images))
    return (shape[-3], shape[-2]) if data_format == "channels_last" else (shape[-2], shape[-1])


def _sides(
    op: str, names: tuple[str, str, str], values: tuple, size: int, cropping: bool
) -> tuple[int, int, int]:
    """(before, after, target) along one axis of ``size``, from exactly two of them given:
    ``before + size + after = target`` when padding (both paddings must be >= 0),
    ``before + target + after = size`` when cropping (the start and the target must be
    >= 0; whether the crop fits is the caller's check)."""
    before, after, target = values
    if sum(v is not None for v in values) != 2:
        raise ValueError(f"{op}: give exactly two of {', '.join(names)}.")
    if cropping:  # the rest, `after`, is only what the crop leaves
        if before is None:
            before = size - target - after
        elif target is None:
            target = size - before - after
        checked = ((names[0], before), (names[2], target))
    else:
        if before is None:
            before = target - size - after
        elif after is None:
            after = target - size - before
        checked = ((names[0], before), (names[1], after))
    for name, value in checked:
        if value < 0:
            raise ValueError(f"{op}: {name} must be >= 0; got {value}.")
    return before, after, target


def pad_images(
    images: Any,
    top_padding: int | None = None,
    left_padding: int | None = None,
    bottom_padding: int | None = None,
    right_padding: int | None = None,
    target_height: int | None = None,
    target_width: int | None = None,
    data_format: str | None = None,
) -> Tensor:
    """Images zero-padded on each side (two of top / bottom / target_height, and two of
    left / right / target_width, given)."""
    data_format = _data_format(data_format)
    rank = _rank(images, "pad_images")
    height, width = _spatial(images, data_format)
    top_padding, bottom_padding, _ = _sides(
        "pad_images",
        ("top_padding", "bottom_padding", "target_height"),
        (top_padding, bottom_padding, target_height),
        height,
        cropping=False,
    )
    left_padding, right_padding, _ = _sides(
        "pad_images",
        ("left_padding", "right_padding", "target_width"),
        (left_padding, right_padding, target_width),
        width,
        cropping=False,
    )
    widths = [(top_padding, bottom_padding), (left_padding, right_padding)]
    widths = widths + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + widths
    if rank == 4:
        widths = [(0, 0)] + widths
    return pad(images, widths)


def crop_images(
    images: Any,
    top_cropping: int | None = None,
    left_cropping: int | None = None,
    bottom_cropping: int | None = None,
    right_cropping: int | None = None,
    target_height: int | None = None,
    target_width: int | None = None,
    data_format: str | None = None,
) -> Tensor:
    """Images cropped (two of top / bottom / target_height, and two of left / right /
    target_width, given)."""
    data_format = _data_format(data_format)
    rank = _rank(images, "crop_images")
    height, width = _spatial(images, data_format)
    top_cropping, _, target_height = _sides(
        "crop_images",
        ("top_cropping", "bottom_cropping", "target_height"),
        (top_cropping, bottom_cropping, target_height),
        height,
        cropping=True,
    )
    left_cropping, _, target_width = _sides(
        "crop_images",
        ("left_cropping", "right_cropping", "target_width"),
        (left_cropping, right_cropping, target_width),
        width,
        cropping=True,
    )
    if top_cropping + target_height > height or left_cropping + target_width > width:
        raise ValueError(f"crop_images: the crop does not fit in images of size {(height, width)}.")
    rows = slice(top_cropping, top_cropping + target_height)
    cols = slice(left_cropping, left_cropping + target_width)
    index = (
        (rows, cols, slice(None)) if data_format == "channels_last" else (slice(None), rows, cols)
    )
    if rank == 4:
        index = (slice(None),) + index
    return getitem(images, index)


# --- colour spaces -------------------------------------------------------------------------------
def _channel_axis(data_format: str) -> int:
    return -1 if data_format == "channels_last" else -3


def rgb_to_grayscale(images: Any, data_format: str | None = None) -> Tensor:
    """0.2989 R + 0.587 G + 0.114 B, keeping a channel axis of 1 (a one-channel image is
    returned as it is)."""
    data_format = _data_format(data_format)
    _rank(images, "rgb_to_grayscale")
    axis = _channel_axis(data_format)
    shape = np.shape(raw(images))
    if shape[axis] not in (1, 3):
        raise ValueError(
            f"rgb_to_grayscale: expected 3 (RGB) or 1 (grayscale) channels; got "
            f"images.shape={shape}."
        )
    if shape[axis] == 1:
        return images if isinstance(images, Tensor) else Tensor._make(np.array(raw(images)))
    dtype = raw(images).dtype
    compute = dtype if dtype.kind == "f" else np.dtype("float32")
    weights = np.array([0.2989, 0.587, 0.114], dtype=compute)
    view = [1] * len(shape)
    view[axis] = 3
    from dendrite.ops.reduce import sum as reduce_sum

    grey = reduce_sum(
        multiply(cast(images, compute), weights.reshape(view)), axis=axis, keepdims=True
    )
    if dtype.kind != "f":
        return Tensor._make(raw(grey).astype(dtype))
    return grey


def _planes(images: Any, axis: int) -> list:
    index = [slice(None)] * np.ndim(raw(images))
    planes = []
    for k in range(3):
        index[axis] = k
        planes.append(getitem(images, tuple(index)))
    return planes


def _float_images(images: Any, op: str) -> np.dtype:
    dtype = raw(images).dtype
    if dtype.kind != "f":
        raise ValueError(f"{op}: expected float images; got images.dtype={dtype}.")
    return dtype


def rgb_to_hsv(images: Any, data_format: str | None = None) -> Tensor:
    """RGB images (values in [0, 1]) to HSV (hue in [0, 1))."""
    data_format = _data_format(data_format)
    _rank(images, "rgb_to_hsv")
    dtype = _float_images(images, "rgb_to_hsv")
    axis = _channel_axis(data_format)
    zero, one = np.zeros((), dtype), np.ones((), dtype)
    tiny = np.abs(raw(images)) < np.finfo(dtype).eps
    images = where(tiny, zero, images)
    r, g, b = _planes(images, axis)
    value = maximum(maximum(r, g), b)
    least = minimum(minimum(r, g), b)
    spread = subtract(value, least)
    v, s_ = raw(value), raw(spread)
    safe_value = where(v > 0, value, one)
    safe_spread = where(s_ > 0, spread, one)
    saturation = where(v > 0, spread / safe_value, zero)
    norm = np.asarray(1.0, dtype) / (safe_spread * np.asarray(6.0, dtype))
    hue = where(
        v == raw(g),
        add(norm * subtract(b, r), np.asarray(2.0 / 6.0, dtype)),
        add(norm * subtract(r, g), np.asarray(4.0 / 6.0, dtype)),
    )
    hue = where(v == raw(r), norm * subtract(g, b), hue)
    wrap = (raw(hue) < 0).astype(dtype)
    hue = add(where(s_ > 0, hue, zero), wrap)
    return stack([hue, saturation, value], axis=axis % np.ndim(raw(images)))


def hsv_to_rgb(images: Any, data_format: str | None = None) -> Tensor:
    """HSV images (hue in [0, 1)) to RGB."""
    data_format = _data_format(data_format)
    _rank(images, "hsv_to_rgb")
    dtype = _float_images(images, "hsv_to_rgb")
    axis = _channel_axis(data_format)
    hue, saturation, value = _planes(images, axis)
    dh = multiply(subtract(hue, np.floor(raw(hue))), np.asarray(6.0, dtype))
    one = np.asarray(1.0, dtype)

    def ramp(t: Any) -> Any:
        return clip(t, 0.0, 1.0)

    dr = ramp(subtract(absolute(subtract(dh, np.asarray(3.0, dtype))), one))
    dg = ramp(subtract(np.asarray(2.0, dtype), absolute(subtract(dh, np.asarray(2.0, dtype)))))
    db = ramp(subtract(np.asarray(2.0, dtype), absolute(subtract(dh, np.asarray(4.0, dtype)))))
    keep = subtract(one, saturation)
    planes = [multiply(value, add(keep, multiply(saturation, d))) for d in (dr, dg, db)]
    return stack(planes, axis=axis % np.ndim(raw(images)))


# --- sampling ------------------------------------------------------------------------------------
def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    s = size - 1
    if s == 0:
        return np.zeros_like(index)
    return np.abs((index + s) % (2 * s) - s)


def _fix(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    if mode in ("constant", "nearest"):
        return np.clip(index, 0, size - 1)
    if mode == "wrap":
        return index % size
    if mode == "mirror":
        return _mirror(index, size)
    return (_mirror(2 * index + 1, 2 * size + 1) - 1) // 2  # reflect


_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _corners(coordinate: Any, order: int) -> list[tuple[np.ndarray, Any]]:
    """(integer index, weight) pairs of one axis' interpolation."""
    value = raw(coordinate)
    if order == 0:
        rounded = value if value.dtype.kind in "iu" else np.round(value)
        return [(rounded.astype(np.int64), None)]
    lower = np.floor(value)
    upper_weight = subtract(coordinate, lower.astype(value.dtype))
    lower_weight = subtract(np.ones((), value.dtype), upper_weight)
    index = lower.astype(np.int64)
    return [(index, lower_weight), (index + 1, upper_weight)]


def _sample(
    source: Any,
    coordinates: list,
    order: int,
    fill_mode: str,
    fill_value: Any,
    trailing: int = 0,
) -> Any:
    """``source`` read at ``coordinates`` (one per leading axis; ``trailing`` axes of
    source are carried along), by nearest or multilinear interpolation."""
    if order not in (0, 1):
        raise NotImplementedError("map_coordinates: only order 0 and 1 are supported.")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"map_coordinates: fill_mode must be one of {_FILL_MODES}.")
    shape = np.shape(raw(source))
    dtype = raw(source).dtype
    compute = dtype if dtype.kind == "f" else np.dtype(_settings.floatx())
    source = cast(source, compute)
    per_axis = []
    for coordinate, size in zip(coordinates, shape):
        nodes = []
        for index, weight in _corners(coordinate, order):
            valid = (index >= 0) & (index < size) if fill_mode == "constant" else None
            nodes.append((_fix(index, size, fill_mode), valid, weight))
        per_axis.append(nodes)
    fill = np.asarray(fill_value, compute)
    total = None
    for combination in itertools.product(*per_axis):
        indices, valids, weights = zip(*combination)
        value = getitem(source, tuple(indices))
        given = [v for v in valids if v is not None]
        if given:
            ok = functools.reduce(operator.and_, given)
            ok = ok.reshape(ok.shape + (1,) * trailing)
            value = where(ok, value, fill)
        factors = [w for w in weights if w is not None]
        if factors:
            weight = functools.reduce(multiply, factors)
            if trailing:
                weight = reshape(weight, np.shape(raw(weight)) + (1,) * trailing)
            value = multiply(cast(weight, compute), value)
        total = value if total is None else add(total, value)
    if dtype.kind in "iu":
        return Tensor._make(np.round(raw(total)).astype(dtype))
    return total


def map_coordinates(
    inputs: Any, coordinates: Any, order: int, fill_mode: str = "constant", fill_value: Any = 0
) -> Tensor:
    """``inputs`` interpolated at ``coordinates`` (one array per axis of inputs, all of the
    output's shape); order 0 (nearest) or 1 (linear)."""
    rank = np.ndim(raw(inputs))
    if isinstance(coordinates, (list, tuple)):
        coordinates = list(coordinates)
    else:
        coordinates = [getitem(coordinates, i) for i in range(np.shape(raw(coordinates))[0])]
    if len(coordinates) != rank:
        raise ValueError(
            f"map_coordinates: coordinates must hold one array per axis of inputs ({rank}); "
            f"got {len(coordinates)}."
        )
    if np.ndim(raw(coordinates[0])) < 1:
        raise ValueError("map_coordinates: coordinates must have at least rank 2.")
    return _sample(inputs, coordinates, order, fill_mode, fill_value)


def affine_transform(
    images: Any,
    transform: Any,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: Any = 0,
    data_format: str | None = None,
) -> Tensor:
    """Images under the projective maps ``transform`` ((8,) or (N, 8): a0 a1 a2 b0 b1 b2
    c0 c1, output pixel to input pixel); see the module docstring."""
    orders = {"nearest": 0, "bilinear": 1}
    if interpolation not in orders:
        raise ValueError(
            f"affine_transform: interpolation must be 'nearest' or 'bilinear'; got "
            f"{interpolation!r}."
        )
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"affine_transform: fill_mode must be one of {_FILL_MODES}.")
    data_format = _data_format(data_format)
    _rank(images, "affine_transform")
    t = raw(transform)
    if t.ndim not in (1, 2) or t.shape[-1] != 8:
        raise ValueError(
            f"affine_transform: transform must be (8,) or (N, 8); got shape {t.shape}."
        )
    transforms = transform if isinstance(transform, Tensor) else Tensor._make(t)
    if t.ndim == 1:
        transforms = reshape(transforms, (1, 8))
    dtype = raw(transforms).dtype if raw(transforms).dtype.kind == "f" else np.float32
    return _projective(
        images, cast(transforms, dtype), orders[interpolation], fill_mode, fill_value, data_format
    )


def _projective(
    images: Any,
    transforms: Any,
    order: int,
    fill_mode: str,
    fill_value: Any,
    data_format: str,
) -> Tensor:
    """Each image n sampled at ``((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)``,
    ``k = c0 x + c1 y + 1``, for output pixel (x, y), with row ``min(n, N - 1)`` of the
    (N, 8) ``transforms`` (a float tensor)."""
    x, single = _as_batch_last(images, data_format)
    n, height, width, _ = np.shape(raw(x))
    dtype = raw(transforms).dtype
    ys, xs = np.meshgrid(
        np.arange(height, dtype=dtype), np.arange(width, dtype=dtype), indexing="ij"
    )
    outputs = []
    for i in range(n):
        row = getitem(transforms, min(i, np.shape(raw(transforms))[0] - 1))
        a0, a1, a2, b0, b1, b2, c0, c1 = (getitem(row, k) for k in range(8))
        k = add(add(multiply(c0, xs), multiply(c1, ys)), np.ones((), dtype))
        source_x = add(add(multiply(a0, xs), multiply(a1, ys)), a2) / k
        source_y = add(add(multiply(b0, xs), multiply(b1, ys)), b2) / k
        outputs.append(
            _sample(getitem(x, i), [source_y, source_x], order, fill_mode, fill_value, trailing=1)
        )
    out = stack(outputs, axis=0)
    return _restore(out, data_format, single)


def gaussian_blur(
    images: Any,
    kernel_size: Any = (3, 3),
    sigma: Any = (1.0, 1.0),
    data_format: str | None = None,
) -> Tensor:
    """Images convolved (per channel) with a normalised Gaussian kernel of ``kernel_size``
    and standard deviations ``sigma``, zero-padded by kernel_size // 2."""
    from dendrite.ops.conv import depthwise_conv

    data_format = _data_format(data_format)
    _rank(images, "gaussian_blur")
    size = [int(s) for s in (raw(kernel_size).reshape(-1).tolist())]
    sigmas = [float(s) for s in raw(sigma).reshape(-1).tolist()]
    if len(size) == 1:
        size = size * 2
    if len(sigmas) == 1:
        sigmas = sigmas * 2
    x, single = _as_batch_last(images, data_format)
    dtype = raw(x).dtype if raw(x).dtype.kind == "f" else np.dtype(_settings.floatx())

    def gaussian(length: int, s: float) -> np.ndarray:
        t = np.arange(length, dtype=np.float64) - (length - 1) / 2
        k = np.exp(-0.5 * (t / s) ** 2)
        return k / k.sum()

    kernel = np.outer(gaussian(size[1], sigmas[1]), gaussian(size[0], sigmas[0]))
    kernel = kernel.reshape(size[0], size[1])
    channels = np.shape(raw(x))[-1]
    depthwise = np.repeat(kernel[:, :, None, None], channels, axis=2).astype(dtype)
    p = size[0] // 2
    padded = pad(cast(x, dtype), [(0, 0), (p, p), (p, p), (0, 0)])
    out = depthwise_conv(padded, depthwise, strides=1, padding="valid")
    return _restore(out, data_format, single)


# --- perspective and elastic warps ---------------------------------------------------------------
_ORDERS = {"nearest": 0, "bilinear": 1}


def _order(interpolation: str, op: str) -> int:
    if interpolation not in _ORDERS:
        raise ValueError(
            f"{op}: invalid value for argument `interpolation`. Expected one of "
            f"{set(_ORDERS)}. Received: interpolation={interpolation!r}"
        )
    return _ORDERS[interpolation]


def _check_points(points: Any, name: str) -> None:
    shape = np.shape(raw(points))
    if len(shape) not in (2, 3) or tuple(shape[-2:]) != (4, 2):
        raise ValueError(
            f"perspective_transform: invalid {name} shape: expected (4, 2) for a single image "
            f"or (N, 4, 2) for a batch. Received shape: {shape}"
        )


def _homography(start: Any, end: Any) -> Tensor:
    """The (N, 8) maps taking each end point to its start point (output pixel to input
    pixel): ``x_s = (a0 x_e + a1 y_e + a2) / k``, ``y_s = (a3 x_e + a4 y_e + a5) / k``,
    ``k = a6 x_e + a7 y_e + 1``; multiplied out, each of the 4 point pairs gives two
    equations linear in a0..a7, solved as one 8 x 8 system per image."""
    from dendrite.ops.creation import ones_like, zeros_like
    from dendrite.ops.linalg_decomp import solve

    n = np.shape(raw(start))[0]
    xs, ys = getitem(start, (..., 0)), getitem(start, (..., 1))
    xe, ye = getitem(end, (..., 0)), getitem(end, (..., 1))
    one, zero = ones_like(xe), zeros_like(xe)
    row_x = stack([xe, ye, one, zero, zero, zero, -(xs * xe), -(xs * ye)], axis=-1)
    row_y = stack([zero, zero, zero, xe, ye, one, -(ys * xe), -(ys * ye)], axis=-1)
    matrix = reshape(stack([row_x, row_y], axis=2), (n, 8, 8))
    target = reshape(stack([xs, ys], axis=-1), (n, 8, 1))
    return reshape(solve(matrix, target), (n, 8))


def perspective_transform(
    images: Any,
    start_points: Any,
    end_points: Any,
    interpolation: str = "bilinear",
    fill_value: Any = 0,
    data_format: str | None = None,
) -> Tensor:
    """Images warped so that the four ``start_points`` ((4, 2) or (N, 4, 2), (x, y) each)
    land on the ``end_points``: each output pixel samples the input at the homography of
    its position (``_homography``), as affine_transform samples (fill_mode "constant")."""
    order = _order(interpolation, "perspective_transform")
    data_format = _data_format(data_format)
    rank = _rank(images, "perspective_transform")
    _check_points(start_points, "start_points")
    _check_points(end_points, "end_points")
    if np.shape(raw(start_points)) != np.shape(raw(end_points)):
        raise ValueError(
            "perspective_transform: start_points and end_points must have the same shape. "
            f"Received start_points.shape={np.shape(raw(start_points))}, "
            f"end_points.shape={np.shape(raw(end_points))}"
        )
    batch = np.shape(raw(images))[0] if rank == 4 else 1
    points = np.shape(raw(start_points))
    if len(points) == 3 and points[0] not in (1, batch):
        raise ValueError(
            f"perspective_transform: got {points[0]} sets of points for a batch of {batch} "
            f"images; give one set, or one per image."
        )
    dtype = raw(images).dtype if raw(images).dtype.kind == "f" else np.dtype("float32")
    start, end = cast(start_points, dtype), cast(end_points, dtype)
    if len(points) == 2:
        start, end = reshape(start, (1, 4, 2)), reshape(end, (1, 4, 2))
    transforms = _homography(start, end)
    return _projective(images, transforms, order, "constant", fill_value, data_format)


def _elastic_noise(shape: tuple, dtype: Any, seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two standard normal fields of ``shape`` (x's displacement, then y's), one generator
    for both, as Keras' NumPy backend draws them (``seed`` as ``keras.random`` takes it)."""
    from dendrite.random import _generator

    rng = _generator(seed)
    dx = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return dx, dy


def elastic_transform(
    images: Any,
    alpha: float = 20.0,
    sigma: float = 5.0,
    interpolation: str = "bilinear",
    fill_mode: str = "reflect",
    fill_value: float = 0.0,
    seed: Any = None,
    data_format: str | None = None,
) -> Tensor:
    """Images under a random elastic deformation (Simard et al. 2003, as Keras): per image,
    two standard normal fields, scaled by ``sigma`` and smoothed by a Gaussian blur of
    standard deviation ``sigma`` (kernel ``int(6 sigma) | 1``, zero padding), displace
    every pixel by ``alpha`` times them: the output at (y, x) samples the input at
    ``(y + alpha dy, x + alpha dx)`` with ``fill_mode`` outside."""
    order = _order(interpolation, "elastic_transform")
    if fill_mode not in _FILL_MODES:
        raise ValueError(
            f"elastic_transform: invalid value for argument `fill_mode`. Expected one of "
            f"{_FILL_MODES}. Received: fill_mode={fill_mode!r}"
        )
    data_format = _data_format(data_format)
    _rank(images, "elastic_transform")
    dtype = raw(images).dtype
    compute = dtype if dtype.kind == "f" else np.dtype(_settings.floatx())
    alpha_value, sigma_value = float(raw(alpha)), float(raw(sigma))
    if sigma_value <= 0:
        raise ValueError(f"elastic_transform: sigma must be positive. Received: sigma={sigma}")
    x, single = _as_batch_last(images, data_format)
    n, height, width, _ = np.shape(raw(x))
    size = int(6 * sigma_value) | 1
    sigma_c = np.asarray(sigma_value, compute)
    fields = []
    for noise in _elastic_noise((n, height, width), compute, seed):
        blurred = gaussian_blur(
            (noise * sigma_c)[..., None],
            kernel_size=(size, size),
            sigma=(sigma_value, sigma_value),
            data_format="channels_last",
        )
        fields.append(raw(blurred)[..., 0] * np.asarray(alpha_value, compute))
    dx, dy = fields
    ys, xs = np.meshgrid(
        np.arange(height, dtype=compute), np.arange(width, dtype=compute), indexing="ij"
    )
    outputs = [
        _sample(getitem(x, i), [ys + dy[i], xs + dx[i]], order, fill_mode, fill_value, 1)
        for i in range(n)
    ]
    return _restore(stack(outputs, axis=0), data_format, single)


# --- scale and translate -------------------------------------------------------------------------
_SCALE_AND_TRANSLATE_METHODS = {
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "triangle": "linear",
    "cubic": "cubic",
    "bicubic": "cubic",
    "tricubic": "cubic",
    "lanczos3": "lanczos3",
    "lanczos5": "lanczos5",
}


def _resampling_kernel(method: str, x: Any) -> Any:
    """The filter at distances ``x >= 0``: triangle ``max(0, 1 - x)``; Keys cubic (a = -0.5)
    ``1.5 x^3 - 2.5 x^2 + 1`` on [0, 1), ``-0.5 x^3 + 2.5 x^2 - 4 x + 2`` on [1, 2), 0
    beyond; Lanczos-r ``r sin(pi x) sin(pi x / r) / (pi x)^2`` (1 below 1e-3, 0 beyond r)."""
    from dendrite.ops.unary import sin

    data = raw(x)
    dtype = data.dtype
    one = np.ones((), dtype)
    if method == "linear":
        return maximum(subtract(one, x), np.zeros((), dtype))
    if method == "cubic":
        near = add(multiply(multiply(subtract(multiply(1.5, x), 2.5), x), x), one)
        far = add(multiply(subtract(multiply(add(multiply(-0.5, x), 2.5), x), 4.0), x), 2.0)
        return where(data >= 2.0, np.zeros((), dtype), where(data >= 1.0, far, near))
    radius = 3.0 if method == "lanczos3" else 5.0
    y = multiply(multiply(radius, sin(multiply(np.pi, x))), sin(multiply(np.pi / radius, x)))
    square = where(data != 0, multiply(np.pi**2, multiply(x, x)), one)
    out = where(data > 1e-3, y / square, one)
    return where(data > radius, np.zeros((), dtype), out)


def _resampling_weights(
    size_in: int, size_out: int, scale: Any, translation: Any, method: str, antialias: bool
) -> Any:
    """The (size_in, size_out) matrix of one axis: output j samples the input at
    ``f_j = (j + 0.5) / scale - translation / scale - 0.5``; the weight of input i is the
    filter at ``|f_j - i| / max(1 / scale, 1)`` (the stretch only when antialiasing),
    normalised over i (0 where the total is ~0), and 0 for samples outside
    ``[-0.5, size_in - 0.5]``."""
    dtype = raw(scale).dtype
    inv_scale = np.ones((), dtype) / scale
    sample = subtract(
        subtract(
            multiply(np.arange(size_out, dtype=dtype) + 0.5, inv_scale), translation * inv_scale
        ),
        np.asarray(0.5, dtype),
    )
    distance = absolute(
        subtract(reshape(sample, (1, size_out)), np.arange(size_in, dtype=dtype)[:, None])
    )
    if antialias:
        distance = distance / maximum(inv_scale, np.ones((), dtype))
    weights = _resampling_kernel(method, distance)
    from dendrite.ops.reduce import sum as reduce_sum

    total = reduce_sum(weights, axis=0, keepdims=True)
    t = raw(total)
    normalised = weights / where(t != 0, total, np.ones((), dtype))
    weights = where(
        np.abs(t) > 1000.0 * float(np.finfo(np.float32).eps), normalised, np.zeros((), dtype)
    )
    s = raw(sample)
    inside = (s >= -0.5) & (s <= size_in - 0.5)
    return where(inside[None, :], weights, np.zeros((), dtype))


def scale_and_translate(
    images: Any,
    output_shape: Any,
    scale: Any,
    translation: Any,
    spatial_dims: Any,
    method: str,
    antialias: bool = True,
) -> Tensor:
    """``images`` resampled along each of ``spatial_dims`` to ``output_shape`` (the full
    output shape; only the spatial sizes are read): an input location ``u`` (pixel centres
    at ``i + 0.5``) goes to ``u scale + translation``, each output sample being the
    normalised filtered sum of ``_resampling_weights`` (JAX's ``scale_and_translate``)."""
    if method not in _SCALE_AND_TRANSLATE_METHODS:
        raise ValueError(
            f"scale_and_translate: invalid value for argument `method`. Expected one of "
            f"{set(_SCALE_AND_TRANSLATE_METHODS)}. Received: method={method!r}"
        )
    kind = _SCALE_AND_TRANSLATE_METHODS[method]
    shape = np.shape(raw(images))
    dims = [int(d) for d in spatial_dims]
    if not dims:  # nothing to resample (Keras returns the images before any check)
        return images if isinstance(images, Tensor) else Tensor._make(np.array(raw(images)))
    output_shape = tuple(int(s) for s in output_shape)
    if len(output_shape) != len(shape):
        raise ValueError(
            f"scale_and_translate: output_shape must have one size per axis of images "
            f"({len(shape)}). Received: output_shape={output_shape}, images.shape={shape}"
        )
    for name, value in (("scale", scale), ("translation", translation)):
        if np.size(raw(value)) != len(dims):
            raise ValueError(
                f"scale_and_translate: {name} must hold one value per spatial dim "
                f"({len(dims)}). Received: {name}.shape={np.shape(raw(value))}"
            )
    for d in dims:
        if not -len(shape) <= d < len(shape):
            raise ValueError(
                f"scale_and_translate: spatial dim {d} is out of range for images of shape {shape}."
            )
    wide = np.float64 in (raw(scale).dtype, raw(translation).dtype)
    weight_dtype = np.float64 if wide else np.float32
    scale, translation = cast(scale, weight_dtype), cast(translation, weight_dtype)
    scale, translation = reshape(scale, (-1,)), reshape(translation, (-1,))
    dtype = raw(images).dtype
    integer = dtype.kind in "iub"
    out = cast(images, "float32") if integer else images
    out_dtype = raw(out).dtype
    from dendrite.ops.linalg import tensordot
    from dendrite.ops.movement import moveaxis

    for i, d in enumerate(dims):
        d %= len(shape)
        weights = _resampling_weights(
            shape[d],
            output_shape[d],
            getitem(scale, i),
            getitem(translation, i),
            kind,
            antialias,
        )
        out = tensordot(out, cast(weights, out_dtype), axes=([d], [0]))
        out = moveaxis(out, -1, d)
    if integer:
        data = raw(images)
        rounded = np.clip(np.round(raw(out)), data.min(), data.max())
        return Tensor._make(rounded.astype(dtype))
    return out


# --- edges and similarity ------------------------------------------------------------------------
def sobel_edges(images: Any, data_format: str | None = None) -> Tensor:
    """The Sobel derivatives of each channel, ``[dy, dx]`` on a new last axis:
    ``dy = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]] * x`` and ``dx`` its transpose (cross-
    correlations, zero padding of 1): (batch, height, width, channels, 2), or
    (batch, channels, height, width, 2) for channels_first."""
    from dendrite.ops.conv import depthwise_conv

    data_format = _data_format(data_format)
    shape = np.shape(raw(images))
    if len(shape) != 4:
        raise ValueError(
            "sobel_edges: invalid images rank: expected rank 4 (batch of images). "
            f"Received: images.shape={shape}"
        )
    dtype = raw(images).dtype if raw(images).dtype.kind == "f" else np.dtype(_settings.floatx())
    x = cast(images, dtype)
    if data_format == "channels_first":
        x = transpose(x, (0, 2, 3, 1))
    n, height, width, channels = np.shape(raw(x))
    sobel_y = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=dtype)
    kernel = np.stack([sobel_y, sobel_y.T], axis=-1)  # (3, 3, [dy, dx])
    kernel = np.ascontiguousarray(np.broadcast_to(kernel[:, :, None, :], (3, 3, channels, 2)))
    edges = depthwise_conv(x, kernel, strides=1, padding="same", data_format="channels_last")
    edges = reshape(edges, (n, height, width, channels, 2))
    if data_format == "channels_first":
        edges = transpose(edges, (0, 3, 1, 2, 4))
    return edges


def ssim(
    image1: Any,
    image2: Any,
    max_val: float = 1.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_format: str | None = None,
) -> Tensor:
    """The structural similarity (Wang et al. 2004) of each image pair: with Gaussian-
    weighted (``filter_size``, ``filter_sigma``, 'valid') local means ``mu``, variances
    ``s^2`` and covariance ``s12`` per channel,
    ``SSIM = (2 mu1 mu2 + c1)(2 s12 + c2) / ((mu1^2 + mu2^2 + c1)(s1^2 + s2^2 + c2))``,
    ``c1 = (k1 max_val)^2``, ``c2 = (k2 max_val)^2``, averaged over positions then channels:
    one value per image (a scalar for single images), in image1's dtype."""
    from dendrite.ops.conv import conv
    from dendrite.ops.reduce import mean

    data_format = _data_format(data_format)
    for name, image in (("image1", image1), ("image2", image2)):
        if np.ndim(raw(image)) not in (3, 4):
            raise ValueError(
                f"ssim: invalid {name} rank: expected rank 3 (single image) or rank 4 (batch "
                f"of images). Received input with shape: {name}.shape={np.shape(raw(image))}"
            )
    if np.shape(raw(image1)) != np.shape(raw(image2)):
        raise ValueError(
            f"ssim: image1 and image2 must have the same shape. Received: "
            f"image1.shape={np.shape(raw(image1))}, image2.shape={np.shape(raw(image2))}"
        )
    original = raw(image1).dtype
    compute = np.result_type(original, raw(image2).dtype)
    if compute.kind != "f":
        compute = np.dtype(_settings.floatx())
    a, b = cast(image1, compute), cast(image2, compute)
    a, single = _as_batch_last(a, data_format)
    b, _ = _as_batch_last(b, data_format)
    n, height, width, channels = np.shape(raw(a))
    size = int(filter_size)
    if size < 1 or size > height or size > width:
        raise ValueError(
            f"ssim: filter_size must be between 1 and the image size ({height}, {width}). "
            f"Received: filter_size={filter_size}"
        )
    t = np.arange(size, dtype=compute) - np.asarray((size - 1) / 2.0, compute)
    gauss = np.exp(-(t**2) / np.asarray(2.0 * filter_sigma**2, compute))
    gauss = gauss / gauss.sum()
    kernel = np.outer(gauss, gauss).reshape(size, size, 1, 1)
    c1 = np.asarray((k1 * max_val) ** 2, compute)
    c2 = np.asarray((k2 * max_val) ** 2, compute)
    a = reshape(transpose(a, (0, 3, 1, 2)), (n * channels, height, width, 1))
    b = reshape(transpose(b, (0, 3, 1, 2)), (n * channels, height, width, 1))

    def local(x: Any) -> Tensor:
        return conv(x, kernel, strides=1, padding="valid", data_format="channels_last")

    mu1, mu2 = local(a), local(b)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = local(a * a) - mu1_sq
    sigma2_sq = local(b * b) - mu2_sq
    sigma12 = local(a * b) - mu1_mu2
    two = np.asarray(2.0, compute)
    numerator = (two * mu1_mu2 + c1) * (two * sigma12 + c2)
    denominator = (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    per_channel = mean(numerator / denominator, axis=(1, 2, 3))
    result = mean(reshape(per_channel, (n, channels)), axis=-1)
    if single:
        result = reshape(result, ())
    return cast(result, original)
