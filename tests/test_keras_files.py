"""Keras 3's own files (issue 15): the fixtures real Keras wrote (``tests/fixtures/keras3``,
made by ``make_fixtures.py``) load in dendrite and predict what Keras predicted, their
``.weights.h5`` load into the same architecture, and training resumes from the saved
optimizer state where Keras left it."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite.saving.errors import ModelLoadError, WeightsLoadError

h5py = pytest.importorskip("h5py")
# KERAS3_FIXTURES_DIR: fixtures made elsewhere (another Keras backend or version)
HERE = Path(os.environ.get("KERAS3_FIXTURES_DIR") or Path(__file__).parent / "fixtures" / "keras3")
MANIFEST = json.loads((HERE / "manifest.json").read_text())["fixtures"]
TOLERANCE: dict[str, float] = {}  # per fixture, where a known difference needs more than 1e-5


@keras.saving.register_keras_serializable(package="fixtures")
class ScaledDense(keras.layers.Layer):
    """The fixtures' custom layer, defined again here: code never comes from the file."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.offset = self.add_weight(shape=(self.units,), name="offset", initializer="ones")
        self.scale = self.add_weight(shape=(), name="scale", initializer="ones", trainable=False)

    def call(self, x):
        return self.scale * keras.ops.matmul(x, self.kernel) + self.offset

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="fixtures")
class Block(keras.layers.Layer):
    """The fixtures' composite custom layer, defined again here."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = keras.layers.Dense(units, activation="relu")
        self.stack = [keras.layers.Dense(units), keras.layers.Dense(units)]
        self._norm = keras.layers.LayerNormalization()

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(self.units,), initializer="ones", name="gain")

    def call(self, x):
        h = self.inner(x)
        for layer in self.stack:
            h = layer(h)
        return self._norm(h) * self.gain

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="fixtures")
class Net(keras.Model):
    """The fixtures' subclassed model, defined again here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.alpha = keras.layers.Dense(3, activation="relu")
        self.zeta = keras.layers.Dense(2)

    def call(self, x):
        return self.zeta(self.alpha(x))


def arrays(name: str, tag: str, count: int) -> list[np.ndarray]:
    return [np.load(HERE / f"{name}.{tag}{i}.npy", allow_pickle=False) for i in range(count)]


def predict(model, inputs):
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def max_difference(model, name: str) -> float:
    entry = MANIFEST[name]
    got = predict(model, arrays(name, "x", entry["inputs"]))
    want = arrays(name, "y", entry["outputs"])
    assert [g.shape for g in got] == [w.shape for w in want]
    return max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_keras_model_file_predicts_what_keras_predicted(name):
    model = keras.models.load_model(HERE / f"{name}.keras")
    assert max_difference(model, name) <= TOLERANCE.get(name, 1e-5)


def test_gelu_is_keras_exact_form():
    """multi_io uses the "gelu" activation: Keras' is the exact erf form (ops.gelu's default
    is the tanh approximation); the fixture's predictions agree within 1e-5 only so."""
    model = keras.models.load_model(HERE / "multi_io.keras")
    assert max_difference(model, "multi_io") <= 1e-5


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_keras_weights_file_loads_into_the_architecture(name):
    model = keras.models.load_model(HERE / f"{name}.keras", compile=False)
    for variable in model.weights:
        variable.data[...] = 0
    model.load_weights(HERE / f"{name}.weights.h5")
    assert max_difference(model, name) <= TOLERANCE.get(name, 1e-5)


RESUMABLE = sorted(name for name, entry in MANIFEST.items() if entry["compiled"])


@pytest.mark.parametrize("name", RESUMABLE)
def test_training_resumes_where_keras_left_it(name):
    entry = MANIFEST[name]
    model = keras.models.load_model(HERE / f"{name}.keras")
    assert model.optimizer.built and int(model.optimizer.iterations.data) > 0
    x = arrays(name, "fit_x", entry["inputs"])
    n_out = len(list(HERE.glob(f"{name}.fit_y*.npy")))
    y = arrays(name, "fit_y", n_out)
    model.fit(
        x if len(x) > 1 else x[0],
        y if len(y) > 1 else y[0],
        batch_size=entry["batch_size"],
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    expected = keras.models.load_model(HERE / f"{name}.keras", compile=False)
    expected.load_weights(HERE / f"{name}.resume.weights.h5")
    # 1e-4: a Dense bias right before BatchNormalization gets a gradient of rounding noise
    # only, which Adam scales up to its step size (TensorFlow's and PyTorch's noise differ).
    for got, want in zip(model.weights, expected.weights):
        np.testing.assert_allclose(got.data, want.data, atol=1e-4, rtol=1e-4, err_msg=got.path)


def test_custom_layer_needs_its_registration():
    from dendrite.registry import custom_objects as registration

    saved = registration.GLOBAL_CUSTOM_OBJECTS.pop("fixtures>ScaledDense")
    try:
        with pytest.raises(ModelLoadError, match="ScaledDense"):
            keras.models.load_model(HERE / "custom_layer.keras")
        model = keras.models.load_model(
            HERE / "custom_layer.keras", custom_objects={"ScaledDense": ScaledDense}
        )
        assert max_difference(model, "custom_layer") <= 1e-5
    finally:
        registration.GLOBAL_CUSTOM_OBJECTS["fixtures>ScaledDense"] = saved


def test_keras_weights_into_a_different_architecture_change_nothing():
    model = keras.models.load_model(HERE / "mlp.keras", compile=False)
    before = [np.array(w.data) for w in model.weights]
    with pytest.raises(WeightsLoadError, match=r"expects shape \(8, 16\)"):
        model.load_weights(HERE / "batchnorm.weights.h5")
    assert all(np.array_equal(a, w.data) for a, w in zip(before, model.weights))


@pytest.mark.parametrize(
    "name",
    [
        "mlp",
        "recurrent",
        "bidirectional",
        "attention",
        "nested",
        "normalization",
        "embedding_masking",
        "multi_io",
        "cnn",
        "text_vectorization",
        "text_tf_idf",
        "lookups",
    ],
)
def test_dendrite_writes_what_it_reads(tmp_path, name):
    """Keras' file -> dendrite -> Keras' format again -> dendrite: the same predictions,
    the same optimizer state."""
    model = keras.models.load_model(HERE / f"{name}.keras")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert max_difference(again, name) <= TOLERANCE.get(name, 1e-5)
    if MANIFEST[name]["compiled"]:
        for a, b in zip(model.optimizer.variables, again.optimizer.variables):
            np.testing.assert_array_equal(a.data, b.data)
    weights = tmp_path / f"{name}.weights.h5"
    model.save_weights(weights)
    again.load_weights(weights)
    assert max_difference(again, name) <= TOLERANCE.get(name, 1e-5)


def test_dendrite_format_keras_files_still_load(tmp_path):
    """A ``.keras`` path written by dendrite before issue 15 (its own zip) still loads."""
    from dendrite.saving.architecture import to_json_bytes
    from dendrite.saving.archive import write_archive
    from dendrite.saving.model_file import CONFIG, model_document

    model = keras.models.load_model(HERE / "mlp.keras")
    document, parts = model_document(model)
    path = tmp_path / "old.keras"
    write_archive(path, {CONFIG: to_json_bytes(document), **parts})
    again = keras.models.load_model(path)
    assert max_difference(again, "mlp") <= 1e-5
    assert int(again.optimizer.iterations.data) == int(model.optimizer.iterations.data)


# --- Keras' assets (layers' vocabularies) ------------------------------------------------------
def _asset(name: str, member: str) -> list[str]:
    with zipfile.ZipFile(HERE / f"{name}.keras") as archive:
        return archive.read(member).decode("utf-8").splitlines()


def test_an_adapted_text_vectorization_reads_its_vocabulary_from_assets():
    with zipfile.ZipFile(HERE / "text_vectorization.keras") as archive:
        config = json.loads(archive.read("config.json"))
    layer_config = next(
        layer["config"]
        for layer in config["config"]["layers"]
        if layer["class_name"] == "TextVectorization"
    )
    assert layer_config["vocabulary"] is None  # Keras kept it in assets/, not the config
    model = keras.models.load_model(HERE / "text_vectorization.keras")
    vocabulary = _asset("text_vectorization", "assets/layers/text_vectorization/vocabulary.txt")
    assert model.layers[1].get_vocabulary() == vocabulary
    assert vocabulary[:2] == ["", "[UNK]"]


def test_tf_idf_weights_come_from_the_layers_own_variables():
    model = keras.models.load_model(HERE / "text_tf_idf.keras")
    with zipfile.ZipFile(HERE / "text_tf_idf.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as store:
            idf = store["layers/text_vectorization/vars/idf_weights"][()]
    np.testing.assert_allclose(model.layers[1]._idf, idf, rtol=1e-6)


def test_lookups_read_their_vocabularies_from_assets():
    model = keras.models.load_model(HERE / "lookups.keras")
    by_class = {type(layer).__name__: layer for layer in model.layers}
    words = _asset("lookups", "assets/layers/string_lookup/vocabulary.txt")
    assert by_class["StringLookup"].get_vocabulary() == words
    assert words[:2] == ["", "[UNK]"]  # the mask token, then the OOV token
    numbers = [int(v) for v in _asset("lookups", "assets/layers/integer_lookup/vocabulary.txt")]
    lookups = [layer for layer in model.layers if type(layer).__name__ == "IntegerLookup"]
    assert numbers in [layer.get_vocabulary() for layer in lookups]


def test_a_keras_text_file_saved_by_dendrite_carries_the_vocabulary_in_its_config(tmp_path):
    """dendrite keeps the vocabulary in the config (Keras reads it there too), so its files
    need no assets; they load again in dendrite with the same predictions."""
    model = keras.models.load_model(HERE / "lookups.keras")
    model.save(tmp_path / "again.keras")
    with zipfile.ZipFile(tmp_path / "again.keras") as archive:
        assert not [n for n in archive.namelist() if n.startswith("assets/")]
        config = json.loads(archive.read("config.json"))
    vocabularies = [
        layer["config"]["vocabulary"]
        for layer in config["config"]["layers"]
        if layer["class_name"] == "StringLookup"
    ]
    assert vocabularies == [["blue", "green", "red"]]
    assert max_difference(keras.models.load_model(tmp_path / "again.keras"), "lookups") <= 1e-5


# --- Keras' sharded weights ----------------------------------------------------------------
def _zeroed(model):
    for variable in [*model.weights, *model.optimizer.variables]:
        variable.data[...] = 0
    return model


def test_keras_sharded_weights_load():
    """``mlp_sharded.weights.json``: Keras' index and three shards of the MLP fixture's
    weights, the optimizer's variables split over all three."""
    if not (HERE / "mlp_sharded.weights.json").exists():
        pytest.skip("no sharded fixture in KERAS3_FIXTURES_DIR (make_fixtures.py sharded)")
    reference = keras.models.load_model(HERE / "mlp.keras")
    model = _zeroed(keras.models.load_model(HERE / "mlp.keras"))
    model.load_weights(HERE / "mlp_sharded.weights.json")
    assert max_difference(model, "mlp") <= 1e-5
    for got, want in zip(model.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_array_equal(got.data, want.data)


def test_dendrite_writes_sharded_weights(tmp_path):
    from dendrite.saving import save_weights

    model = keras.models.load_model(HERE / "mlp.keras")
    model.save_weights(tmp_path / "w.weights.json", max_shard_size=2e-6)  # Keras' method
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "w.weights.json" and len(names) >= 3
    assert names[1:] == [f"w_{i:05d}.weights.h5" for i in range(len(names) - 1)]
    index = json.loads((tmp_path / "w.weights.json").read_text())
    assert set(index) == {"metadata", "weight_map"}
    assert "/optimizer/vars" in index["weight_map"]
    again = _zeroed(keras.models.load_model(HERE / "mlp.keras"))
    again.load_weights(tmp_path / "w.weights.json")
    assert max_difference(again, "mlp") <= 1e-5
    for got, want in zip(again.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(got.data, want.data)
    with pytest.raises(FileExistsError):
        save_weights(model, tmp_path / "w.weights.json", overwrite=False, max_shard_size=1)
    with pytest.raises(ValueError, match="exceeds the maximum shard size"):
        save_weights(model, tmp_path / "tiny.weights.json", max_shard_size=1e-9)
    with pytest.warns(UserWarning, match="renamed"):
        save_weights(model, tmp_path / "h5.weights.h5", max_shard_size=1)
    assert (tmp_path / "h5.weights.json").exists() and not (tmp_path / "h5.weights.h5").exists()
