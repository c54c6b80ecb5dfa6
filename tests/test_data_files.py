"""Loaders of files: image_dataset_from_directory (Pillow), the image helpers,
text_dataset_from_directory, audio_dataset_from_directory (WAV), and
timeseries_dataset_from_array and split_dataset, on files the tests write."""

from __future__ import annotations

import wave

import numpy as np
import pytest

import dendrite as keras
from dendrite import utils

PIL = pytest.importorskip("PIL.Image")


def _write_images(root, sizes=None, classes=("cat", "dog"), per_class=5, ext="png"):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)] if sizes else (8, 6)
            pixels = np.full((h, w, 3), 40 * c + i + 10, dtype=np.uint8)
            pixels[0, 0] = rng.integers(0, 255, 3)
            PIL.fromarray(pixels).save(root / name / f"img{i}.{ext}")
    return root


def test_images_by_class_folder_with_keras_shapes_and_labels(tmp_path, capsys):
    root = _write_images(tmp_path / "pics")
    ds = utils.image_dataset_from_directory(root, image_size=(4, 3), batch_size=4, seed=1)
    assert "Found 10 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["cat", "dog"] and len(ds) == 3 and len(ds.file_paths) == 10
    batches = list(ds)
    x, y = batches[0]
    assert x.shape == (4, 4, 3, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert sum(len(b[1]) for b in batches) == 10
    for path, label in zip(ds.file_paths, np.concatenate([b[1] for b in batches])):
        assert ("dog" in path) == bool(label)
    cat = utils.image_dataset_from_directory(
        root, label_mode="categorical", color_mode="grayscale", image_size=(4, 3), shuffle=False
    )
    x, y = cat[0]
    assert x.shape == (10, 4, 3, 1) and y.shape == (10, 2) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 1], [0] * 5 + [1] * 5)  # not shuffled: sorted order
    binary = utils.image_dataset_from_directory(
        root, label_mode="binary", image_size=4, shuffle=False, verbose=False
    )
    assert binary[0][1].shape == (10, 1)
    only = utils.image_dataset_from_directory(root, labels=None, image_size=4, verbose=False)
    assert isinstance(only[0], np.ndarray)


def test_validation_split_subsets_and_given_labels(tmp_path):
    root = _write_images(tmp_path / "pics")
    train, val = utils.image_dataset_from_directory(
        root, validation_split=0.2, subset="both", seed=7, image_size=4, verbose=False
    )
    assert len(train.file_paths) == 8 and len(val.file_paths) == 2
    assert not set(train.file_paths) & set(val.file_paths)
    again = utils.image_dataset_from_directory(
        root, validation_split=0.2, subset="validation", seed=7, image_size=4, verbose=False
    )
    assert again.file_paths == val.file_paths
    with pytest.raises(ValueError, match="you must provide a `seed`"):
        utils.image_dataset_from_directory(root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match='`subset` must be either "training"'):
        utils.image_dataset_from_directory(root, validation_split=0.2, subset="test", seed=1)
    with pytest.raises(ValueError, match="If `subset` is set, `validation_split` must be set"):
        utils.image_dataset_from_directory(root, subset="training")
    labels = list(range(10))
    ds = utils.image_dataset_from_directory(
        root, labels=labels, shuffle=False, image_size=4, verbose=False
    )
    np.testing.assert_array_equal(ds[0][1], labels)
    with pytest.raises(ValueError, match="len\\(labels\\) is 3 while we found 10 files"):
        utils.image_dataset_from_directory(root, labels=[0, 1, 2], image_size=4)
    with pytest.raises(ValueError, match="only pass `class_names`"):
        utils.image_dataset_from_directory(root, labels=labels, class_names=["a"])
    ordered = utils.image_dataset_from_directory(
        root, class_names=["dog", "cat"], shuffle=False, image_size=4, verbose=False
    )
    assert ordered.class_names == ["dog", "cat"] and "dog" in ordered.file_paths[0]


def test_bad_image_folders_are_named(tmp_path):
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="No images found in directory"):
        utils.image_dataset_from_directory(empty)
    root = _write_images(tmp_path / "bad")
    broken = root / "cat" / "img9.png"
    broken.write_bytes((root / "cat" / "img0.png").read_bytes()[:30])  # truncated
    ds = utils.image_dataset_from_directory(root, image_size=4, shuffle=False, verbose=False)
    with pytest.raises(ValueError, match="img9.png"):
        ds[0]
    mixed = _write_images(tmp_path / "mixed", sizes=[(8, 6), (5, 5)])
    ds = utils.image_dataset_from_directory(mixed, image_size=None, shuffle=False, verbose=False)
    with pytest.raises(ValueError, match="img1.png is 5x5 pixels .*pass image_size"):
        ds[0]
    with pytest.raises(ValueError, match="label_mode"):
        utils.image_dataset_from_directory(mixed, label_mode="sparse")
    with pytest.raises(ValueError, match="exactly 2 class_names"):
        utils.image_dataset_from_directory(
            _write_images(tmp_path / "three", classes="abc"), label_mode="binary"
        )


def test_jpeg_bmp_gif_crop_and_pad_to_aspect_ratio(tmp_path):
    for ext in ("jpg", "bmp", "gif"):
        _write_images(tmp_path / "fmt", classes=(ext,), per_class=2, ext=ext, sizes=[(6, 12)])
    ds = utils.image_dataset_from_directory(
        tmp_path / "fmt", image_size=(6, 6), crop_to_aspect_ratio=True, verbose=False
    )
    assert ds[0][0].shape == (6, 6, 6, 3)
    padded = utils.image_dataset_from_directory(
        tmp_path / "fmt",
        image_size=(6, 6),
        pad_to_aspect_ratio=True,
        shuffle=False,
        verbose=False,
        interpolation="nearest",
    )
    x = padded[0][0]
    assert (x[:, 0] == 0).all() and (x[:, 2].mean(axis=(1, 2)) > 5).all()  # band, then image


def test_fit_on_an_image_folder_with_workers(tmp_path):
    root = _write_images(tmp_path / "pics", per_class=8)
    train = utils.image_dataset_from_directory(
        root, image_size=(8, 6), batch_size=4, seed=0, verbose=False
    )
    model = keras.Sequential(
        [
            keras.layers.Input((8, 6, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(2, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    train.workers, train.use_multiprocessing = 2, True
    assert len(model.evaluate(train, verbose=0)) == 2


def test_image_helpers_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (5, 7, 3)).astype("float32")
    utils.save_img(tmp_path / "a.png", array, scale=False)
    img = utils.load_img(tmp_path / "a.png")
    assert img.size == (7, 5)
    np.testing.assert_array_equal(utils.img_to_array(img), array)
    assert utils.img_to_array(img, data_format="channels_first").shape == (3, 5, 7)
    assert utils.load_img(tmp_path / "a.png", color_mode="grayscale", target_size=(2, 3)).size == (
        3,
        2,
    )
    assert utils.array_to_img(array).mode == "RGB"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        utils.load_img(tmp_path / "bad.png")


def test_missing_pillow_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r"pip install 'dendrite\[images\]'"):
        utils.load_img("whatever.png")


def test_text_dataset_from_directory(tmp_path):
    for label, texts in {
        "neg": ["bad film", "awful"],
        "pos": ["great", "loved it", "fine"],
    }.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "pos" / "ignored.md").write_text("not a .txt")
    ds = utils.text_dataset_from_directory(tmp_path, batch_size=2, shuffle=False, verbose=False)
    assert ds.class_names == ["neg", "pos"] and len(ds) == 3
    texts, labels = ds[0]
    assert list(texts) == ["bad film", "awful"] and list(labels) == [0, 0]
    cut = utils.text_dataset_from_directory(tmp_path, max_length=3, shuffle=False, verbose=False)
    assert list(cut[0][0])[0] == "bad"


def _wav(path, samples, rate=8000, width=2):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


def test_audio_dataset_from_directory(tmp_path):
    for label, lengths in {"no": [100, 80], "yes": [120]}.items():
        (tmp_path / label).mkdir()
        for i, n in enumerate(lengths):
            _wav(tmp_path / label / f"{i}.wav", np.full(n, 16384))
    ds = utils.audio_dataset_from_directory(tmp_path, shuffle=False, verbose=False)
    audio, labels = ds[0]
    assert audio.shape == (3, 120, 1) and list(labels) == [0, 0, 1]
    np.testing.assert_allclose(audio[0, :100, 0], 0.5)
    assert (audio[1, 80:] == 0).all()
    fixed = utils.audio_dataset_from_directory(
        tmp_path, output_sequence_length=90, shuffle=False, verbose=False
    )
    assert fixed[0][0].shape == (3, 90, 1)
    wrong_rate = utils.audio_dataset_from_directory(
        tmp_path, sampling_rate=16000, shuffle=False, verbose=False
    )
    with pytest.raises(ValueError, match="0.wav is sampled at 8000 Hz"):
        wrong_rate[0]
    (tmp_path / "no" / "0.wav").write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="0.wav"):
        ds[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ragged": True}, "no ragged tensors"),
        ({"ragged": True, "output_sequence_length": 9}, "both `ragged`"),
        ({"sampling_rate": -5}, "positive integer"),
        ({"sampling_rate": 8000.0}, "positive integer"),
    ],
)
def test_audio_dataset_refuses_bad_arguments(tmp_path, kwargs, match):
    (tmp_path / "a").mkdir()
    _wav(tmp_path / "a" / "0.wav", np.zeros(10))
    with pytest.raises(ValueError, match=match):
        utils.audio_dataset_from_directory(tmp_path, verbose=False, **kwargs)


def test_timeseries_dataset_from_array_follows_keras():
    data = np.arange(100)
    ds = utils.timeseries_dataset_from_array(
        data, data[10:], sequence_length=10, sampling_rate=2, batch_size=8
    )
    x, y = ds[0]
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(y[:3], [10, 11, 12])
    total = sum(len(b[0]) for b in ds)
    assert total == 82  # starts 0..81: the last window ends at 99
    strided = utils.timeseries_dataset_from_array(
        data, None, sequence_length=5, sequence_stride=3, batch_size=None
    )
    assert strided[1].tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="`sampling_rate` must be higher than 0"):
        utils.timeseries_dataset_from_array(data, None, 5, sampling_rate=0)


def test_split_dataset():
    x, y = np.arange(10), np.arange(10) * 2
    (x1, y1), (x2, y2) = utils.split_dataset((x, y), left_size=0.8)
    assert len(x1) == 8 and len(x2) == 2 and (y2 == x2 * 2).all()
    left, right = utils.split_dataset(x, right_size=3, shuffle=True, seed=1)
    assert sorted(np.concatenate([left, right]).tolist()) == list(range(10)) and len(right) == 3
    with pytest.raises(ValueError, match="At least one of the `left_size` or `right_size`"):
        utils.split_dataset(x)


@pytest.mark.parametrize(
    "loader, kind",
    [
        (utils.image_dataset_from_directory, "image"),
        (utils.text_dataset_from_directory, "text"),
        (utils.audio_dataset_from_directory, "audio"),
    ],
)
def test_every_file_loader_checks_its_label_arguments_alike(tmp_path, loader, kind):
    """One set of Keras checks serves the three loaders (dataset_utils)."""
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match=f"number of {kind} files .*Received: labels=oops"):
        loader(tmp_path, labels="oops")
    with pytest.raises(ValueError, match="only pass `class_names`"):
        loader(tmp_path, labels=[0], class_names=["a"])
    with pytest.raises(ValueError, match="`label_mode` argument must be one of"):
        loader(tmp_path, label_mode="sparse")


def _png_bytes(pixels, mode=None):
    import io

    buffer = io.BytesIO()
    img = PIL.fromarray(pixels) if mode is None else PIL.fromarray(pixels).convert(mode)
    img.save(buffer, "PNG")
    return buffer.getvalue()


def _old_pixels(path, color_mode, size=None, interpolation="bilinear"):
    """What the loader gave before its lean path: load_img, Pillow's resize, float32."""
    img = utils.load_img(path, color_mode=color_mode)
    if size is not None and img.size != (size[1], size[0]):
        from dendrite.utils import image_utils

        img = img.resize((size[1], size[0]), image_utils.resampling(interpolation))
    array = np.asarray(img, dtype="float32")
    return array[:, :, None] if array.ndim == 2 else array


def test_plain_pngs_decode_directly_to_pillows_pixels():
    from dendrite.utils import image_utils

    rng = np.random.default_rng(3)
    ramp = np.add.outer(np.arange(9), np.arange(13)).astype(np.uint8) * 7
    for shape in [(1, 1), (9, 13), (31, 17)]:
        noise = rng.integers(0, 256, shape + (4,), dtype=np.uint8)
        for color_mode, channels in [("grayscale", 1), ("rgb", 3), ("rgba", 4)]:
            for pixels in (noise[..., :channels], np.dstack([ramp] * 4)[..., :channels]):
                pixels = pixels[..., 0] if channels == 1 else pixels
                data = _png_bytes(np.ascontiguousarray(pixels))
                got = image_utils.decode_png(data, color_mode)
                assert got is not None and got.dtype == np.uint8
                np.testing.assert_array_equal(got.reshape(pixels.shape), pixels)


def test_png_cases_the_direct_path_leaves_to_pillow():
    import struct
    import zlib

    from dendrite.utils import image_utils

    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    rgb = _png_bytes(pixels)
    decode = image_utils.decode_png
    assert decode(rgb, "grayscale") is None and decode(rgb, "rgba") is None  # to convert
    for mode in ("P", "LA", "I;16", "1"):
        assert decode(_png_bytes(pixels, mode), "rgb") is None
        assert decode(_png_bytes(pixels, mode), "grayscale") is None
    assert decode(rgb[:-20], "rgb") is None  # truncated
    assert decode(rgb.replace(b"IEND", b"IENX"), "rgb") is None  # bad checksum, no IEND
    assert decode(b"GIF89a" + rgb[6:], "rgb") is None
    # An interlaced header (with a right checksum): Pillow's full path decodes those.
    header = bytearray(rgb[8 : 8 + 25])
    header[20] = 1
    header[21:25] = struct.pack(">I", zlib.crc32(bytes(header[4:21])))
    assert decode(rgb[:8] + bytes(header) + rgb[33:], "rgb") is None


@pytest.mark.parametrize("source", ["L", "RGB", "RGBA", "P", "LA", "I;16"])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
@pytest.mark.parametrize("size", [(6, 5), (4, 3)])
def test_the_loader_gives_the_pixels_it_gave_before(tmp_path, source, color_mode, size):
    """Every mode of file into every color_mode, at its own size and resized: the lean
    path (direct PNG decoding, uint8 until the batch) gives the former float32 pixels."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    root = tmp_path / "pics"
    (root / "a").mkdir(parents=True)
    if source == "I;16":
        img = PIL.fromarray(pixels[..., 0].astype(np.uint16) * 200)
    elif source in ("RGBA", "LA"):
        img = PIL.fromarray(pixels).convert(source)
    else:
        img = PIL.fromarray(pixels[..., :3]).convert(source)
    img.save(root / "a" / "one.png")
    PIL.fromarray(pixels[..., :3]).save(root / "a" / "two.png")
    ds = utils.image_dataset_from_directory(
        root, color_mode=color_mode, image_size=size, shuffle=False, verbose=False
    )
    x, _ = ds[0]
    assert x.dtype == np.float32
    for row, name in enumerate(["one.png", "two.png"]):
        expected = _old_pixels(root / "a" / name, color_mode, size)
        np.testing.assert_array_equal(x[row], expected)


def test_a_file_whose_extension_lies_about_its_format_still_loads(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    root = tmp_path / "pics"
    (root / "a").mkdir(parents=True)
    PIL.fromarray(pixels).save(root / "a" / "png_named.jpg", format="PNG")
    PIL.fromarray(pixels).save(root / "a" / "bmp_named.png", format="BMP")
    PIL.fromarray(pixels).save(root / "a" / "gif_named.bmp", format="GIF")
    ds = utils.image_dataset_from_directory(
        root, image_size=None, shuffle=False, verbose=False, batch_size=None
    )
    for (x, _), path in zip(ds, ds.file_paths):
        np.testing.assert_array_equal(x, _old_pixels(path, "rgb"))
    np.testing.assert_array_equal(ds[0][0], pixels)  # bmp_named.png, lossless


def test_a_png_truncated_in_its_pixel_data_is_named(tmp_path):
    root = _write_images(tmp_path / "pics", per_class=2)
    whole = (root / "dog" / "img1.png").read_bytes()
    (root / "dog" / "img1.png").write_bytes(whole[: len(whole) - 30])
    ds = utils.image_dataset_from_directory(root, image_size=(8, 6), shuffle=False, verbose=False)
    with pytest.raises(ValueError, match=r"Cannot read the image .*dog.img1\.png"):
        ds[0]
    with pytest.raises(ValueError, match="img1.png"):
        list(keras.utils.image_dataset_from_directory(root, image_size=4, verbose=False))


def test_read_file_reads_whole_files_and_names_a_missing_one(tmp_path):
    from dendrite.utils import image_utils

    for size in (0, 1, 70_000, 3_000_000):
        data = np.random.default_rng(size).bytes(size)
        (tmp_path / "f.bin").write_bytes(data)
        assert image_utils.read_file(str(tmp_path / "f.bin")) == data
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_utils.read_file(str(tmp_path / "nope.png"))


@pytest.mark.parametrize("use_multiprocessing", [False, True])
def test_worker_threads_and_processes_give_the_batches_read_here(tmp_path, use_multiprocessing):
    from dendrite.training.data_adapters.py_dataset_adapter import ordered_map

    root = _write_images(tmp_path / "pics", per_class=6)
    ds = utils.image_dataset_from_directory(
        root, color_mode="grayscale", image_size=(8, 6), batch_size=4, seed=2, verbose=False
    )
    here = [ds[i] for i in range(len(ds))]
    order = iter(range(len(ds)))
    got = list(ordered_map(ds, order, 2, use_multiprocessing, 3, "the image folder"))
    assert [index for index, _ in got] == list(range(len(ds)))
    for (_, (x, y)), (x_here, y_here) in zip(got, here):
        assert x.dtype == np.float32 and x.shape == (len(y), 8, 6, 1)
        np.testing.assert_array_equal(x, x_here)
        np.testing.assert_array_equal(y, y_here)
