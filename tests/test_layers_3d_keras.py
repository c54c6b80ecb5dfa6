"""The 3-D layers against Keras 3 itself (run once, in a subprocess with the torch backend):
the same weights give the same outputs, the configs have Keras' keys and values, a
``.keras`` file written by Keras loads in dendrite and predicts what Keras predicted, and
dendrite's ``.keras`` file loads in Keras and predicts what dendrite predicts. Then a small
3-D network trains with ``fit`` and survives dendrite's own format and ``.keras``.

Keras' torch backend pads an asymmetric 'same' average pooling by replicating the edge
(its TensorFlow backend, and dendrite, leave the padding out of the mean), so the average
pooling cases here are 'valid' or symmetric 'same'; the asymmetric case is compared with
the TensorFlow backend.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as keras
from dendrite import layers
from dendrite.testing.keras_side import run_keras_side

pytest.importorskip("keras")

CASES = {
    "conv3d": ("Conv3D", {"filters": 4, "kernel_size": 3}, (2, 5, 6, 5, 3)),
    "conv3d_same_strided_relu": (
        "Conv3D",
        {
            "filters": 6,
            "kernel_size": [2, 3, 2],
            "strides": [2, 1, 2],
            "padding": "same",
            "activation": "relu",
        },
        (2, 5, 6, 7, 2),
    ),
    "conv3d_dilated_groups": (
        "Conv3D",
        {
            "filters": 4,
            "kernel_size": 3,
            "dilation_rate": [2, 1, 2],
            "groups": 2,
            "padding": "same",
        },
        (2, 6, 5, 6, 4),
    ),
    "conv3d_channels_first": (
        "Conv3D",
        {
            "filters": 3,
            "kernel_size": 2,
            "strides": 2,
            "padding": "same",
            "data_format": "channels_first",
        },
        (2, 3, 5, 6, 7),
    ),
    "conv3d_transpose": (
        "Conv3DTranspose",
        {"filters": 3, "kernel_size": 3, "strides": 2},
        (2, 3, 4, 3, 2),
    ),
    "conv3d_transpose_same": (
        "Conv3DTranspose",
        {"filters": 2, "kernel_size": [3, 2, 2], "strides": [2, 1, 2], "padding": "same"},
        (2, 3, 3, 4, 3),
    ),
    "conv3d_transpose_output_padding": (
        "Conv3DTranspose",
        {"filters": 3, "kernel_size": 3, "strides": 2, "output_padding": 1},
        (1, 2, 3, 2, 2),
    ),
    "conv3d_transpose_dilated": (
        "Conv3DTranspose",
        {"filters": 2, "kernel_size": 2, "dilation_rate": [2, 1, 2]},
        (2, 3, 3, 3, 2),
    ),
    "conv3d_transpose_channels_first": (
        "Conv3DTranspose",
        {
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "data_format": "channels_first",
        },
        (2, 3, 2, 3, 4),
    ),
    "max_pool": ("MaxPooling3D", {}, (2, 4, 6, 4, 3)),
    "max_pool_same": (
        "MaxPooling3D",
        {"pool_size": 3, "strides": 2, "padding": "same"},
        (2, 5, 6, 7, 2),
    ),
    "max_pool_channels_first": (
        "MaxPooling3D",
        {"pool_size": [2, 1, 3], "strides": 1, "data_format": "channels_first"},
        (2, 3, 4, 5, 6),
    ),
    "avg_pool": (
        "AveragePooling3D",
        {"pool_size": [3, 2, 2], "strides": [1, 2, 1]},
        (2, 5, 4, 5, 2),
    ),
    "avg_pool_same_symmetric": (
        "AveragePooling3D",
        {"pool_size": 3, "strides": 1, "padding": "same"},
        (2, 4, 5, 3, 2),
    ),
    "global_max": ("GlobalMaxPooling3D", {}, (2, 3, 4, 5, 3)),
    "global_avg_keepdims_first": (
        "GlobalAveragePooling3D",
        {"keepdims": True, "data_format": "channels_first"},
        (2, 3, 4, 5, 3),
    ),
    "upsampling": ("UpSampling3D", {"size": [2, 1, 3]}, (2, 2, 3, 2, 2)),
    "upsampling_first": ("UpSampling3D", {"data_format": "channels_first"}, (2, 2, 3, 2, 2)),
    "zero_padding": ("ZeroPadding3D", {"padding": [[1, 0], 2, [0, 1]]}, (2, 2, 3, 2, 2)),
    "cropping_first": (
        "Cropping3D",
        {"cropping": [[1, 0], 1, [0, 2]], "data_format": "channels_first"},
        (2, 2, 3, 4, 5),
    ),
}
# Keras spells these config entries differently (the dtype policy, the initializers'
# extra arguments): compared elsewhere (tests/test_keras_config_serialization.py); the
# default names count the layers made before, in each process.
SPELLED_DIFFERENTLY = {"dtype", "kernel_initializer", "bias_initializer", "name"}

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    configs = {}
    for name, (cls, kwargs, _) in cases.items():
        layer = getattr(keras.layers, cls)(**kwargs)
        x = np.load(f"{root}/{name}.x.npy")
        layer(x)
        count = len(layer.get_weights())
        layer.set_weights([np.load(f"{root}/{name}.w{i}.npy") for i in range(count)])
        np.save(f"{root}/{name}.keras.npy", keras.ops.convert_to_numpy(layer(x)))
        configs[name] = layer.get_config()
    json.dump(configs, open(root + "/configs.json", "w"))

    # dendrite's .keras file, read by Keras
    x = np.load(root + "/model.x.npy")
    mine = keras.models.load_model(root + "/dendrite.keras")
    np.save(root + "/dendrite_file.keras.npy", mine.predict(x, verbose=0))
    # a .keras file written by Keras, for dendrite
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4, 6, 6, 2)),
        keras.layers.Conv3D(4, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling3D(2),
        keras.layers.Conv3DTranspose(3, (2, 3, 3), strides=(1, 2, 2), padding="same"),
        keras.layers.AveragePooling3D((1, 2, 2)),
        keras.layers.UpSampling3D((2, 1, 1)),
        keras.layers.ZeroPadding3D(((1, 0), (0, 1), 1)),
        keras.layers.Cropping3D(((0, 1), 1, (1, 0))),
        keras.layers.Conv3D(4, 2, groups=2, data_format="channels_first"),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.save(root + "/written_by_keras.keras")
    np.save(root + "/written_by_keras.npy", model.predict(x, verbose=0))
    """
)

TF_SIDE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    root = sys.argv[1]
    x = np.load(root + "/asym.x.npy")
    layer = keras.layers.AveragePooling3D(3, strides=2, padding="same")
    np.save(root + "/asym.keras.npy", keras.ops.convert_to_numpy(layer(x)))
    """
)


def _dendrite_model() -> keras.Sequential:
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((4, 6, 6, 2)),
            layers.Conv3D(3, (2, 3, 3), strides=(1, 2, 1), padding="same", activation="relu"),
            layers.MaxPooling3D((2, 1, 2), padding="same"),
            layers.Conv3DTranspose(2, 2, strides=2, output_padding=(1, 0, 1)),
            layers.AveragePooling3D(2),
            layers.GlobalMaxPooling3D(),
            layers.Dense(3),
        ]
    )


@pytest.fixture(scope="module")
def keras_ran(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("keras_3d")
    rng = np.random.default_rng(0)
    made = {}
    for name, (cls, kwargs, shape) in CASES.items():
        layer = getattr(layers, cls)(**kwargs)
        x = rng.standard_normal(shape).astype("float32")
        layer(x)
        weights = [rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()]
        layer.set_weights(weights)
        np.save(root / f"{name}.x.npy", x)
        for i, w in enumerate(weights):
            np.save(root / f"{name}.w{i}.npy", w)
        made[name] = (layer, x)
    (root / "cases.json").write_text(json.dumps(CASES))
    model = _dendrite_model()
    x = rng.standard_normal((2, 4, 6, 6, 2)).astype("float32")
    np.save(root / "model.x.npy", x)
    model.save(root / "dendrite.keras")
    made["model"] = (model, x)
    run_keras_side(KERAS_SIDE, root)
    return root, made


def test_outputs_and_configs_match_keras(keras_ran):
    root, made = keras_ran
    configs = json.loads((root / "configs.json").read_text())
    failures = []
    for name in CASES:
        layer, x = made[name]
        want = np.load(root / f"{name}.keras.npy")
        got = layer(x).data
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
            worst = np.abs(got - want).max() if got.shape == want.shape else "shape"
            failures.append(f"{name}: {got.shape} vs Keras {want.shape}, max diff {worst}")
        if layer.compute_output_shape(x.shape) != want.shape:
            failures.append(f"{name}: compute_output_shape {layer.compute_output_shape(x.shape)}")
        mine = json.loads(json.dumps(layer.get_config()))
        theirs = configs[name]
        if set(mine) != set(theirs):
            failures.append(f"{name}: config keys {set(mine) ^ set(theirs)} differ")
        for key in set(mine) & set(theirs) - SPELLED_DIFFERENTLY:
            if mine[key] != theirs[key]:
                failures.append(f"{name}: config {key} = {mine[key]!r}, Keras {theirs[key]!r}")
    assert not failures, "\n".join(failures)


def test_keras_reads_dendrites_file_and_dendrite_reads_keras_file(keras_ran):
    root, made = keras_ran
    model, x = made["model"]
    np.testing.assert_allclose(
        np.load(root / "dendrite_file.keras.npy"), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    theirs = keras.models.load_model(root / "written_by_keras.keras")
    np.testing.assert_allclose(
        theirs.predict(x, verbose=0), np.load(root / "written_by_keras.npy"), rtol=1e-5, atol=1e-6
    )
    kinds = [type(layer).__name__ for layer in theirs.layers]
    assert kinds[:3] == ["Conv3D", "MaxPooling3D", "Conv3DTranspose"]


def test_asymmetric_same_average_pooling_matches_keras_tensorflow(tmp_path):
    pytest.importorskip("tensorflow")
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 6, 2)).astype("float32")
    np.save(tmp_path / "asym.x.npy", x)
    run_keras_side(TF_SIDE, tmp_path, backend="tensorflow")
    got = layers.AveragePooling3D(3, strides=2, padding="same")(x).data
    np.testing.assert_allclose(got, np.load(tmp_path / "asym.keras.npy"), rtol=1e-5, atol=1e-6)


# --- training and dendrite's own files ----------------------------------------------------------
def test_conv3d_network_trains_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4, 6, 6, 1)).astype("float32")
    y = np.stack([x.mean(axis=(1, 2, 3, 4)), x.std(axis=(1, 2, 3, 4))], axis=1)
    model = keras.Sequential(
        [
            keras.Input((4, 6, 6, 1)),
            layers.Conv3D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling3D(2),
            layers.GlobalAveragePooling3D(),
            layers.Dense(2),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    before = model.predict(x, verbose=0)
    for path in (tmp_path / "m.dendrite", tmp_path / "m.keras"):
        model.save(path)
        again = keras.models.load_model(path)
        np.testing.assert_array_equal(again.predict(x, verbose=0), before)
        assert [w.shape for w in again.get_weights()] == [w.shape for w in model.get_weights()]
        # the loaded model trains on (its optimizer rebuilt or restored from the file)
        again.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    transposed = keras.Sequential(
        [keras.Input((2, 3, 3, 2)), layers.Conv3DTranspose(2, 2, strides=2), layers.Cropping3D()]
    )
    transposed.save(tmp_path / "t.dendrite")
    sample = x[:1, :2, :3, :3].repeat(2, axis=-1)
    np.testing.assert_array_equal(
        keras.models.load_model(tmp_path / "t.dendrite").predict(sample, verbose=0),
        transposed.predict(sample, verbose=0),
    )
