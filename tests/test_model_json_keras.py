"""``to_json`` / ``model_from_json`` between dendrite and Keras 3, both ways: the JSON of
one rebuilds the same architecture in the other (the same layers, shapes and parameter
counts), and with the same weights the same predictions. dendrite's own spelling, which
``to_json`` wrote before it took Keras', still loads."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import dendrite as keras
from dendrite.testing.keras_side import run_keras_side

pytest.importorskip("keras")

# Each model is built by the same function in Keras' process and in dendrite's: `keras` is
# either namespace.


def mlp(keras):  # noqa: ANN001, ANN201
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(
                16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)
            ),
            keras.layers.Dropout(0.3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="mlp",
    )
    return model, [(5, 12)]


def cnn(keras):  # noqa: ANN001, ANN201
    model = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    return model, [(3, 10, 10, 2)]


def functional(keras):  # noqa: ANN001, ANN201
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    extra = keras.Input((4,), name="extra")
    seq = keras.layers.Embedding(20, 6, mask_zero=True)(tokens)
    seq = keras.layers.LSTM(5)(seq)
    joined = keras.layers.Concatenate()([seq, keras.layers.Dense(3, activation="tanh")(extra)])
    out = keras.layers.Dense(2, activation="sigmoid", name="score")(joined)
    return keras.Model([tokens, extra], out, name="two_inputs"), [(4, 7), (4, 4)]


MODELS = {"mlp": mlp, "cnn": cnn, "functional": functional}
SOURCES = "\n\n".join(inspect.getsource(build) for build in MODELS.values())


def _inputs(shapes: list, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        if len(shape) == 2 and shape[1] == 7:  # token ids, some padding
            arrays.append(rng.integers(0, 20, size=shape).astype("int32"))
        else:
            arrays.append(rng.standard_normal(shape).astype("float32"))
    return arrays


KERAS_WRITES = """
import json, sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
keras.utils.set_random_seed(1)
MODELS = {"mlp": mlp, "cnn": cnn, "functional": functional}
for name, build in MODELS.items():
    model, shapes = build(keras)
    (root / f"{name}.keras.json").write_text(model.to_json())
    for i, w in enumerate(model.get_weights()):
        np.save(root / f"{name}.w{i}.npy", w)
    (root / f"{name}.count").write_text(str(len(model.get_weights())))
    inputs = [np.load(root / f"{name}.x{i}.npy") for i in range(len(shapes))]
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    np.save(root / f"{name}.keras_out.npy", out)
    (root / f"{name}.params").write_text(str(model.count_params()))
"""

KERAS_READS = """
import json, sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
for name in ("mlp", "cnn", "functional"):
    model = keras.models.model_from_json((root / f"{name}.dendrite.json").read_text())
    count = int((root / f"{name}.dcount").read_text())
    model.set_weights([np.load(root / f"{name}.dw{i}.npy") for i in range(count)])
    n = int((root / f"{name}.n").read_text())
    inputs = [np.load(root / f"{name}.x{i}.npy") for i in range(n)]
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    np.save(root / f"{name}.keras_from_dendrite.npy", out)
    (root / f"{name}.keras_params").write_text(str(model.count_params()))
    (root / f"{name}.keras_layers").write_text(
        json.dumps([type(layer).__name__ for layer in model.layers])
    )
"""


def _script(body: str) -> str:
    """A Keras-side script: the model functions above, then ``body``."""
    head, rest = body.split("root = ", 1)
    return f"{head}\n{SOURCES}\n\nroot = {rest}"


def test_model_json_carries_over_both_ways(tmp_path):
    for name, build in MODELS.items():
        _, shapes = build(keras)
        for i, array in enumerate(_inputs(shapes)):
            np.save(tmp_path / f"{name}.x{i}.npy", array)
        (tmp_path / f"{name}.n").write_text(str(len(shapes)))
    run_keras_side(_script(KERAS_WRITES), tmp_path)

    for name, build in MODELS.items():
        inputs = [np.load(tmp_path / f"{name}.x{i}.npy") for i in range(len(build(keras)[1]))]
        feed = inputs if len(inputs) > 1 else inputs[0]
        # Keras' JSON -> dendrite, with Keras' weights: Keras' predictions
        rebuilt = keras.models.model_from_json((tmp_path / f"{name}.keras.json").read_text())
        count = int((tmp_path / f"{name}.count").read_text())
        rebuilt.set_weights([np.load(tmp_path / f"{name}.w{i}.npy") for i in range(count)])
        assert rebuilt.count_params() == int((tmp_path / f"{name}.params").read_text())
        np.testing.assert_allclose(
            rebuilt.predict(feed, verbose=0),
            np.load(tmp_path / f"{name}.keras_out.npy"),
            rtol=1e-5,
            atol=1e-5,
        )
        # dendrite's JSON -> Keras (written below, read by the second Keras run)
        model, _ = build(keras)
        (tmp_path / f"{name}.dendrite.json").write_text(model.to_json())
        weights = model.get_weights()
        for i, w in enumerate(weights):
            np.save(tmp_path / f"{name}.dw{i}.npy", w)
        (tmp_path / f"{name}.dcount").write_text(str(len(weights)))
        np.save(tmp_path / f"{name}.dendrite_out.npy", model.predict(feed, verbose=0))
        # and back into dendrite: the same architecture
        again = keras.models.model_from_json(model.to_json())
        assert [type(layer).__name__ for layer in again.layers] == [
            type(layer).__name__ for layer in model.layers
        ]
        again.set_weights(weights)
        np.testing.assert_array_equal(
            again.predict(feed, verbose=0), np.load(tmp_path / f"{name}.dendrite_out.npy")
        )
    run_keras_side(_script(KERAS_READS), tmp_path)
    for name, build in MODELS.items():
        model, _ = build(keras)
        assert int((tmp_path / f"{name}.keras_params").read_text()) == model.count_params()
        assert json.loads((tmp_path / f"{name}.keras_layers").read_text()) == [
            type(layer).__name__ for layer in model.layers
        ]
        np.testing.assert_allclose(
            np.load(tmp_path / f"{name}.keras_from_dendrite.npy"),
            np.load(tmp_path / f"{name}.dendrite_out.npy"),
            rtol=1e-5,
            atol=1e-5,
        )


def test_json_in_dendrites_own_spelling_still_loads():
    """What ``to_json`` wrote before (modules ``dendrite.*``, a ``format`` key)."""
    from dendrite.saving import architecture
    from dendrite.saving.model_file import FORMAT

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    own = {"format": FORMAT, "dendrite_version": "0.1.0", **architecture.encode_model(model)}
    assert own["module"].startswith("dendrite.")
    rebuilt = keras.models.model_from_json(json.dumps(own))
    rebuilt.set_weights(model.get_weights())
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))


def test_to_json_is_keras_spelling_and_takes_json_arguments():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    text = model.to_json(indent=2)
    assert "\n  " in text
    document = json.loads(text)
    assert document["module"] == "keras" and document["class_name"] == "Sequential"
    dense = document["config"]["layers"][1]
    assert dense["module"] == "keras.layers" and dense["config"]["dtype"]["class_name"] == (
        "DTypePolicy"
    )
