"""CategoryEncoding and Discretization against Keras 3 itself (in a subprocess, as
tests/test_keras_files_roundtrip.py runs it): every output mode on ids of rank 0 to 3,
count weights, given bins, bins learnt by adapt from one or several batches, configs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

L = tf.keras.layers

IDS = {
    "flat": [3, 2, 0, 1],
    "rows": [[0, 1], [0, 0], [1, 2], [3, 1]],
    "column": [[2], [1]],
    "scalar": 2,
    "cube": [[[0, 1], [2, 2]]],
}
MODES = ("multi_hot", "count", "one_hot")


def _values(seed: int, shape: tuple) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype("float32") * 3


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    out = {}
    for name, ids in cases["ids"].items():
        for mode in cases["modes"]:
            y = keras.layers.CategoryEncoding(4, output_mode=mode)(np.array(ids))
            out[f"encode-{name}-{mode}"] = np.asarray(y).tolist()
    weights = np.load(root + "/weights.npy")
    y = keras.layers.CategoryEncoding(4, output_mode="count")(
        np.array(cases["ids"]["rows"]), count_weights=weights)
    out["weighted"] = np.asarray(y).tolist()
    values = np.load(root + "/values.npy")
    for mode in ["int", *cases["modes"]]:
        layer = keras.layers.Discretization(bin_boundaries=[-1.0, 0.0, 2.5], output_mode=mode)
        out[f"bins-{mode}"] = np.asarray(layer(values)).tolist()
    for name, (num_bins, epsilon, parts) in cases["adapt"].items():
        layer = keras.layers.Discretization(num_bins=num_bins, epsilon=epsilon)
        data = np.load(root + f"/{name}.npy")
        layer.adapt(np.array_split(data, parts) if parts > 1 else data)
        out[f"adapt-{name}"] = [list(map(float, layer.bin_boundaries)),
                                np.asarray(layer(values)).tolist()]
    json.dump(out, open(root + "/keras.json", "w"))
    """
)

ADAPT = {
    "small": (4, 0.01, 1),
    "large": (5, 0.01, 1),
    "batches": (6, 0.05, 3),
    "coarse": (3, 0.2, 2),
}
ADAPT_SIZES = {"small": 37, "large": 1000, "batches": 600, "coarse": 90}


def test_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    weights = np.random.default_rng(1).uniform(0, 2, (4, 2)).astype("float32")
    values = _values(2, (6, 3))
    np.save(tmp_path / "weights.npy", weights)
    np.save(tmp_path / "values.npy", values)
    for i, (name, size) in enumerate(ADAPT_SIZES.items()):
        np.save(tmp_path / f"{name}.npy", _values(10 + i, (size,)))
    cases = {"ids": IDS, "modes": MODES, "adapt": ADAPT}
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    run_keras_side(KERAS_SIDE, tmp_path)
    keras_out = json.loads((tmp_path / "keras.json").read_text())
    for name, ids in IDS.items():
        for mode in MODES:
            layer = L.CategoryEncoding(4, output_mode=mode)
            mine = np.asarray(layer(np.array(ids)))
            expected = np.asarray(keras_out[f"encode-{name}-{mode}"])
            assert mine.shape == expected.shape, (name, mode)
            assert layer.compute_output_shape(np.array(ids).shape) == expected.shape
            np.testing.assert_array_equal(mine, expected, err_msg=f"{name} {mode}")
    weighted = L.CategoryEncoding(4, output_mode="count")(
        np.array(IDS["rows"]), count_weights=weights
    )
    np.testing.assert_allclose(np.asarray(weighted), keras_out["weighted"], rtol=1e-6)
    for mode in ("int", *MODES):
        layer = L.Discretization(bin_boundaries=[-1.0, 0.0, 2.5], output_mode=mode)
        np.testing.assert_array_equal(np.asarray(layer(values)), keras_out[f"bins-{mode}"])
    for i, (name, (num_bins, epsilon, parts)) in enumerate(ADAPT.items()):
        layer = L.Discretization(num_bins=num_bins, epsilon=epsilon)
        data = _values(10 + i, (ADAPT_SIZES[name],))
        layer.adapt(np.array_split(data, parts) if parts > 1 else data)
        boundaries, binned = keras_out[f"adapt-{name}"]
        np.testing.assert_allclose(layer.bin_boundaries, boundaries, rtol=1e-6, err_msg=name)
        np.testing.assert_array_equal(np.asarray(layer(values)), binned)


def test_errors_and_configs():
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding()
    with pytest.raises(ValueError, match="output_mode"):
        L.CategoryEncoding(3, output_mode="tf_idf")
    with pytest.raises(ValueError, match=r"0 <= values < 3.*received 5"):
        L.CategoryEncoding(3)(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="count_weights"):
        L.CategoryEncoding(3)(np.array([[0, 1]]), count_weights=np.ones((1, 2)))
    with pytest.raises(ValueError, match="exactly one"):
        L.Discretization()
    with pytest.raises(ValueError, match="adapt"):
        L.Discretization(num_bins=3)(np.zeros(3))
    with pytest.raises(ValueError, match="num_bins instead"):
        L.Discretization(bin_boundaries=[0.0]).adapt(np.zeros(3))
    assert L.CategoryEncoding(3, output_mode="binary").output_mode == "multi_hot"
    adapted = L.Discretization(num_bins=3)
    adapted.adapt(np.arange(30.0))
    clone = L.Discretization.from_config(adapted.get_config())
    assert clone.bin_boundaries == adapted.bin_boundaries
    x = np.array([[1.0, 12.0, 29.0]])
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(adapted(x)))


def test_in_a_model_that_saves():
    inputs = tf.keras.Input((3,))
    binned = L.Discretization(bin_boundaries=[0.0, 1.0], output_mode="one_hot")(inputs)
    model = tf.keras.Model(inputs, L.Flatten()(binned))
    x = np.array([[-1.0, 0.5, 3.0]], "float32")
    expected = np.eye(3)[[0, 1, 2]].reshape(1, 9)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
