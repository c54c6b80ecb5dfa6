"""Small file, huge memory (issue #12): building and loading a model are shape-only.

A model file of about a kilobyte can describe activations of gigabytes (an ``Input`` of one
pixel, ``UpSampling2D((8192, 8192))``, ``Dense(4)``). Building the graph must not run the
layers on placeholders of that size, so loading costs memory in proportion to the weights;
running such a model is refused with a clear error, past ``max_sample_elements()`` values
per sample in one layer output (``DENDRITE_MAX_SAMPLE_ELEMENTS`` moves the bound).
"""

from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np
import pytest

import dendrite as tf
from dendrite import _settings
from dendrite.layers import symbolic

layers = tf.keras.layers

# Each builds a model whose activations for one sample are gigabytes, from a few weights
# (within the size arguments that architecture_checks lets a small file declare).
INFLATING = {
    "upsampling2d_dense": lambda: [
        tf.keras.Input((1, 1, 1)),
        layers.UpSampling2D((8192, 8192)),
        layers.Dense(4),
    ],
    "upsampling1d_conv": lambda: [
        tf.keras.Input((1, 8)),
        layers.UpSampling1D(16_000_000),
        layers.Conv1D(3, 3),
    ],
    "repeat_vector_activation": lambda: [
        tf.keras.Input((8,)),
        layers.RepeatVector(16_000_000),
        layers.Activation("relu"),
        layers.Dense(1),
    ],
    "padding_pooling": lambda: [
        tf.keras.Input((1, 1, 1)),
        layers.ZeroPadding2D(((8000, 0), (8000, 0))),
        layers.MaxPooling2D(1),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Reshape((-1, 1)),
        layers.Dense(2),
    ],
    "transposed_conv": lambda: [
        tf.keras.Input((2, 2, 1)),
        layers.Conv2DTranspose(2, 1, strides=(4000, 4000)),
        layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(),
    ],
}


def _peak_bytes(fn) -> tuple[object, int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak, time.perf_counter() - start


@pytest.mark.parametrize("case", sorted(INFLATING))
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_building_and_loading_cost_no_activation_memory(tmp_path, case, kind) -> None:
    def build():
        stack = INFLATING[case]()
        if kind == "sequential":
            return tf.keras.Sequential(stack)
        x = stack[0]
        y = x
        for layer in stack[1:]:
            y = layer(y)
        return tf.keras.Model(x, y)

    model, peak, seconds = _peak_bytes(build)
    assert peak < 32 * 2**20, f"building {case} peaked at {peak / 2**20:.0f} MiB"
    path = os.path.join(tmp_path, "m.dendrite")
    model.save(path)
    assert os.path.getsize(path) < 16 * 1024
    loaded, peak, seconds = _peak_bytes(lambda: tf.keras.models.load_model(path))
    assert peak < 32 * 2**20, f"loading {case} peaked at {peak / 2**20:.0f} MiB"
    assert seconds < 5.0
    assert loaded.output_shape == model.output_shape
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", sorted(INFLATING))
def test_running_an_oversized_model_is_refused_naming_the_layer(case) -> None:
    model = tf.keras.Sequential(INFLATING[case]())
    before = [w.copy() for w in model.get_weights()]
    x = np.zeros((1, *model.input_shape[1:]), "float32")
    with pytest.raises(
        ValueError,
        match=r"cannot run: layer '.+' \(\w+\) outputs .+ values per "
        r"sample, above the bound of 67,108,864",
    ) as caught:
        model.predict(x, verbose=0)
    assert "DENDRITE_MAX_SAMPLE_ELEMENTS" in str(caught.value)
    model.compile("sgd", "mse")
    y = np.zeros((1, *[s or 1 for s in model.output_shape[1:]]), "float32")
    with pytest.raises(ValueError, match="values per sample"):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_bound_is_read_from_the_environment(monkeypatch) -> None:
    def model():
        return tf.keras.Sequential([tf.keras.Input((4,)), layers.RepeatVector(8), layers.Dense(2)])

    x = np.ones((3, 4), "float32")
    assert model().predict(x, verbose=0).shape == (3, 8, 2)
    monkeypatch.setenv("DENDRITE_MAX_SAMPLE_ELEMENTS", "31")
    assert _settings.max_sample_elements() == 31
    with pytest.raises(
        ValueError,
        match=r"'repeat_vector.*' \(RepeatVector\) outputs \(None, 8, "
        r"4\), 32 values per sample, above the bound of 31",
    ):
        model().predict(x, verbose=0)
    monkeypatch.setenv("DENDRITE_MAX_SAMPLE_ELEMENTS", "32")
    assert model().predict(x, verbose=0).shape == (3, 8, 2)
    for bad in ("0", "-3", "lots"):
        monkeypatch.setenv("DENDRITE_MAX_SAMPLE_ELEMENTS", bad)
        with pytest.raises(ValueError, match="DENDRITE_MAX_SAMPLE_ELEMENTS must be a positive"):
            model()


def test_small_layers_still_run_on_placeholders(monkeypatch) -> None:
    """Below the limit, output specs come from running the layer (exact dtypes, axes that
    vary); above it, from compute_output_shape. Both are counted here."""
    ran = []
    original = symbolic.placeholder_output_specs

    def counting(layer, *args, **kwargs):
        ran.append(layer.name)
        return original(layer, *args, **kwargs)

    monkeypatch.setattr(symbolic, "placeholder_output_specs", counting)
    x = tf.keras.Input((8,))
    small = layers.Dense(3, name="small")(x)
    big = layers.Dense(3, name="big")(layers.RepeatVector(2**20, name="wide")(x))
    assert "small" in ran and "big" not in ran and "wide" not in ran
    assert small.shape == (None, 3) and big.shape == (None, 2**20, 3)


def test_a_hostile_file_of_one_kilobyte_loads_in_milliseconds(tmp_path) -> None:
    """The issue's own case: Input (1, 1, 1), UpSampling2D(8192, 8192), Dense(4)."""
    x = tf.keras.Input((1, 1, 1))
    model = tf.keras.Model(x, layers.Dense(4)(layers.UpSampling2D((8192, 8192))(x)))
    path = tmp_path / "small.dendrite"
    model.save(path)
    assert path.stat().st_size < 2048
    loaded, peak, seconds = _peak_bytes(lambda: tf.keras.models.load_model(path))
    assert seconds < 2.0 and peak < 16 * 2**20
    with pytest.raises(ValueError, match="268,435,456 values per sample"):
        loaded(np.zeros((1, 1, 1, 1), "float32"))
