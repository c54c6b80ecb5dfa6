"""``keras.utils.load_img``, ``img_to_array``, ``array_to_img``, ``save_img``, with Pillow.

Pillow is an optional dependency (``pip install 'dendrite[images]'``); without it these
functions raise an ImportError saying so. Decoding errors name the file.

``read_file``, ``decode_image`` and ``decode_png`` are the lean path that
``image_dataset_from_directory``'s workers take: Pillow's own decoders, with the per-file
Python work of ``Image.open`` kept as small as possible (it holds the GIL that the training
step needs).
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from typing import Any

import numpy as np

from dendrite import _settings

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img"]

PIL_MISSING = (
    "Reading and writing images needs Pillow, which is not installed: "
    "pip install 'dendrite[images]' (or pip install pillow)."
)

# Keras' interpolation names -> Pillow's resampling filters. Pillow has no Gaussian or
# Mitchell-cubic filter: those fall back on its bicubic one.
_RESAMPLING = {
    "nearest": "NEAREST",
    "bilinear": "BILINEAR",
    "bicubic": "BICUBIC",
    "hamming": "HAMMING",
    "box": "BOX",
    "area": "BOX",
    "lanczos": "LANCZOS",
    "lanczos3": "LANCZOS",
    "lanczos5": "LANCZOS",
    "gaussian": "BICUBIC",
    "mitchellcubic": "BICUBIC",
}


def pil_image() -> Any:
    """``PIL.Image``, or an ImportError naming the extra to install."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(PIL_MISSING) from None
    return Image


def resampling(interpolation: str) -> Any:
    image = pil_image()
    if interpolation not in _RESAMPLING:
        raise ValueError(
            f"Invalid interpolation method specified: {interpolation}. Supported methods are "
            f"{', '.join(_RESAMPLING)}"
        )
    names = getattr(image, "Resampling", image)
    return getattr(names, _RESAMPLING[interpolation])


def _data_format(data_format: str | None) -> str:
    data_format = data_format or _settings.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format}"
        )
    return data_format


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A PIL image as a 3D array (height, width, channels) of ``dtype`` (floatx)."""
    data_format = _data_format(data_format)
    array = np.asarray(img, dtype=dtype or _settings.floatx())
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(f"Unsupported image shape: {array.shape}")
    if data_format == "channels_first":
        array = array.transpose(2, 0, 1)
    return array


def array_to_img(
    x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None
) -> Any:
    """A 3D array (1, 3 or 4 channels) as a PIL image; ``scale`` maps its range to 0..255."""
    image = pil_image()
    data_format = _data_format(data_format)
    x = np.asarray(x, dtype=dtype or _settings.floatx())
    if x.ndim != 3:
        raise ValueError(
            f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}"
        )
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x = x / top
        x = x * 255
    channels = x.shape[2]
    if channels == 4:
        return image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:  # 32-bit signed integer grayscale
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def save_img(
    path: Any,
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Write an image array to ``path`` (a file name or a file object)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format == "jpg" or file_format == "jpeg"):
        img = img.convert("RGB")
    if file_format == "jpg":
        file_format = "jpeg"
    img.save(path, format=file_format, **kwargs)


def load_img(
    path: Any,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """Load an image file (or bytes in a ``BytesIO``) as a PIL image.

    Args:
        color_mode: "grayscale", "rgb" or "rgba".
        target_size: ``(height, width)`` to resize to, or None.
        interpolation: the resampling filter for resizing ("nearest" by default).
        keep_aspect_ratio: crop the center to the target's aspect ratio before resizing.
    """
    image = pil_image()
    if isinstance(path, io.BytesIO):
        img = _open(image, path, "the image bytes")
    elif isinstance(path, (str, bytes, os.PathLike)):
        name = os.fsdecode(path)
        with open(name, "rb") as f:
            img = _open(image, io.BytesIO(f.read()), name)
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    img = convert_mode(img, color_mode)
    if target_size is not None:
        height, width = target_size
        if img.size != (width, height):
            if keep_aspect_ratio:
                img = img.crop(_crop_box(img.size, (height, width)))
            img = img.resize((width, height), resampling(interpolation))
    return img


def _open(image: Any, stream: Any, name: str, formats: tuple[str, ...] | None = None) -> Any:
    """Open and fully decode an image, or a ValueError naming the file. ``formats``: the
    Pillow format to try first (from the file's extension); a file it does not identify
    is probed against every format, as without the hint."""
    try:
        try:
            img = image.open(stream, formats=formats)
        except image.UnidentifiedImageError:
            if formats is None:
                raise
            stream.seek(0)
            img = image.open(stream)
        img.load()
    except Exception as error:  # Pillow raises many types for a bad file
        raise ValueError(f"Cannot read the image {name}: {error}") from None
    return img


# File extension -> the Pillow format to try first.
_FORMAT_OF_EXTENSION = {
    ".png": ("PNG",),
    ".jpg": ("JPEG",),
    ".jpeg": ("JPEG",),
    ".bmp": ("BMP",),
    ".gif": ("GIF",),
}


def read_file(path: str) -> bytes:
    """The bytes of the file ``path`` (one ``fstat`` and usually one ``read``: about half
    the time of ``open(path, "rb").read()`` on a small file)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) != size:  # a short read, or the file changed size: read to its end
            parts = [data]
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
    finally:
        os.close(fd)
    return data


def decode_image(data: bytes, name: str, color_mode: str) -> Any:
    """The PIL image in the bytes ``data`` of the file ``name``, decoded and converted to
    ``color_mode`` as ``load_img`` does (a ValueError naming the file if it cannot be
    read). The file's extension says which format to try first."""
    image = pil_image()
    formats = _FORMAT_OF_EXTENSION.get(os.path.splitext(name)[1].lower())
    return convert_mode(_open(image, io.BytesIO(data), name, formats), color_mode)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")
_CRC = struct.Struct(">I")
_IHDR = struct.Struct(">IIBBBBB")
# color_mode -> (PNG colour type at 8 bits per sample, Pillow mode of the pixel buffer,
# Pillow mode and raw mode of the decoder, channels). Pillow keeps RGB pixels in 4 bytes
# (RGBX), so RGB is decoded into a 4-channel buffer whose last channel is dropped.
_PNG_PLAIN = {
    "grayscale": (0, "L", "L", "L", 1),
    "rgb": (2, "RGBX", "RGB", "RGB", 3),
    "rgba": (6, "RGBA", "RGBA", "RGBA", 4),
}


def decode_png(data: bytes, color_mode: str) -> np.ndarray | None:
    """The pixels of a plain PNG as a uint8 array (height, width, channels), or None.

    Plain: 8 bits per sample, not interlaced, not animated, every chunk's checksum right,
    and the colour type that ``color_mode`` asks for (gray, RGB, RGBA: no conversion
    needed). The pixels come from Pillow's own PNG decoder (zlib and the PNG row filters,
    in C, without the GIL) writing straight into the array, without ``Image.open``'s
    Python work per file; they are the pixels ``load_img(path, color_mode)`` gives.
    Anything else (another format or colour type, 16 bits, a palette, a broken or
    truncated file, a Pillow without these internals) gives None: the caller then takes
    Pillow's full path, which converts, or raises an error naming the file.
    """
    plain = _PNG_PLAIN.get(color_mode)
    if plain is None or data[:8] != _PNG_SIGNATURE:
        return None
    colour_type, buffer_mode, decoder_mode, raw_mode, channels = plain
    head, crc, crc32 = _CHUNK_HEAD.unpack_from, _CRC.unpack_from, zlib.crc32
    pos, end, header, idat = 8, len(data), None, []
    view = memoryview(data)  # chunk slices without copies
    while True:
        if pos + 12 > end:
            return None  # no IEND: truncated
        length, kind = head(data, pos)
        stop = pos + 8 + length
        if stop + 4 > end or crc32(view[pos + 4 : stop]) != crc(data, stop)[0]:
            return None
        if kind == b"IDAT":
            idat.append(view[pos + 8 : stop])
        elif kind == b"IHDR" and header is None and length == 13:
            header = _IHDR.unpack_from(data, pos + 8)
        elif kind == b"IEND":
            break
        elif kind in (b"IHDR", b"acTL"):
            return None  # a second or short header; animated: Pillow's path decides
        if header is None:
            return None  # IHDR must come first
        pos = stop + 4
    if header is None or not idat:
        return None
    width, height, depth, ctype, compression, filtering, interlace = header
    if (depth, ctype, compression, filtering, interlace) != (8, colour_type, 0, 0, 0):
        return None
    image = sys.modules.get("PIL.Image") or pil_image()  # no import machinery per file
    limit = image.MAX_IMAGE_PIXELS
    if not width or not height or (limit and width * height > limit):
        return None  # Pillow's full path warns or refuses
    try:
        pixels = np.empty((height, width, 4 if channels == 3 else channels), dtype=np.uint8)
        target = image.core.map_buffer(pixels, (width, height), "raw", 0, (buffer_mode, 0, 1))
        decoder = image.core.zip_decoder(decoder_mode, raw_mode)
        decoder.setimage(target, (0, 0, width, height))
        status, error = decoder.decode(b"".join(idat))
        decoder.cleanup()
    except Exception:  # Pillow's internals differ, or no memory: its full path decides
        return None
    if status >= 0 or error < 0:
        return None  # truncated or corrupt image data
    return pixels[:, :, :3] if channels == 3 else pixels


def convert_mode(img: Any, color_mode: str) -> Any:
    if color_mode == "grayscale":
        # An "I;16"/"I" image keeps its depth; anything else becomes 8-bit luminance.
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif color_mode == "rgb":
        if img.mode != "RGB":
            img = img.convert("RGB")
    else:
        raise ValueError('color_mode must be "grayscale", "rgb", or "rgba"')
    return img


def _crop_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centered box of ``size`` (width, height) with ``target``'s
    (height, width) aspect ratio."""
    width, height = size
    target_height, target_width = target
    crop_height = min(height, int(round(width * target_height / target_width)))
    crop_width = min(width, int(round(height * target_width / target_height)))
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return (left, top, left + crop_width, top + crop_height)


def pad_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(canvas width, canvas height, left, top): the smallest canvas with ``target``'s
    aspect ratio that holds an image of ``size`` centered."""
    width, height = size
    target_height, target_width = target
    canvas_height = max(height, int(round(width * target_height / target_width)))
    canvas_width = max(width, int(round(height * target_width / target_height)))
    return canvas_width, canvas_height, (canvas_width - width) // 2, (canvas_height - height) // 2
