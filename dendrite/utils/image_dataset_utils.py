"""``keras.utils.image_dataset_from_directory``: a folder of images as a dataset.

Returns a ``FileDataset`` (see ``dendrite.utils.dataset_utils``): a ``PyDataset`` whose
batches ``(images, labels)`` are decoded with Pillow when ``fit`` asks for them, in
background threads. Images are float32 in 0..255, ``(batch, height, width, channels)``
(or channels first, per ``data_format``); labels are encoded per ``label_mode``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.utils import dataset_utils, image_utils

__all__ = ["ALLOWLIST_FORMATS", "image_dataset_from_directory", "load_images"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)


class ImageLoader:
    """Reads a list of image files into one float32 batch (a picklable callable, so
    process workers can use it too).

    Each file is decoded to its own integer pixels (uint8; 16-bit grayscale keeps its
    depth) and the batch is made float32 once, in one pass. A plain PNG already in the
    asked colour mode skips ``Image.open`` (``image_utils.decode_png``); every other file
    takes Pillow's full path, trying first the format its extension names.
    """

    def __init__(
        self,
        image_size: tuple[int, int] | None,
        num_channels: int,
        interpolation: str,
        crop_to_aspect_ratio: bool,
        pad_to_aspect_ratio: bool,
        data_format: str,
    ) -> None:
        self.image_size = image_size
        self.color_mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[num_channels]
        self.interpolation = interpolation
        self.crop = crop_to_aspect_ratio
        self.pad = pad_to_aspect_ratio
        self.data_format = data_format

    def load_one(self, path: str) -> np.ndarray:
        """The pixels of the image file ``path``, (height, width, channels), resized to
        ``image_size``; integer (uint8, or the 16/32-bit depth of such grayscale files)."""
        data = image_utils.read_file(path)
        array = image_utils.decode_png(data, self.color_mode)
        if array is not None and (
            self.image_size is None or array.shape[:2] == tuple(self.image_size)
        ):
            return array
        if array is not None:  # decoded, to be resized: Pillow takes it from here
            image = image_utils.pil_image()
            img = image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        else:
            img = image_utils.decode_image(data, path, self.color_mode)
        if self.image_size is not None:
            height, width = self.image_size
            if img.size != (width, height):
                if self.crop:
                    img = img.crop(image_utils._crop_box(img.size, (height, width)))
                elif self.pad:
                    canvas_w, canvas_h, left, top = image_utils.pad_box(img.size, (height, width))
                    canvas = image_utils.pil_image().new(img.mode, (canvas_w, canvas_h))
                    canvas.paste(img, (left, top))
                    img = canvas
                img = img.resize((width, height), image_utils.resampling(self.interpolation))
        array = np.asarray(img)
        if array.ndim == 2:
            array = array[:, :, None]
        return array

    def __call__(self, paths: list[str]) -> np.ndarray:
        arrays = [self.load_one(path) for path in paths]
        shape = arrays[0].shape
        for path, array in zip(paths, arrays):
            if array.shape != shape:
                raise ValueError(
                    f"{path} is {array.shape[1]}x{array.shape[0]} pixels but "
                    f"{paths[0]} is {shape[1]}x{shape[0]}: images of one batch must have "
                    f"one size; pass image_size=(height, width) to resize them."
                )
        batch = np.stack(arrays, dtype=np.float32)
        if self.data_format == "channels_first":
            batch = batch.transpose(0, 3, 1, 2)
        return batch


def load_images(paths: list[str], image_size: tuple[int, int] | None = None, **kw: Any):
    """Decode ``paths`` into one float32 batch (rgb, bilinear): a helper for scripts."""
    loader = ImageLoader(image_size, kw.get("num_channels", 3), "bilinear", False, False, "")
    return loader(paths)


def image_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: list[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: Any = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
) -> Any:
    """A dataset of the images under ``directory`` (PNG, JPEG, BMP, GIF: the first frame).

    Keras 3's arguments and defaults; see its documentation. With ``labels="inferred"``
    each sub-folder is a class. ``image_size=None`` (a dendrite extension) keeps each image's
    own size: every image of a batch must then have the same size, else a ValueError names
    the two files.

    Returns:
        A ``FileDataset`` (a ``keras.utils.PyDataset``) that ``fit``, ``evaluate`` and
        ``predict`` accept; iterating over it gives ``(images, labels)`` batches (images
        alone when ``label_mode`` or ``labels`` is None). ``class_names`` and
        ``file_paths`` are attributes. With ``subset="both"``, a list of two datasets
        (training, validation). It reads the files with ``workers=2`` background threads;
        set ``dataset.workers`` to change that, and ``dataset.use_multiprocessing = True``
        for worker processes.
    """
    labels, label_mode = dataset_utils.check_label_arguments(
        labels, label_mode, class_names, "image"
    )
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}
    if color_mode not in channels:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
            f"Received: color_mode={color_mode}"
        )
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    elif image_size is not None and (
        not isinstance(image_size, (list, tuple)) or not len(image_size) == 2
    ):
        raise ValueError(
            "Invalid `image_size` value. Expected a tuple of 2 integers. "
            f"Received: image_size={image_size}"
        )
    interpolation = interpolation.lower()
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Argument `interpolation` should be one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    data_format = data_format or _settings.image_data_format()
    image_utils.pil_image()  # fail now, not in a worker, when Pillow is missing
    if seed is None:
        seed = np.random.randint(1_000_000)
    paths, encoded, class_names = dataset_utils.index_labeled_files(
        directory, labels, label_mode, class_names, ALLOWLIST_FORMATS, shuffle, seed,
        follow_links, verbose,
    )  # fmt: skip
    loader = ImageLoader(
        None if image_size is None else (int(image_size[0]), int(image_size[1])),
        channels[color_mode],
        interpolation,
        crop_to_aspect_ratio,
        pad_to_aspect_ratio,
        data_format,
    )

    return dataset_utils.datasets_for_subset(
        paths, encoded, loader, subset, validation_split, batch_size, shuffle, seed,
        class_names, verbose,
        lambda which: ValueError(
            f"No {which}images found in directory {directory}. "
            f"Allowed formats: {ALLOWLIST_FORMATS}"
        ),
    )  # fmt: skip
