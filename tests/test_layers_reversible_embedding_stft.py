"""ReversibleEmbedding and STFTSpectrogram (with the STFT initializer): against Keras 3 on
the same weights and signals (in a subprocess, where Keras is installed), by finite
differences in float64, and their shapes, masks, configs and errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dendrite as keras
from dendrite.layers.reversible_embedding import ReversibleEmbedding
from dendrite.layers.stft_spectrogram import STFTSpectrogram
from dendrite.testing import gradcheck

RNG = np.random.default_rng(5)
IDS = np.array([[1, 0, 3, 9], [2, 2, 0, 5]])
SIGNAL = RNG.standard_normal((2, 200, 2)).astype("float32")

EMBEDDING_CASES = {
    "tied": {"input_dim": 10, "output_dim": 4},
    "untied": {"input_dim": 10, "output_dim": 4, "tie_weights": False},
    "capped": {"input_dim": 10, "output_dim": 4, "logit_soft_cap": 0.05},
}
STFT_CASES = {
    "log": {"frame_length": 32, "frame_step": 16, "fft_length": 64},
    "magnitude_same": {"mode": "magnitude", "frame_length": 30, "padding": "same"},
    "psd_hamming": {"mode": "psd", "frame_length": 32, "window": "hamming", "periodic": True},
    "real_spectrum": {"mode": "real", "frame_length": 16, "scaling": "spectrum"},
    "imag_nowindow": {"mode": "imag", "frame_length": 16, "window": None, "scaling": None},
    "angle": {"mode": "angle", "frame_length": 16, "fft_length": 32},
    "stft_expand": {"mode": "stft", "frame_length": 16, "expand_dims": True},
    "first_expand": {
        "mode": "magnitude",
        "frame_length": 16,
        "data_format": "channels_first",
        "expand_dims": True,
    },
    "first": {"frame_length": 16, "data_format": "channels_first", "window": "blackman"},
    "bartlett": {"mode": "magnitude", "frame_length": 17, "window": "bartlett"},
}

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    ids = np.load(root + "/ids.npy", allow_pickle=False)
    signal = np.load(root + "/signal.npy", allow_pickle=False)
    for name, kwargs in cases["embedding"].items():
        layer = keras.layers.ReversibleEmbedding(**kwargs)
        layer.build(ids.shape)
        weights = [np.load(root + f"/{name}.w{i}.npy") for i in range(len(layer.weights))]
        layer.set_weights(weights)
        hidden = layer(ids)
        np.save(root + f"/{name}.forward.npy", keras.ops.convert_to_numpy(hidden))
        logits = layer(hidden, reverse=True)
        np.save(root + f"/{name}.reverse.npy", keras.ops.convert_to_numpy(logits))
    for name, kwargs in cases["stft"].items():
        layer = keras.layers.STFTSpectrogram(**kwargs)
        x = np.moveaxis(signal, -1, 1) if kwargs.get("data_format") == "channels_first" else signal
        np.save(root + f"/{name}.out.npy", keras.ops.convert_to_numpy(layer(x)))
        np.save(root + f"/{name}.shape.npy", np.asarray(layer.compute_output_shape(x.shape)))
    """
)


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("real Keras 3 is not installed")
    root = tmp_path_factory.mktemp("reversible_stft")
    np.save(root / "ids.npy", IDS, allow_pickle=False)
    np.save(root / "signal.npy", SIGNAL, allow_pickle=False)
    mine = {}
    for name, kwargs in EMBEDDING_CASES.items():
        layer = ReversibleEmbedding(**kwargs)
        hidden = layer(IDS)
        mine[name] = (hidden.data, layer(hidden, reverse=True).data)
        for i, w in enumerate(layer.get_weights()):
            np.save(root / f"{name}.w{i}.npy", w, allow_pickle=False)
    cases = {"embedding": EMBEDDING_CASES, "stft": STFT_CASES}
    (root / "cases.json").write_text(json.dumps(cases))
    (root / "side.py").write_text(KERAS_SIDE)
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    done = subprocess.run(
        [sys.executable, str(root / "side.py"), str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root, mine


@pytest.mark.parametrize("name", list(EMBEDDING_CASES))
def test_reversible_embedding_matches_keras(keras_results, name):
    root, mine = keras_results
    forward, reverse = mine[name]
    np.testing.assert_allclose(forward, np.load(root / f"{name}.forward.npy"), atol=1e-7)
    np.testing.assert_allclose(reverse, np.load(root / f"{name}.reverse.npy"), atol=1e-6)


@pytest.mark.parametrize("name", list(STFT_CASES))
def test_stft_spectrogram_matches_keras(keras_results, name):
    root, _ = keras_results
    kwargs = STFT_CASES[name]
    x = np.moveaxis(SIGNAL, -1, 1) if kwargs.get("data_format") == "channels_first" else SIGNAL
    layer = STFTSpectrogram(**kwargs)
    got = np.asarray(layer(x))
    theirs = np.load(root / f"{name}.out.npy")
    assert got.shape == theirs.shape
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(np.load(root / f"{name}.shape.npy"))
    # the angle of a near-zero bin is ill-conditioned: compare it where the bin is not tiny
    if kwargs.get("mode") == "angle":
        magnitude = np.asarray(STFTSpectrogram(**{**kwargs, "mode": "magnitude"})(x))
        got, theirs = got[magnitude > 1e-2], theirs[magnitude > 1e-2]
        # angles near the cut at +-pi agree modulo 2 pi
        np.testing.assert_allclose(np.angle(np.exp(1j * (got - theirs))), 0, atol=1e-4)
        return
    np.testing.assert_allclose(got, theirs, rtol=1e-4, atol=1e-4)


def test_reversible_embedding_ties_weights_masks_and_round_trips(tmp_path):
    layer = ReversibleEmbedding(10, 4, mask_zero=True)
    hidden = layer(IDS)
    np.testing.assert_array_equal(hidden._keras_mask.data, IDS != 0)
    logits = layer(hidden, reverse=True)
    np.testing.assert_allclose(logits.data, hidden.data @ layer.embeddings.data.T, rtol=1e-6)
    assert getattr(logits, "_keras_mask", None) is None
    assert [w.name for w in ReversibleEmbedding(10, 4, tie_weights=False).weights] == []
    untied = ReversibleEmbedding(10, 4, tie_weights=False)
    untied.build()
    assert [tuple(w.shape) for w in untied.weights] == [(10, 4), (4, 10)]
    assert untied.compute_output_shape((2, 3, 4), reverse=True) == (2, 3, 10)
    capped = ReversibleEmbedding(10, 4, logit_soft_cap=0.01)
    assert np.abs(capped(capped(IDS), reverse=True).data).max() < 0.01
    clone = ReversibleEmbedding.from_config(json.loads(json.dumps(untied.get_config())))
    assert clone.tie_weights is False and clone.input_dim == 10
    # a language-model head sharing the input embedding, saved and loaded
    inputs = keras.Input((4,), dtype="int32")
    shared = ReversibleEmbedding(10, 4, name="shared")
    outputs = shared(keras.layers.Dense(4)(shared(inputs)), reverse=True)
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.predict(IDS, verbose=0)
    model.save(tmp_path / "lm.keras")
    again = keras.models.load_model(tmp_path / "lm.keras")
    np.testing.assert_allclose(again.predict(IDS, verbose=0), before, rtol=1e-6)
    history = model.fit(IDS, IDS, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_reversible_embedding_errors_name_the_layer():
    layer = ReversibleEmbedding(10, 4, name="tok")
    with pytest.raises(ValueError, match="'tok'.*output_dim=4.*\\(2, 3\\)"):
        layer(np.ones((2, 3), "float32"), reverse=True)
    with pytest.raises(ValueError, match="logit_soft_cap"):
        ReversibleEmbedding(10, 4, logit_soft_cap=-1.0)


def test_reversible_embedding_gradients_by_finite_differences():
    layer = ReversibleEmbedding(6, 3, tie_weights=False, logit_soft_cap=2.0, dtype="float64")
    hidden = RNG.standard_normal((2, 3)).astype("float64")
    layer.build()
    gradcheck(lambda h: layer(h, reverse=True), hidden)
    tied = ReversibleEmbedding(6, 3, dtype="float64")
    tied.build()
    gradcheck(lambda h: tied(h, reverse=True), hidden)


def test_stft_spectrogram_gradients_by_finite_differences():
    signal = RNG.standard_normal((1, 24, 1))
    for mode in ("magnitude", "psd", "stft"):
        layer = STFTSpectrogram(mode=mode, frame_length=8, frame_step=4, dtype="float64")
        gradcheck(lambda x, layer=layer: layer(x), signal)


def test_stft_initializer_and_spectrogram_errors():
    kernel = keras.initializers.STFT("real", window=None, scaling=None)((4, 1, 3))
    np.testing.assert_allclose(kernel[:, 0, 0], np.ones(4))  # the zero frequency
    np.testing.assert_allclose(kernel[:, 0, 2], [1, -1, 1, -1], atol=1e-6)  # Nyquist
    imag = keras.initializers.get({"class_name": "STFT", "config": {"side": "imag"}})
    assert imag.get_config()["side"] == "imag"
    with pytest.raises(ValueError, match="side"):
        keras.initializers.STFT("both")
    with pytest.raises(ValueError, match="frame_length"):
        keras.initializers.STFT(window=np.ones(3))((4, 1, 3))
    with pytest.raises(ValueError, match="Output mode"):
        STFTSpectrogram(mode="power")
    with pytest.raises(ValueError, match="frame_step"):
        STFTSpectrogram(frame_length=8, frame_step=9)
    with pytest.raises(ValueError, match="fft_length"):
        STFTSpectrogram(frame_length=8, fft_length=4)
    with pytest.warns(UserWarning, match="power of two"):
        STFTSpectrogram(frame_length=8, fft_length=12)
    with pytest.raises(ValueError, match="Unknown window"):
        STFTSpectrogram(window="kaiserish")
    with pytest.raises(TypeError, match="float32"):
        STFTSpectrogram(frame_length=8)(np.ones((1, 16, 1), "int32"))
    with pytest.raises(ValueError, match="shorter than one frame"):
        STFTSpectrogram(frame_length=32)(np.ones((1, 16, 1), "float32"))
    with pytest.raises(ValueError, match="ndim|rank|3"):
        STFTSpectrogram(frame_length=8)(np.ones((16, 1), "float32"))
    layer = STFTSpectrogram(frame_length=8, window=np.hanning(8))
    config = json.loads(json.dumps(layer.get_config()))
    np.testing.assert_allclose(
        STFTSpectrogram.from_config(config)(SIGNAL).data, layer(SIGNAL).data, rtol=1e-6
    )
    assert float64_runs()


def float64_runs() -> bool:
    layer = STFTSpectrogram(frame_length=8, dtype="float64")
    return layer(SIGNAL.astype("float64")).dtype == np.float64
