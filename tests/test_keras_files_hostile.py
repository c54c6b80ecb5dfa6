"""Hostile Keras 3 files (issue 15): safety is not relaxed for foreign formats. A bytecode
``Lambda``, HDF5 features that read other files, declared sizes past what the file
holds, truncated files, path tricks in the zip (in assets too: traversal, links, sizes,
assets for layers the model lacks) and Keras features dendrite lacks are all refused with
one clear error, before any weight changes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite.saving.errors import ModelLoadError, WeightsLoadError

h5py = pytest.importorskip("h5py")
HERE = Path(__file__).parent / "fixtures" / "keras3"
MLP = HERE / "mlp.keras"


def members(path: Path = MLP) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, entries: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in items:
            archive.writestr(name, payload)
    return path


def with_config(tmp_path: Path, change, source: Path = MLP) -> Path:
    parts = members(source)
    config = json.loads(parts["config.json"])
    change(config)
    parts["config.json"] = json.dumps(config).encode()
    return write_zip(tmp_path / "changed.keras", parts)


def with_weights(tmp_path: Path, change, source: Path = MLP) -> Path:
    """The fixture with its model.weights.h5 rewritten by ``change(h5 file)``."""
    parts = members(source)
    buffer = io.BytesIO(parts["model.weights.h5"])
    with h5py.File(buffer, "a") as store:
        change(store)
    parts["model.weights.h5"] = buffer.getvalue()
    return write_zip(tmp_path / "changed.keras", parts)


def refused(path: Path, match: str, error=ModelLoadError) -> None:
    with pytest.raises(error, match=match):
        keras.models.load_model(path)


# --- code in the config ---------------------------------------------------------------------
def test_bytecode_lambda_is_refused(tmp_path):
    def add_lambda(config):
        config["config"]["layers"].insert(
            1,
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "evil",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None},
                    },
                    "output_shape": None,
                    "arguments": {},
                },
                "registered_name": None,
            },
        )

    refused(with_config(tmp_path, add_lambda), "Lambda layer holds Python bytecode")


def test_classes_resolve_only_through_the_registry(tmp_path):
    def os_system(config):
        layer = config["config"]["layers"][0]
        layer["module"], layer["class_name"] = "os", "system"

    refused(with_config(tmp_path, os_system), "Unknown class 'system'")


def test_a_keras_layer_dendrite_lacks_is_named(tmp_path):
    def unknown_layer(config):
        config["config"]["layers"][0]["class_name"] = "TFSMLayer"

    refused(with_config(tmp_path, unknown_layer), "TFSMLayer")


def test_a_keras_option_dendrite_lacks_is_named(tmp_path):
    def lora(config):
        config["config"]["layers"][0]["config"]["lora_rank"] = 4

    refused(with_config(tmp_path, lora), "lora_rank")


def test_huge_layer_sizes_are_refused_before_building(tmp_path):
    def huge(config):
        config["config"]["layers"][0]["config"]["units"] = 10**12

    refused(with_config(tmp_path, huge), "larger than this file can justify")


# --- the HDF5 store -------------------------------------------------------------------------
def test_external_storage_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(8 * 16, "float32").tobytes())

    def external(store):
        del store["layers/dense/vars/0"]
        store["layers/dense/vars"].create_dataset(
            "0", shape=(8, 16), dtype="float32", external=[(str(secret), 0, 8 * 16 * 4)]
        )

    refused(with_weights(tmp_path, external), "stored in other files")


@pytest.mark.parametrize("kind", ["external", "soft"])
def test_links_are_refused(tmp_path, kind):
    def link(store):
        del store["layers/dense/vars/0"]
        if kind == "external":
            store["layers/dense/vars/0"] = h5py.ExternalLink(str(tmp_path / "x.h5"), "/data")
        else:
            store["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense_1/vars/0")

    refused(with_weights(tmp_path, link), f"{kind} link")


def test_virtual_datasets_are_refused(tmp_path):
    def virtual(store):
        del store["layers/dense/vars/0"]
        layout = h5py.VirtualLayout(shape=(8, 16), dtype="float32")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "data", shape=(8, 16))
        store["layers/dense/vars"].create_virtual_dataset("0", layout)

    refused(with_weights(tmp_path, virtual), "virtual dataset")


def test_declared_shapes_past_the_file_are_refused(tmp_path):
    def sparse(store):
        store["layers/dense/vars"].create_dataset(
            "2", shape=(1 << 20, 1 << 20), dtype="float32", chunks=(16, 16)
        )

    refused(with_weights(tmp_path, sparse), "declare more than")


def test_non_numeric_datasets_are_refused(tmp_path):
    def strings(store):
        del store["layers/dense/vars/1"]
        store["layers/dense/vars"].create_dataset("1", data=np.array([b"x"] * 16))

    refused(with_weights(tmp_path, strings), "not numeric")


def test_a_shape_mismatch_changes_nothing(tmp_path):
    def wrong(store):
        del store["layers/dense_2/vars/0"]
        store["layers/dense_2/vars"].create_dataset("0", data=np.zeros((12, 4), "float32"))

    refused(with_weights(tmp_path, wrong), r"expects shape \(12, 3\)")
    model = keras.models.load_model(MLP, compile=False)
    before = [np.array(v.data) for v in model.weights]
    plain = tmp_path / "wrong.weights.h5"
    plain.write_bytes(members(tmp_path / "changed.keras")["model.weights.h5"])
    with pytest.raises(WeightsLoadError, match=r"expects shape \(12, 3\)"):
        model.load_weights(plain)
    assert all(np.array_equal(a, v.data) for a, v in zip(before, model.weights))


def test_weights_the_model_has_no_place_for_are_refused(tmp_path):
    def extra(store):
        store["layers/dense/vars"].create_dataset("2", data=np.zeros(3, "float32"))

    refused(with_weights(tmp_path, extra), "no place for")


def test_truncated_hdf5_is_refused(tmp_path):
    parts = members()
    parts["model.weights.h5"] = parts["model.weights.h5"][: len(parts["model.weights.h5"]) // 2]
    refused(write_zip(tmp_path / "cut.keras", parts), "not a readable HDF5 file")
    cut = tmp_path / "cut.weights.h5"
    cut.write_bytes((HERE / "mlp.weights.h5").read_bytes()[:3000])
    model = keras.models.load_model(MLP, compile=False)
    with pytest.raises(WeightsLoadError, match="HDF5"):
        model.load_weights(cut)


def test_truncated_zip_is_refused(tmp_path):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(MLP.read_bytes()[:-200])
    refused(cut, "not a valid dendrite file|lacks|zip")


# --- the zip --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "../config.json",
        "/etc/passwd",
        "config.json/",
        "model.weights.h5/../../x",
        "evil.py",
    ],
)
def test_zip_path_tricks_are_refused(tmp_path, name):
    parts = list(members().items()) + [(name, b"x")]
    refused(write_zip(tmp_path / "tricks.keras", parts), "unexpected member")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("model.weights.npz", "weights_format='npz'"),
        ("model.weights.json", "sharded"),
    ],
)
def test_keras_features_dendrite_does_not_read_are_named(tmp_path, name, match):
    parts = list(members().items()) + [(name, b"x")]
    refused(write_zip(tmp_path / "feature.keras", parts), match)


# --- assets ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "assets/../../evil.py",
        "assets/layers/dense/../../../evil.txt",
        "assets//etc/passwd",
        "assets/./vocabulary.txt",
        "assets/layers/dense/..\\..\\evil.txt",
        "assets/C:/evil.txt",
    ],
)
def test_asset_path_traversal_is_refused(tmp_path, name):
    parts = list(members().items()) + [(name, b"x")]
    refused(write_zip(tmp_path / "traversal.keras", parts), "not a plain relative path")
    assert not (tmp_path.parent / "evil.py").exists()


def test_an_asset_for_a_layer_the_model_lacks_is_refused(tmp_path):
    parts = list(members().items()) + [("assets/layers/no_such_layer/vocabulary.txt", b"a")]
    refused(write_zip(tmp_path / "stray.keras", parts), "belongs to no layer")


def test_an_asset_for_a_layer_that_reads_none_is_refused(tmp_path):
    # the MLP's Dense layers have no load_assets: their assets would be silently dropped
    parts = list(members().items()) + [("assets/layers/dense/vocabulary.txt", b"a")]
    refused(write_zip(tmp_path / "dense_asset.keras", parts), "belongs to no layer")


def test_an_oversized_asset_is_refused_before_reading(tmp_path, monkeypatch):
    from dendrite.saving import layer_state

    monkeypatch.setattr(layer_state, "MAX_ASSET_BYTES", 1000)
    parts = list(members().items()) + [("assets/layers/dense/big.txt", b"x" * 1001)]
    refused(write_zip(tmp_path / "big.keras", parts), "assets declare 1001 bytes")


def test_too_many_assets_are_refused(tmp_path, monkeypatch):
    from dendrite.saving import layer_state

    monkeypatch.setattr(layer_state, "MAX_ASSET_FILES", 3)
    extra = [(f"assets/layers/dense/{i}.txt", b"x") for i in range(4)]
    refused(write_zip(tmp_path / "many.keras", list(members().items()) + extra), "4 assets")


def test_an_asset_zip_bomb_is_refused(tmp_path):
    path = tmp_path / "asset_bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members().items():
            archive.writestr(name, payload)
        archive.writestr("assets/layers/dense/vocabulary.txt", b"\n" * (8 << 20))
    refused(path, "zip bomb")


def test_a_symlink_member_is_refused(tmp_path):
    path = tmp_path / "link.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members().items():
            archive.writestr(name, payload)
        info = zipfile.ZipInfo("assets/layers/dense/vocabulary.txt")
        info.external_attr = (0o120777 << 16) | 0x20
        archive.writestr(info, b"/etc/passwd")
    refused(path, "symbolic link")


def test_own_variable_keys_for_a_layer_without_hooks_are_refused(tmp_path):
    def add(store):
        group = next(iter(g for g in store["layers"].values() if "vars" in g))["vars"]
        group.create_dataset("idf_weights", data=np.ones(3, "float32"))

    refused(with_weights(tmp_path, add), "has no place for")


def test_duplicate_members_are_refused(tmp_path):
    parts = list(members().items())
    parts.append(("config.json", json.dumps({"class_name": "Sequential"}).encode()))
    with pytest.warns(UserWarning):
        path = write_zip(tmp_path / "twice.keras", parts)
    refused(path, "appears twice")


def test_a_zip_bomb_member_is_refused(tmp_path):
    parts = members()
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in parts.items():
            if name == "metadata.json":  # 64 KiB of spaces deflate ~1000x
                payload = b" " * (64 << 10)
            archive.writestr(name, payload)
    with pytest.raises(ModelLoadError):
        keras.models.load_model(path)


def test_writes_are_atomic(tmp_path, monkeypatch):
    model = keras.models.load_model(MLP)
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()
    from dendrite.saving.keras_format import model_io

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_io, "weights_payload", broken)
    with pytest.raises(RuntimeError):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


# --- random damage: refused with the one error, or loaded; never another exception ----------
def test_damaged_weights_are_refused_or_loaded_never_crash(tmp_path):
    rng = np.random.default_rng(15)
    parts = members()
    model = keras.models.load_model(MLP, compile=False)
    for _trial in range(150):
        damaged = bytearray(parts["model.weights.h5"])
        for _ in range(int(rng.integers(1, 8))):
            damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
        path = write_zip(tmp_path / "damaged.keras", {**parts, "model.weights.h5": bytes(damaged)})
        try:
            keras.models.load_model(path)
        except ModelLoadError:
            pass
        plain = tmp_path / "damaged.weights.h5"
        plain.write_bytes(bytes(damaged))
        try:
            model.load_weights(plain)
        except WeightsLoadError:
            pass


def test_damaged_configs_are_refused_or_loaded_never_crash(tmp_path):
    rng = np.random.default_rng(16)
    values = [None, -1, 0, 10**9, 1e308, "", "x", [], {}, [None], {"class_name": "x"}, True]

    def damage(node, depth=0):
        if isinstance(node, dict) and node:
            key = list(node)[int(rng.integers(0, len(node)))]
            if rng.random() < 0.3 or depth > 6:
                node[key] = values[int(rng.integers(0, len(values)))]
            else:
                damage(node[key], depth + 1)
        elif isinstance(node, list) and node:
            damage(node[int(rng.integers(0, len(node)))], depth + 1)

    for _trial in range(80):
        try:
            keras.models.load_model(with_config(tmp_path, damage))
        except ModelLoadError:
            pass


# --- sharded weights (an index and its shards) ------------------------------------------------
SHARDED = "mlp_sharded.weights.json"


def sharded_copy(tmp_path: Path, change=None) -> Path:
    """The MLP fixture's sharded weights copied to ``tmp_path``, the index rewritten by
    ``change(index)``."""
    import shutil

    for shard in HERE.glob("mlp_sharded_*.weights.h5"):
        shutil.copy(shard, tmp_path / shard.name)
    index = json.loads((HERE / SHARDED).read_text())
    if change is not None:
        change(index)
    (tmp_path / SHARDED).write_text(json.dumps(index))
    return tmp_path / SHARDED


def refused_weights(path: Path, match: str) -> None:
    model = keras.models.load_model(MLP, compile=False)
    before = [np.array(w.data) for w in model.weights]
    with pytest.raises(WeightsLoadError, match=match):
        model.load_weights(path)
    assert all(np.array_equal(a, w.data) for a, w in zip(before, model.weights))


@pytest.mark.parametrize(
    "name",
    [
        "../mlp_sharded_00000.weights.h5",
        "/etc/mlp_sharded_00000.weights.h5",
        "sub/mlp_sharded_00000.weights.h5",
        "..\\mlp_sharded_00000.weights.h5",
        ".hidden.weights.h5",
        "mlp_sharded_00000.h5",
        "C:mlp.weights.h5",
        7,
    ],
)
def test_a_sharded_index_naming_files_outside_its_directory_is_refused(tmp_path, name):
    def change(index):
        index["weight_map"]["/layers/dense/vars"] = [name]

    inner = tmp_path / "inner"
    inner.mkdir()
    path = sharded_copy(inner, change)
    (tmp_path / "mlp_sharded_00000.weights.h5").write_bytes(
        (HERE / "mlp_sharded_00000.weights.h5").read_bytes()
    )
    refused_weights(path, "plain '\\*.weights.h5' file name")


def test_a_shard_linking_out_of_the_directory_is_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    path = sharded_copy(inner)
    outside = tmp_path / "elsewhere.weights.h5"
    (inner / "mlp_sharded_00001.weights.h5").rename(outside)
    (inner / "mlp_sharded_00001.weights.h5").symlink_to(outside)
    refused_weights(path, "link that leads out")


def test_a_variable_in_two_shards_is_refused(tmp_path):
    def change(index):
        index["weight_map"]["/layers/dense/vars"].append("mlp_sharded_00001.weights.h5")

    path = sharded_copy(tmp_path, change)
    with h5py.File(tmp_path / "mlp_sharded_00001.weights.h5", "a") as store:
        store.create_dataset("layers/dense/vars/0", data=np.zeros((8, 16), "float32"))
    refused_weights(path, "more than one shard")


def test_a_shard_holding_a_group_the_index_does_not_list_there_is_refused(tmp_path):
    def change(index):
        index["weight_map"]["/optimizer/vars"].remove("mlp_sharded_00002.weights.h5")
        index["weight_map"]["/extra/vars"] = ["mlp_sharded_00002.weights.h5"]

    refused_weights(sharded_copy(tmp_path, change), "does not list it there")


@pytest.mark.parametrize(
    ("index", "match"),
    [
        (b"not json", "JSON"),
        (b"[]", "not a Keras sharded-weights index"),
        (json.dumps({"weight_map": {}, "code": "x"}).encode(), "unknown keys"),
        (json.dumps({"weight_map": {"/vars": []}}).encode(), "lists no shard"),
    ],
)
def test_a_bad_sharded_index_is_refused(tmp_path, index, match):
    path = tmp_path / "bad.weights.json"
    path.write_bytes(index)
    refused_weights(path, match)


def test_too_many_shards_are_refused(tmp_path, monkeypatch):
    from dendrite.saving.keras_format import sharded

    monkeypatch.setattr(sharded, "MAX_SHARDS", 2)
    refused_weights(sharded_copy(tmp_path), "names 3 shards")


def test_a_missing_shard_is_refused(tmp_path):
    path = sharded_copy(tmp_path)
    (tmp_path / "mlp_sharded_00002.weights.h5").unlink()
    refused_weights(path, "mlp_sharded_00002")
