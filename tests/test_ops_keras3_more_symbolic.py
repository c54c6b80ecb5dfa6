"""The keras.ops added with tests/test_ops_keras3_more_*.py on symbolic tensors: each records
a node of a functional model that predicts as the eager op does, trains through it where
the op is differentiable, and saves and loads (``keras.ops.image`` included)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops

RNG = np.random.default_rng(5)

# (name, input shape without the batch axis, the op on a tensor)
SYMBOLIC = [
    ("nanvar", (6,), lambda x: ops.nanvar(x, axis=-1)),
    ("nanquantile", (6,), lambda x: ops.nanquantile(x, 0.25, axis=1)),
    ("nancumsum", (6,), lambda x: ops.nancumsum(x, axis=1)),
    (
        "segment_max",
        (6,),
        lambda x: ops.transpose(ops.segment_max(ops.transpose(x), np.array([0, 1, 1, 0, 2, 1]))),
    ),
    ("rfft", (8,), lambda x: ops.rfft(x)[1]),
    ("fft", (8,), lambda x: ops.fft((x, ops.square(x)))[0]),
    ("stft", (24,), lambda x: ops.stft(x, 8, 4, 8)[0]),
    ("extract_sequences", (12,), lambda x: ops.extract_sequences(x, 4, 2)),
    ("depth_to_space", (2, 2, 8), lambda x: ops.depth_to_space(x, 2)),
    ("space_to_depth", (4, 4, 2), lambda x: ops.space_to_depth(x, 2)),
    ("layer_normalization", (5,), lambda x: ops.layer_normalization(x)),
    ("diff", (6,), lambda x: ops.diff(x, 2)),
    ("sinc", (6,), ops.sinc),
    ("logaddexp2", (6,), lambda x: ops.logaddexp2(x, 1.0)),
    ("cdist", (3, 2), lambda x: ops.cdist(x, x)),
    ("rearrange", (2, 3, 4), lambda x: ops.rearrange(x, "b h w c -> b c (h w)")),
    ("image.resize", (4, 6, 2), lambda x: ops.image.resize(x, (3, 5))),
    ("image.extract_patches", (4, 4, 2), lambda x: ops.image.extract_patches(x, 2)),
    ("image.rgb_to_grayscale", (3, 4, 3), ops.image.rgb_to_grayscale),
    ("image.crop_images", (5, 5, 1), lambda x: ops.image.crop_images(x, 1, 1, 2, 2)),
]


@pytest.mark.parametrize("name, shape, fn", SYMBOLIC, ids=[s[0] for s in SYMBOLIC])
def test_recorded_ops_predict_save_and_load(tmp_path, name, shape, fn):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, fn(inputs))
    assert any(getattr(layer, "op", None) == name for layer in model.layers), name
    x = RNG.uniform(0.1, 1.0, (3, *shape)).astype("float32")
    expected = fn(x).data
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.dendrite")
    loaded = keras.models.load_model(tmp_path / "m.dendrite")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_a_model_trains_through_new_ops():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(8)(inputs)
    spectrum = ops.rfft(hidden)[0]
    features = ops.layer_normalization(ops.concatenate([spectrum, ops.sinc(hidden)], -1))
    model = keras.Model(inputs, keras.layers.Dense(1)(features))
    model.compile(optimizer="adam", loss="mse")
    x = RNG.standard_normal((32, 8)).astype("float32")
    y = x[:, :1] * 2
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first


def test_tuple_results_and_attention_on_symbolic_tensors(tmp_path):
    q = keras.Input((4, 2, 3))
    kv = keras.Input((5, 2, 3))
    attended = ops.dot_product_attention(q, kv, kv, is_causal=False)
    real, imag = ops.fft2((q, ops.zeros_like(q)))
    model = keras.Model([q, kv], [attended, real, imag])
    a = RNG.standard_normal((2, 4, 2, 3)).astype("float32")
    b = RNG.standard_normal((2, 5, 2, 3)).astype("float32")
    got = model.predict([a, b], verbose=0)
    np.testing.assert_allclose(got[0], ops.dot_product_attention(a, b, b).data, rtol=1e-5)
    spectrum = np.fft.fft2(a)
    np.testing.assert_allclose(got[1], spectrum.real, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[2], spectrum.imag, rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "m.dendrite")
    again = keras.models.load_model(tmp_path / "m.dendrite").predict([a, b], verbose=0)
    for left, right in zip(again, got):
        np.testing.assert_allclose(left, right, rtol=1e-6)


def test_ops_taking_functions_run_on_symbolic_tensors_without_a_node():
    inputs = keras.Input((3,))
    out = ops.switch(1, [ops.exp, ops.sin], inputs)  # the branch records its own node
    assert out.shape == (None, 3)
    assert ops.dtype(inputs) == "float32"
    model = keras.Model(inputs, out)
    x = RNG.standard_normal((2, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.sin(x), rtol=1e-6)


def test_image_ops_are_reached_as_keras_names_them():
    assert ops.image.resize.__name__ == "resize"
    assert "image.resize" in ops.__all__ and "resize" not in ops.__all__
    assert not hasattr(ops, "resize")


def test_a_fresh_process_loads_a_model_with_an_image_op(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, ops.image.rgb_to_hsv(ops.image.resize(inputs, (2, 2))))
    x = RNG.uniform(0, 1, (1, 4, 4, 3)).astype("float32")
    model.save(tmp_path / "m.dendrite")
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, dendrite as k; "
        f"m = k.models.load_model({str(tmp_path / 'm.dendrite')!r}); "
        f"print(m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0).sum())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = model.predict(x, verbose=0).sum()
    assert abs(float(done.stdout.split()[-1]) - expected) < 1e-4
