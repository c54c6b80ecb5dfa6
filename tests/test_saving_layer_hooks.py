"""Layers' own saving hooks (Keras 3's save_own_variables / load_own_variables and
save_assets / load_assets) in dendrite's ``.dendrite`` zip and in Keras' ``.keras`` and
``.weights.h5``: called in Keras' order, with a dict-like store and a directory of the
layer's files; hostile files (asset paths that escape, links, assets or variables for
layers the model lacks) are refused before any weight changes, and nothing a hook cannot
store is written."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite import layers
from dendrite.saving import layer_state
from dendrite.saving.errors import ModelLoadError

CALLS: list[tuple[str, str]] = []


@keras.saving.register_keras_serializable(package="hooks_test")
class Vocab(layers.Layer):
    """A layer with assets (a vocabulary file, in a subdirectory too) and own variables
    under its own keys."""

    def __init__(self, words=None, **kwargs):
        super().__init__(**kwargs)
        self.words = list(words or [])
        self.extra = np.zeros(3, "float32")

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["extra"] = self.extra

    def load_own_variables(self, store):
        CALLS.append(("load_own_variables", self.name))
        self.extra = np.asarray(store["extra"])
        self.scale.assign(store["0"])

    def save_assets(self, dir_path):
        os.makedirs(os.path.join(dir_path, "sub"))
        with open(os.path.join(dir_path, "sub", "words.txt"), "w") as stream:
            stream.write("\n".join(self.words))

    def load_assets(self, dir_path):
        CALLS.append(("load_assets", self.name))
        with open(os.path.join(dir_path, "sub", "words.txt")) as stream:
            self.words = stream.read().split("\n")


def _model():
    inputs = keras.Input((2,))
    first = Vocab(["a", "b"], name="first")
    second = Vocab(["c"], name="second")
    model = keras.Model(inputs, layers.Dense(1)(second(first(inputs))))
    first.scale.assign(2.0)
    first.extra = np.array([1, 2, 3], "float32")
    return model


@pytest.mark.parametrize("suffix", [".dendrite", ".keras"])
def test_hooks_round_trip_in_keras_order(tmp_path, suffix):
    model = _model()
    path = tmp_path / f"m{suffix}"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assets = sorted(n for n in archive.namelist() if n.startswith("assets/"))
    assert assets == [
        "assets/layers/vocab/sub/words.txt",
        "assets/layers/vocab_1/sub/words.txt",
    ]
    CALLS.clear()
    restored = keras.models.load_model(path)
    assert CALLS == [
        ("load_own_variables", "first"),
        ("load_assets", "first"),
        ("load_own_variables", "second"),
        ("load_assets", "second"),
    ]
    first, second = restored.get_layer("first"), restored.get_layer("second")
    assert first.words == ["a", "b"] and second.words == ["c"]
    np.testing.assert_array_equal(first.extra, [1, 2, 3])
    x = np.ones((2, 2), "float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_files_call_load_own_variables(tmp_path):
    model = _model()
    model.save_weights(tmp_path / "w.weights.h5")
    other = _model()
    other.get_layer("first").extra = np.zeros(3, "float32")
    CALLS.clear()
    other.load_weights(tmp_path / "w.weights.h5")
    assert [c[0] for c in CALLS] == ["load_own_variables", "load_own_variables"]
    np.testing.assert_array_equal(other.get_layer("first").extra, [1, 2, 3])


def test_a_dendrite_file_without_own_variables_skips_the_hooks(tmp_path):
    """A .dendrite file written before the hooks were called holds no
    own_variables.safetensors: its layers load from the weights as before."""
    from dendrite.saving.architecture import to_json_bytes
    from dendrite.saving.archive import write_archive
    from dendrite.saving.model_file import CONFIG, OWN_VARIABLES, model_document

    model = _model()
    document, members = model_document(model)
    members = {k: v for k, v in members.items() if k != OWN_VARIABLES and "assets/" not in k}
    write_archive(tmp_path / "old.dendrite", {CONFIG: to_json_bytes(document), **members})
    CALLS.clear()
    restored = keras.models.load_model(tmp_path / "old.dendrite")
    assert CALLS == []
    assert float(restored.get_layer("first").scale.numpy()) == 2.0


# --- hostile .dendrite files ------------------------------------------------------------------
def _rewritten(tmp_path: Path, change) -> Path:
    source = tmp_path / "good.dendrite"
    _model().save(source)
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts = change(parts)
    path = tmp_path / "bad.dendrite"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in parts.items():
            archive.writestr(name, payload)
    return path


@pytest.mark.parametrize(
    "name",
    ["assets/../evil.txt", "assets/layers/vocab/../../../evil.txt", "assets/a//b", "assets/."],
)
def test_dendrite_asset_traversal_is_refused(tmp_path, name):
    path = _rewritten(tmp_path, lambda parts: {**parts, name: b"x"})
    with pytest.raises(ModelLoadError, match="not a plain relative path"):
        keras.models.load_model(path)
    assert not (tmp_path / "evil.txt").exists()


def test_dendrite_asset_for_a_missing_layer_is_refused(tmp_path):
    path = _rewritten(tmp_path, lambda parts: {**parts, "assets/layers/ghost/x.txt": b"x"})
    with pytest.raises(ModelLoadError, match="belongs to no layer"):
        keras.models.load_model(path)


def test_dendrite_own_variables_for_a_missing_layer_are_refused(tmp_path):
    from dendrite.saving.safetensors_io import tensors_to_bytes

    stray = tensors_to_bytes({"layers/ghost/vars/0": np.ones(2, "float32")})
    path = _rewritten(tmp_path, lambda parts: {**parts, "own_variables.safetensors": stray})
    with pytest.raises(ModelLoadError, match="layers/ghost/vars"):
        keras.models.load_model(path)


def test_dendrite_own_variables_with_a_bad_key_are_refused_as_a_load_error(tmp_path):
    from dendrite.saving.safetensors_io import tensors_to_bytes

    bad = tensors_to_bytes({"layers/ghost/vars/\x01": np.ones(2, "float32")})
    path = _rewritten(tmp_path, lambda parts: {**parts, "own_variables.safetensors": bad})
    with pytest.raises(ModelLoadError, match="store key"):
        keras.models.load_model(path)


def test_dendrite_assets_are_bounded(tmp_path, monkeypatch):
    path = _rewritten(tmp_path, lambda parts: parts)
    monkeypatch.setattr(layer_state, "MAX_ASSET_FILES", 1)
    with pytest.raises(ModelLoadError, match="2 assets"):
        keras.models.load_model(path)


def test_a_failing_hook_is_one_model_load_error(tmp_path):
    path = _rewritten(
        tmp_path, lambda parts: {**parts, "assets/layers/vocab/sub/words.txt": b"\xff\xfe"}
    )
    with pytest.raises(ModelLoadError, match="could not load its state \\(load_assets\\)"):
        keras.models.load_model(path)


# --- what saving refuses --------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="hooks_test")
class BadStore(layers.Layer):
    def __init__(self, key="ok", value=None, **kwargs):
        super().__init__(**kwargs)
        self.key, self.value = key, value

    def save_own_variables(self, store):
        store[self.key] = self.value if self.value is not None else np.ones(1)

    def load_own_variables(self, store):
        pass


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("a/b", None, "store key"),
        ("", None, "store key"),
        ("text", np.array(["x"]), "only numeric arrays"),
    ],
)
def test_a_store_that_cannot_be_saved_is_refused(tmp_path, key, value, match):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, BadStore(key, value)(inputs))
    for suffix in (".dendrite", ".keras"):
        with pytest.raises(ValueError, match=match):
            model.save(tmp_path / f"bad{suffix}")
        assert not (tmp_path / f"bad{suffix}").exists()


@keras.saving.register_keras_serializable(package="hooks_test")
class LinkAsset(layers.Layer):
    def call(self, x):
        return x

    def save_assets(self, dir_path):
        os.symlink("/etc/passwd", os.path.join(dir_path, "passwd"))

    def load_assets(self, dir_path):
        pass


def test_save_assets_links_are_not_followed(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, LinkAsset()(inputs))
    with pytest.raises(ValueError, match="not a regular file"):
        model.save(tmp_path / "link.keras")
    assert not (tmp_path / "link.keras").exists()
