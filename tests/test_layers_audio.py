"""MelSpectrogram against Keras 3 (same signals: batch and one signal, power and decibels,
window lengths), its mel filters, gradients by finite differences, a model that learns on
it, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dendrite as keras
from dendrite.layers.audio import MelSpectrogram, linear_to_mel_weight_matrix
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

RNG = np.random.default_rng(0)
CASES = [
    (
        {"fft_length": 64, "sequence_stride": 16, "num_mel_bins": 12, "sampling_rate": 8000},
        (3, 400),
    ),
    (
        {
            "fft_length": 32,
            "sequence_stride": 8,
            "sequence_length": 20,
            "num_mel_bins": 6,
            "sampling_rate": 4000,
            "min_freq": 100.0,
            "max_freq": 1500.0,
            "window": "hamming",
        },
        (2, 123),
    ),
    (
        {
            "fft_length": 64,
            "sequence_stride": 32,
            "num_mel_bins": 8,
            "power_to_db": False,
            "mag_exp": 1.0,
        },
        (257,),
    ),
    (
        {
            "fft_length": 16,
            "sequence_stride": 4,
            "num_mel_bins": 4,
            "sampling_rate": 800,
            "top_db": 20.0,
            "ref_power": 0.5,
            "window": None,
        },
        (1, 60),
    ),
]


def test_same_spectrograms_as_keras(tmp_path):
    for i, (_, shape) in enumerate(CASES):
        np.save(tmp_path / f"x{i}.npy", RNG.standard_normal(shape).astype("float32"))
    (tmp_path / "cases.json").write_text(json.dumps([kwargs for kwargs, _ in CASES]))
    run_keras_side(
        """
import json, sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
for i, kwargs in enumerate(json.loads((root / "cases.json").read_text())):
    out = keras.layers.MelSpectrogram(**kwargs)(np.load(root / f"x{i}.npy"))
    np.save(root / f"y{i}.npy", keras.ops.convert_to_numpy(out))
""",
        tmp_path,
    )
    for i, (kwargs, _) in enumerate(CASES):
        layer = MelSpectrogram(**kwargs)
        x = np.load(tmp_path / f"x{i}.npy")
        out = layer(x).data
        expected = np.load(tmp_path / f"y{i}.npy")
        assert out.shape == expected.shape == layer.compute_output_shape(x.shape)
        scale = 1e-3 if kwargs.get("power_to_db", True) else 1e-4 * np.abs(expected).max()
        np.testing.assert_allclose(out, expected, atol=scale, rtol=1e-4)


def test_mel_filters_are_triangles_with_unit_peaks():
    weights = linear_to_mel_weight_matrix(10, 129, 16000, 20.0, 8000.0)
    assert weights.shape == (129, 10) and np.all(weights[0] == 0)
    assert np.all(weights >= 0) and np.all(weights.max(axis=0) <= 1)
    peaks = weights.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)  # each band above the last


def test_gradients_by_finite_differences():
    layer = MelSpectrogram(
        fft_length=16,
        sequence_stride=8,
        num_mel_bins=4,
        sampling_rate=800,
        dtype="float64",
        power_to_db=False,
    )
    x = RNG.standard_normal((2, 40))
    gradcheck(lambda s: (layer(s) ** 2).sum(), x)


def test_a_keyword_spotting_model_learns_on_it(tmp_path):
    keras.utils.set_random_seed(0)
    t = np.arange(800) / 8000.0
    low = np.sin(2 * np.pi * 300 * t[None] + RNG.random((32, 1)) * 6)
    high = np.sin(2 * np.pi * 2500 * t[None] + RNG.random((32, 1)) * 6)
    x = np.concatenate([low, high]).astype("float32") + 0.05 * RNG.standard_normal(
        (64, 800)
    ).astype("float32")
    y = np.repeat([0, 1], 32)
    model = keras.Sequential(
        [
            keras.Input((800,)),
            MelSpectrogram(fft_length=128, sequence_stride=64, num_mel_bins=16, sampling_rate=8000),
            keras.layers.Flatten(),
            keras.layers.Rescaling(1 / 80.0),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    model.save(tmp_path / "mel.keras")
    loaded = keras.models.load_model(tmp_path / "mel.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="must not exceed `fft_length`"):
        MelSpectrogram(fft_length=16, sequence_length=32)
    with pytest.raises(ValueError, match="`window` must be"):
        MelSpectrogram(window="kaiser")
    layer = MelSpectrogram(fft_length=16, sequence_stride=4, num_mel_bins=4, sampling_rate=800)
    with pytest.raises(ValueError, match=r"\(samples,\) or \(batch, samples\).*\(2, 3, 40\)"):
        layer(np.zeros((2, 3, 40), "float32"))
    with pytest.raises(ValueError, match="more than fft_length // 2 = 8 samples"):
        layer(np.zeros((2, 8), "float32"))
