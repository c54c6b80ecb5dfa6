"""Round trips with real Keras 3, where it is installed (CI installs it; skipped
otherwise): dendrite saves ``.keras``, Keras loads it and predicts the same, resumes
training from dendrite's optimizer state as dendrite does, and saves it again for
dendrite to load, and loads dendrite's sharded weights (``.weights.json``). Keras runs in
its own process (``fixtures/keras3/keras_side.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite import layers
from dendrite.layers.preprocessing import IntegerLookup, StringLookup
from dendrite.saving import save_weights

pytest.importorskip("h5py")
if importlib.util.find_spec("keras") is None:
    pytest.skip("real Keras 3 is not installed", allow_module_level=True)

SIDE = Path(__file__).parent / "fixtures" / "keras3" / "keras_side.py"
RNG = np.random.default_rng(0)


@keras.saving.register_keras_serializable(package="roundtrip")
class Scale(keras.layers.Layer):
    """A custom layer; keras_side.py registers its twin under the same name."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.scale = self.add_weight(shape=(), name="scale", initializer="ones", trainable=False)

    def call(self, x):
        return self.scale * keras.ops.matmul(x, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="roundtrip")
class Hooked(keras.layers.Layer):
    """A layer with Keras' saving hooks: an extra array in its own store and a word list
    in its assets, both of which change its output. keras_side.py registers its twin."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.words = []
        self.extra = np.zeros(units, "float32")

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.extra + float(len(self.words))

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["extra"] = np.asarray(self.extra)

    def load_own_variables(self, store):
        self.kernel.assign(store["0"])
        self.extra = np.asarray(store["extra"], "float32")

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, "words.txt"), "w") as stream:
            stream.write("\n".join(self.words))

    def load_assets(self, dir_path):
        with open(os.path.join(dir_path, "words.txt")) as stream:
            self.words = stream.read().split("\n")

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="roundtrip")
def halve(x):
    return x * 0.5


def floats(*shape):
    return RNG.normal(size=shape).astype("float32")


def _models():
    mlp = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ],
        name="mlp",
    )
    mlp.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit = ([floats(32, 8)], [RNG.integers(0, 3, 32)])
    mlp.fit(fit[0][0], fit[1][0], batch_size=8, epochs=1, shuffle=False, verbose=0)
    cnn = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.SeparableConv2D(3, 2),
            layers.DepthwiseConv2D(2),
            layers.Conv2DTranspose(2, 2),
            layers.GlobalAveragePooling2D(),
            layers.Dense(2),
        ],
        name="cnn",
    )
    cnn.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    cnn_fit = ([floats(16, 8, 8, 2)], [floats(16, 2)])
    cnn.fit(cnn_fit[0][0], cnn_fit[1][0], batch_size=8, epochs=1, shuffle=False, verbose=0)
    i = keras.Input((6, 3))
    h = layers.LSTM(4, return_sequences=True)(i)
    h = layers.Bidirectional(layers.GRU(3, return_sequences=True))(h)
    h = layers.GRU(2, reset_after=False, return_sequences=True)(h)
    h = layers.SimpleRNN(2)(h)
    rnn = keras.Model(i, layers.Dense(1)(h), name="rnn")
    rnn.compile(optimizer="rmsprop", loss="mse")
    rnn_fit = ([floats(16, 6, 3)], [floats(16, 1)])
    rnn.fit(rnn_fit[0][0], rnn_fit[1][0], batch_size=8, epochs=1, shuffle=False, verbose=0)
    tokens = keras.Input((5,), dtype="int32")
    e = layers.Embedding(10, 4, mask_zero=True)(tokens)
    a = layers.MultiHeadAttention(2, 3)(e, e)
    h = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(layers.Add()([e, a])))
    h = layers.Dropout(0.2)(h)  # inference only here: Keras and dendrite draw differently
    attn = keras.Model(tokens, layers.Dense(2)(h), name="attn")
    norm = layers.Normalization()
    norm.adapt(floats(20, 3) * 2 + 1)
    normalization = keras.Sequential([keras.Input((3,)), norm, layers.Dense(2)])
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3)], name="inner")
    a_in, b_in = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    h = layers.Concatenate()([inner(a_in), b_in])
    multi = keras.Model(
        [a_in, b_in],
        [layers.Dense(1, name="r")(h), layers.Dense(2, activation="softmax", name="c")(h)],
    )
    custom = keras.Sequential(
        [keras.Input((4,)), Scale(3), layers.Lambda(halve), layers.Dense(2, activation=halve)],
        name="custom",
    )
    custom.layers[0].scale.assign(1.5)
    application = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=3
    )
    for layer in application.layers:  # statistics that are not 0 and 1
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.assign(0.1 * floats(*layer.moving_mean.shape))
            layer.moving_variance.assign(RNG.uniform(0.5, 1.5, layer.moving_variance.shape))
    ops = keras.ops
    c_in, d_in = keras.Input((3, 4)), keras.Input((4,))
    h = ops.transpose(layers.Dense(4)(c_in), (0, 2, 1))
    h = ops.sum(ops.relu(h), axis=-1) * 2.0 + 1.0
    h = ops.concatenate([h[:, 1:3], ops.square(d_in)], axis=-1)
    op_model = keras.Model([c_in, d_in], layers.Dense(2)(h), name="ops")
    # ops whose Keras classes are not their names in camel case, from four families
    picture = keras.Input((4, 4, 3))
    grey = ops.image.resize(ops.image.rgb_to_grayscale(picture), (2, 2))
    flat = ops.reshape(grey, (-1, 4))
    pairs = ops.reshape(flat, (-1, 2, 2))
    spelled = ops.concatenate(
        [
            ops.layer_normalization(flat, axis=-1),
            ops.rms_normalization(flat, axis=-1),
            ops.reshape(ops.cdist(pairs, pairs), (-1, 4)),
            ops.logsumexp(flat, axis=-1, keepdims=True),
            ops.top_k(flat, 2)[0],
        ],
        axis=-1,
    )
    spelled_model = keras.Model(picture, layers.Dense(2)(spelled), name="spelled_ops")
    texts = np.array(["the cat sat on the mat", "the dog sat", "a cat and a dog", "birds sing"])
    vectorize = layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    vectorize.adapt(texts)
    t_in = keras.Input((1,), dtype="string")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(12, 4)(vectorize(t_in)))
    text = keras.Model(t_in, layers.Dense(2)(h), name="text")
    tf_idf = layers.TextVectorization(output_mode="tf_idf", ngrams=2)
    tf_idf.adapt(texts)
    f_in = keras.Input((1,), dtype="string")
    text_tf_idf = keras.Model(f_in, layers.Dense(2)(tf_idf(f_in)), name="text_tf_idf")
    words = StringLookup(mask_token="")
    words.adapt(np.array([["red", "green", "green"], ["blue", "blue", "blue"]]))
    numbers = IntegerLookup()
    numbers.adapt(np.array([5, 7, 7, 9, 9, 9, 11]))
    hot = IntegerLookup(output_mode="multi_hot", num_oov_indices=2)
    hot.adapt(np.array([1, 2, 2, 3]))
    s_in = keras.Input((3,), dtype="string", name="words")
    i_in = keras.Input((3,), dtype="int64", name="numbers")
    h = layers.Concatenate()(
        [
            layers.Flatten()(layers.Embedding(5, 2)(words(s_in))),
            layers.Flatten()(layers.Embedding(5, 2)(numbers(i_in))),
            hot(i_in),
        ]
    )
    lookups = keras.Model([s_in, i_in], layers.Dense(2)(h), name="lookups")
    strings = np.array([["the cat sat"], ["a bird sings on the mat"], ["zebra"]])
    hooked_layer = Hooked(3)
    hooked = keras.Sequential([keras.Input((4,)), hooked_layer], name="hooked")
    hooked_layer.words = ["x", "y"]
    hooked_layer.extra = np.array([1.0, -2.0, 0.5], "float32")
    return {
        "hooked": (hooked, [floats(3, 4)], None),
        "text": (text, [strings], None),
        "text_tf_idf": (text_tf_idf, [strings], None),
        "lookups": (
            lookups,
            [
                np.array([["red", "", "blue"], ["green", "purple", "red"]]),
                np.array([[5, 9, 4], [1, 2, 11]], dtype="int64"),
            ],
            None,
        ),
        "ops": (op_model, [floats(3, 3, 4), floats(3, 4)], None),
        "spelled_ops": (spelled_model, [RNG.uniform(0, 1, (3, 4, 4, 3)).astype("float32")], None),
        "mobilenet_v2": (
            application,
            [RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")],
            None,
        ),
        "custom": (custom, [floats(3, 4)], None),
        "mlp": (mlp, [floats(4, 8)], fit),
        "cnn": (cnn, [floats(3, 8, 8, 2)], cnn_fit),
        "rnn": (rnn, [floats(3, 6, 3)], rnn_fit),
        "attn": (attn, [RNG.integers(0, 10, (3, 5)).astype("int32")], None),
        "normalization": (normalization, [floats(3, 3)], None),
        "multi": (multi, [floats(3, 4), floats(3, 2)], None),
    }


def _predict(model, xs):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(y) for y in (out if isinstance(out, list) else [out])]


@pytest.fixture(scope="module")
def keras_ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("keras_roundtrip")
    models = _models()
    index = {}
    for name, (model, xs, fit) in models.items():
        model.save(root / f"{name}.keras")
        if name in SHARDED:
            save_weights(model, root / f"{name}.d.weights.json", max_shard_size=2e-6)
        for i, x in enumerate(xs):
            np.save(root / f"{name}.x{i}.npy", x, allow_pickle=False)
        index[name] = {"x": len(xs), "y": 1, "fit": fit is not None, "sharded": name in SHARDED}
        if fit is not None:
            for i, x in enumerate(fit[0]):
                np.save(root / f"{name}.fx{i}.npy", x, allow_pickle=False)
            for i, y in enumerate(fit[1]):
                np.save(root / f"{name}.fy{i}.npy", y, allow_pickle=False)
            index[name]["y"] = len(fit[1])
    (root / "index.json").write_text(json.dumps(index))
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    done = subprocess.run(
        [sys.executable, str(SIDE), str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root, models


NAMES = [
    "mlp",
    "cnn",
    "rnn",
    "attn",
    "normalization",
    "multi",
    "custom",
    "mobilenet_v2",
    "ops",
    "spelled_ops",
    "text",
    "text_tf_idf",
    "lookups",
    "hooked",
]
RESUMED = ["mlp", "cnn", "rnn"]
SHARDED = ["mlp", "cnn"]  # dendrite writes Keras' sharded weights; Keras loads them


def test_round_trips_with_real_keras(keras_ran):
    """One test, so that Keras runs once even when xdist spreads the tests: every check
    below runs for every model, and the failures are reported together."""
    root, models = keras_ran
    failures = []

    def check(label, got, want, **tolerance):
        try:
            np.testing.assert_allclose(got, want, **tolerance)
        except AssertionError as error:
            failures.append(f"{label}: {str(error).strip().splitlines()[:6]}")

    for name in NAMES:
        model, xs, _ = models[name]
        mine = _predict(model, xs)
        # Keras loads dendrite's file and predicts the same
        for i, y in enumerate(mine):
            theirs = np.load(root / f"{name}.kp{i}.npy", allow_pickle=False)
            check(f"{name}: Keras' prediction {i}", theirs, y, atol=1e-5, rtol=0)
        # Keras' re-save loads in dendrite, and its weights file into the dendrite model
        again = keras.models.load_model(root / f"{name}.k.keras")
        for i, (a, b) in enumerate(zip(_predict(again, xs), mine)):
            check(f"{name}: Keras' re-save, output {i}", a, b, atol=1e-5, rtol=0)
        for variable in again.weights:
            variable.data[...] = 0
        again.load_weights(root / f"{name}.k.weights.h5")
        for i, (a, b) in enumerate(zip(_predict(again, xs), mine)):
            check(f"{name}: Keras' weights file, output {i}", a, b, atol=1e-5, rtol=0)
    # Keras loads dendrite's sharded weights into the architecture and predicts the same
    for name in SHARDED:
        model, xs, _ = models[name]
        for i, y in enumerate(_predict(model, xs)):
            theirs = np.load(root / f"{name}.kps{i}.npy", allow_pickle=False)
            check(f"{name}: Keras' prediction from sharded weights {i}", theirs, y, atol=1e-5)
    # Keras resumes training from dendrite's optimizer state as dendrite does
    for name in RESUMED:
        model, _, (fx, fy) = models[name]
        model.fit(fx[0], fy[0], batch_size=8, epochs=1, shuffle=False, verbose=0)
        theirs = keras.models.load_model(root / f"{name}.keras", compile=False)
        theirs.load_weights(root / f"{name}.kresume.weights.h5")
        for mine, other in zip(model.weights, theirs.weights):
            check(f"{name}: resumed {mine.path}", other.data, mine.data, atol=1e-4, rtol=1e-4)
    assert not failures, "\n".join(failures)
