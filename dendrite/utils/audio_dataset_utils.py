"""``keras.utils.audio_dataset_from_directory``: a folder of WAV files as a dataset.

WAV files are read with the standard library's ``wave`` module (PCM, 8 to 32 bits), as
float32 in [-1, 1] of shape ``(time, channels)``. Returns a ``FileDataset`` (a
``PyDataset``) of ``(audio, labels)`` batches, each batch padded with zeros to its longest
clip, or cut / padded to ``output_sequence_length``. There is no resampling: with
``sampling_rate`` set, a file recorded at another rate is an error naming it.
"""

from __future__ import annotations

import wave
from typing import Any

import numpy as np

from dendrite.utils import dataset_utils

__all__ = ["audio_dataset_from_directory", "read_wav"]

ALLOWED_FORMATS = (".wav",)


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """``(samples, rate)``: float32 ``(time, channels)`` in [-1, 1] from a PCM WAV file."""
    try:
        with wave.open(path, "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.getnframes()
            raw = f.readframes(frames)
    except (OSError, EOFError, wave.Error) as error:
        raise ValueError(f"Cannot read the WAV file {path}: {error}") from None
    if len(raw) != frames * channels * width:
        raise ValueError(
            f"Cannot read the WAV file {path}: truncated ({len(raw)} bytes of audio, "
            f"{frames * channels * width} declared)"
        )
    if width == 1:
        audio = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        audio = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        audio = value.astype(np.float32) / float(1 << 23)
    elif width == 4:
        audio = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise ValueError(f"Cannot read the WAV file {path}: {width * 8}-bit samples")
    return audio.reshape(-1, channels), rate


class AudioLoader:
    """Reads WAV files into one zero-padded float32 batch (picklable for process workers)."""

    def __init__(self, sampling_rate: int | None, output_sequence_length: int | None) -> None:
        self.sampling_rate = sampling_rate
        self.length = output_sequence_length

    def __call__(self, paths: list[str]) -> np.ndarray:
        clips = []
        for path in paths:
            audio, rate = read_wav(path)
            if self.sampling_rate is not None and rate != self.sampling_rate:
                raise ValueError(
                    f"{path} is sampled at {rate} Hz, not sampling_rate={self.sampling_rate}: "
                    f"dendrite does not resample audio."
                )
            if self.length is not None:
                audio = audio[: self.length]
            clips.append(audio)
        channels = {clip.shape[1] for clip in clips}
        if len(channels) > 1:
            raise ValueError(
                f"The WAV files of one batch have different channel counts {sorted(channels)} "
                f"(first: {paths[0]})."
            )
        length = self.length or max(len(clip) for clip in clips)
        batch = np.zeros((len(clips), length, channels.pop()), dtype=np.float32)
        for i, clip in enumerate(clips):
            batch[i, : len(clip)] = clip
        return batch


def audio_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: list[str] | None = None,
    batch_size: int | None = 32,
    sampling_rate: int | None = None,
    output_sequence_length: int | None = None,
    ragged: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> Any:
    """A dataset of the WAV files under ``directory`` (Keras 3's arguments).

    Returns:
        A ``FileDataset`` of ``(audio, labels)`` batches, audio float32 ``(batch, time,
        channels)``; with ``subset="both"``, a list of two.
    """
    if ragged and output_sequence_length is not None:
        raise ValueError("Cannot set both `ragged` and `output_sequence_length`")
    if ragged:
        raise ValueError("dendrite has no ragged tensors: leave ragged=False (batches are padded).")
    if sampling_rate is not None and (not isinstance(sampling_rate, int) or sampling_rate <= 0):
        raise ValueError(
            f"`sampling_rate` should be a positive integer. Received: sampling_rate={sampling_rate}"
        )
    labels, label_mode = dataset_utils.check_label_arguments(
        labels, label_mode, class_names, "audio"
    )
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1_000_000)
    paths, encoded, class_names = dataset_utils.index_labeled_files(
        directory, labels, label_mode, class_names, ALLOWED_FORMATS, shuffle, seed,
        follow_links, verbose,
    )  # fmt: skip
    loader = AudioLoader(sampling_rate, output_sequence_length)

    return dataset_utils.datasets_for_subset(
        paths, encoded, loader, subset, validation_split, batch_size, shuffle, seed,
        class_names, verbose,
        lambda which: ValueError(
            f"No {which}audio files found in directory {directory}. "
            f"Allowed format(s): {ALLOWED_FORMATS}"
        ),
    )  # fmt: skip
