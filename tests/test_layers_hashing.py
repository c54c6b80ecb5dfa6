"""Hashing and HashedCrossing: Keras' published bins (its docstring examples), the same
bins as Keras 3 itself (which hashes through TensorFlow, so that comparison skips without
it), the encodings, configs and errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite.layers.hashing import HashedCrossing, Hashing
from dendrite.layers.string_hashes import farmhash64, siphash64
from dendrite.testing.keras_side import run_keras_side

LETTERS = [["A"], ["B"], ["C"], ["D"], ["E"]]


def _bins(layer, data) -> list:
    return np.asarray(layer(data)).ravel().tolist()


def test_published_keras_examples():
    # Keras 3's Hashing docstring: FarmHash64, with a mask, SipHash with a pair and one salt.
    assert _bins(Hashing(3), LETTERS) == [1, 0, 1, 1, 2]
    assert _bins(Hashing(3, mask_value=""), [["A"], ["B"], [""], ["C"], ["D"]]) == [1, 1, 0, 2, 2]
    assert _bins(Hashing(3, salt=[133, 137]), LETTERS) == [1, 2, 1, 0, 2]
    assert _bins(Hashing(3, salt=133), LETTERS) == [0, 0, 2, 1, 0]


def test_published_siphash_vector():
    # The SipHash paper's test vector: key 00..0f, message 00..0e.
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert siphash64(key, bytes(range(15))) == 0xA129CA6149BE45E5


def test_numbers_hash_as_their_decimal_strings_and_floats_truncate():
    ints = np.asarray([[1, -5], [123456789012, 0]])
    strings = np.asarray([["1", "-5"], ["123456789012", "0"]])
    assert _bins(Hashing(97), ints) == _bins(Hashing(97), strings)
    assert _bins(Hashing(97), np.asarray([1.7, -5.2])) == _bins(Hashing(97), ["1", "-5"])
    assert np.asarray(Hashing(97)(ints)).dtype == np.int64
    assert np.asarray(Hashing(97, dtype="int32")(ints)).dtype == np.int32


def test_long_strings_take_every_farmhash_branch():
    lengths = [0, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 1000]
    hashes = {farmhash64(bytes(n)) for n in lengths}
    assert len(hashes) == len(lengths)  # no branch collapses to another


def test_output_modes():
    data = np.asarray([[3, 8, 8], [1, 2, 3]])
    ids = np.asarray(Hashing(6)(data))
    count = np.asarray(Hashing(6, output_mode="count")(data))
    multi = np.asarray(Hashing(6, output_mode="multi_hot")(data))
    one = np.asarray(Hashing(6, output_mode="one_hot")(data))
    assert count.shape == multi.shape == (2, 6) and one.shape == (2, 3, 6)
    for row in range(2):
        np.testing.assert_array_equal(count[row], np.bincount(ids[row], minlength=6))
    np.testing.assert_array_equal(multi, (count > 0).astype("float32"))
    np.testing.assert_array_equal(one.argmax(-1), ids)
    assert count.dtype == np.float32
    assert Hashing(6, output_mode="one_hot").compute_output_shape((2, 1)) == (2, 6)


def test_config_round_trip_and_errors():
    layer = Hashing(5, mask_value="", salt=7, output_mode="count")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["salt"] == [7, 7] and config["mask_value"] == ""
    clone = Hashing.from_config(config)
    assert _bins(clone, ["x", "", "y"]) == _bins(layer, ["x", "", "y"])
    with pytest.raises(ValueError, match="num_bins"):
        Hashing(0)
    with pytest.raises(ValueError, match="output_mode"):
        Hashing(3, output_mode="binary")
    with pytest.raises(ValueError, match="salt"):
        Hashing(3, salt="pepper")
    with pytest.raises(ValueError, match="dtype"):
        Hashing(3, dtype="float32")
    with pytest.raises(ValueError, match="sparse"):
        Hashing(3, sparse=True)


def test_hashed_crossing_shapes_and_errors():
    a, b = np.asarray([1, 2, 3]), np.asarray(["x", "y", "z"])
    layer = HashedCrossing(10)
    out = np.asarray(layer([a, b]))
    assert out.shape == (3,) and out.dtype == np.int64 and out.min() >= 0 and out.max() < 10
    np.testing.assert_array_equal(np.asarray(layer([a[:, None], b[:, None]])).ravel(), out)
    one = np.asarray(HashedCrossing(10, output_mode="one_hot")([a[:, None], b[:, None]]))
    np.testing.assert_array_equal(one.argmax(-1), out)
    assert not np.array_equal(out, np.asarray(layer([b, a])))  # the order matters
    with pytest.raises(ValueError, match="at least two"):
        layer([a])
    with pytest.raises(ValueError, match="equal shape"):
        layer([a, b[:2]])
    with pytest.raises(ValueError, match="integer or string"):
        layer([a.astype("float32"), b])
    with pytest.raises(ValueError, match=r"\(batch_size, 1\)"):
        layer([np.ones((2, 3), "int64"), np.ones((2, 3), "int64")])


KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    cases = json.loads(open(root + "/cases.json").read())
    out = {}
    for name, case in cases.items():
        data = np.asarray(case["data"], dtype=case["dtype"])
        if case["layer"] == "Hashing":
            y = keras.layers.Hashing(**case["kwargs"])(data)
        else:
            other = np.asarray(case["other"], dtype=case["other_dtype"])
            y = keras.layers.HashedCrossing(**case["kwargs"])([data, other])
        out[name] = np.asarray(y).tolist()
    json.dump(out, open(root + "/keras.json", "w"))
    """
)


def _cases() -> dict:
    rng = np.random.default_rng(0)
    words = ["", "a", "hello", "dendrite", "x" * 20, "y" * 40, "z" * 70, "naïve", "日本"]
    words += ["".join(chr(c) for c in rng.integers(97, 123, n)) for n in rng.integers(0, 200, 40)]
    ints = rng.integers(-(10**12), 10**12, 30).tolist()
    return {
        "farm": {"layer": "Hashing", "kwargs": {"num_bins": 1009}, "data": words, "dtype": "str"},
        "farm_ints": {
            "layer": "Hashing",
            "kwargs": {"num_bins": 13},
            "data": ints,
            "dtype": "int64",
        },
        "sip": {
            "layer": "Hashing",
            "kwargs": {"num_bins": 1009, "salt": [12345, 987654321]},
            "data": words,
            "dtype": "str",
        },
        "masked_count": {
            "layer": "Hashing",
            "kwargs": {"num_bins": 7, "mask_value": "a", "output_mode": "count"},
            "data": [words[:4], words[4:8]],
            "dtype": "str",
        },
        "cross": {
            "layer": "HashedCrossing",
            "kwargs": {"num_bins": 101},
            "data": ints[:9],
            "dtype": "int64",
            "other": words[:9],
            "other_dtype": "str",
        },
    }


def test_same_bins_as_keras(tmp_path: Path):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")  # Keras' hashing layers need TensorFlow on every backend
    cases = _cases()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    run_keras_side(KERAS_SIDE, tmp_path)
    expected = json.loads((tmp_path / "keras.json").read_text())
    for name, case in cases.items():
        data = np.asarray(case["data"], dtype=case["dtype"])
        if case["layer"] == "Hashing":
            mine = Hashing(**case["kwargs"])(data)
        else:
            other = np.asarray(case["other"], dtype=case["other_dtype"])
            mine = HashedCrossing(**case["kwargs"])([data, other])
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(expected[name]), err_msg=name)
