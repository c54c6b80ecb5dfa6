"""ONNX export of the audio layers against ``predict`` (float32, within 1e-5 relative to
the output's scale): MelSpectrogram (windows, magnitude exponent, decibels) and
STFTSpectrogram (modes, padding, layouts); STFTSpectrogram's "angle" mode is refused;
ReversibleEmbedding (of language models' tied output layers) forward and reverse."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export.errors import NotExportableError  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402
from dendrite.layers.stft_spectrogram import STFTSpectrogram  # noqa: E402

TOLERANCE = 1e-5
RNG = np.random.default_rng(0)


def _check(model, data, path) -> None:
    model.export(path)
    assert max_relative_difference(run_onnx(path, data)[0], model.predict(data, verbose=0)) <= (
        TOLERANCE
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mag_exp": 1, "power_to_db": False},
        {"sequence_length": 200, "sequence_stride": 64, "window": "hamming", "top_db": 20.0},
    ],
)
def test_mel_spectrogram(kwargs, tmp_path) -> None:
    x = K.Input((1000,))
    settings = {"fft_length": 256, "sequence_length": 256, "sequence_stride": 128, **kwargs}
    layer = K.layers.MelSpectrogram(num_mel_bins=16, sampling_rate=8000, **settings)
    _check(K.Model(x, layer(x)), RNG.standard_normal((3, 1000)).astype("float32"), tmp_path / "m")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "psd", "padding": "same"},
        {"mode": "stft", "expand_dims": True},
        {"mode": "real", "data_format": "channels_first"},
        {"mode": "magnitude", "expand_dims": True, "data_format": "channels_first"},
        {"mode": "imag", "window": "hamming", "fft_length": 64},
    ],
)
def test_stft_spectrogram(kwargs, tmp_path) -> None:
    shape = (2, 300) if kwargs.get("data_format") == "channels_first" else (300, 2)
    x = K.Input(shape)
    model = K.Model(x, STFTSpectrogram(frame_length=32, frame_step=16, **kwargs)(x))
    _check(model, RNG.standard_normal((3, *shape)).astype("float32"), tmp_path / "s")


def test_stft_spectrogram_angle_is_refused(tmp_path) -> None:
    x = K.Input((300, 1))
    model = K.Model(x, STFTSpectrogram(mode="angle", frame_length=32)(x))
    with pytest.raises(NotExportableError, match="atan2"):
        model.export(tmp_path / "angle.onnx")


@pytest.mark.parametrize(
    "kwargs", [{}, {"tie_weights": False}, {"logit_soft_cap": 0.05, "mask_zero": True}]
)
def test_reversible_embedding_both_ways(kwargs, tmp_path) -> None:
    from dendrite.layers.reversible_embedding import ReversibleEmbedding

    ids = K.Input((5,), dtype="int64")
    shared = ReversibleEmbedding(11, 4, **kwargs)
    hidden = K.layers.Dense(4, activation="tanh")(shared(ids))
    model = K.Model(ids, shared(hidden, reverse=True))
    _check(model, RNG.integers(0, 11, (3, 5)), tmp_path / "r")
