"""TextVectorization: Keras' standardisation, splitting, n-grams, vocabulary ranking and
output modes, its config and model-file round trip, and a text classifier trained on
strings end to end; StringLookup and IntegerLookup; the Keras saving hooks that read an
adapted layer's vocabulary from a Keras file's assets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import dendrite as tf
from dendrite.layers import TextVectorization

TEXTS = ["The cat sat.", "The dog sat!", "A cat, a dog; a bird?"]


def test_int_mode_pads_cuts_and_marks_unknown_tokens():
    layer = TextVectorization(output_sequence_length=4)
    layer.adapt(TEXTS)
    vocabulary = layer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"]
    # "a" occurs 3 times; then the count-2 tokens, ties in reverse sorted order.
    assert vocabulary[2:] == ["a", "the", "sat", "dog", "cat", "bird"]
    out = layer(["the CAT!", "a a a a a", "zebra the"]).data
    index = {token: i for i, token in enumerate(vocabulary)}
    np.testing.assert_array_equal(
        out,
        [
            [index["the"], index["cat"], 0, 0],
            [index["a"]] * 4,
            [1, index["the"], 0, 0],
        ],
    )
    assert out.dtype == np.int64
    ragged = TextVectorization(vocabulary=["x", "y"])(["x", "y x y"]).data
    np.testing.assert_array_equal(ragged, [[2, 0, 0], [3, 2, 3]])


def test_max_tokens_keeps_the_most_frequent():
    layer = TextVectorization(max_tokens=4)
    layer.adapt(TEXTS)
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "the"]
    assert layer.vocabulary_size() == 4


def test_multi_hot_count_and_tf_idf_rows():
    multi = TextVectorization(output_mode="multi_hot", vocabulary=["a", "b"])
    np.testing.assert_array_equal(multi(["a a c", "b"]).data, [[1, 1, 0], [0, 0, 1]])
    count = TextVectorization(
        output_mode="count", vocabulary=["a", "b"], pad_to_max_tokens=True, max_tokens=5
    )
    np.testing.assert_array_equal(count(["a a c", "b"]).data, [[1, 2, 0, 0, 0], [0, 0, 1, 0, 0]])
    tfidf = TextVectorization(output_mode="tf_idf")
    tfidf.adapt(["a b", "a"])
    idf = {"a": math.log(1 + 2 / 3), "b": math.log(1 + 2 / 2)}
    vocabulary = tfidf.get_vocabulary()
    row = tfidf(["a a b z"]).data[0]
    assert row[vocabulary.index("a")] == pytest.approx(2 * idf["a"], rel=1e-6)
    assert row[vocabulary.index("b")] == pytest.approx(idf["b"], rel=1e-6)
    assert row[0] == pytest.approx((idf["a"] + idf["b"]) / 2, rel=1e-6)


def test_ngrams_standardize_and_split_options():
    layer = TextVectorization(ngrams=2, standardize="lower", vocabulary=["a b", "a", "b"])
    np.testing.assert_array_equal(layer(["A B"]).data, [[3, 4, 2]])
    chars = TextVectorization(split="character", standardize=None, vocabulary=["x", "Y"])
    np.testing.assert_array_equal(chars(["xY"]).data, [[2, 3]])
    custom = TextVectorization(standardize=lambda s: s.replace("-", " "), vocabulary=["a", "b"])
    np.testing.assert_array_equal(custom(["a-b"]).data, [[2, 3]])
    with pytest.raises(ValueError, match="callable `standardize` or `split` cannot be saved"):
        custom.get_config()


def test_errors():
    with pytest.raises(ValueError, match="has no vocabulary: call adapt"):
        TextVectorization()(["a"])
    with pytest.raises(ValueError, match="Invalid value for argument `output_mode`"):
        TextVectorization(output_mode="one_hot")
    with pytest.raises(ValueError, match=r"shape \(batch,\) or \(batch, 1\)"):
        TextVectorization(vocabulary=["a"])([["a", "b"]])
    with pytest.raises(ValueError, match="only valid with output_mode='int'"):
        TextVectorization(output_mode="count", output_sequence_length=3)


def test_a_text_classifier_trains_on_strings_and_round_trips(tmp_path):
    tf.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    good, bad = ["great", "fine", "lovely", "nice"], ["awful", "poor", "sad", "bad"]
    texts, labels = [], []
    for _ in range(200):
        label = int(rng.integers(0, 2))
        words = rng.choice(good if label else bad, size=3).tolist() + ["the", "film"]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(label)
    texts, labels = np.array(texts), np.array(labels)
    vectorize = TextVectorization(max_tokens=20, output_sequence_length=5)
    vectorize.adapt(texts)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((1,), dtype="string"),
            vectorize,
            tf.keras.layers.Embedding(20, 8),
            tf.keras.layers.GlobalAveragePooling1D(),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(texts, labels, epochs=8, batch_size=20, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    path = tmp_path / "text.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(texts[:10], verbose=0), model.predict(texts[:10], verbose=0), rtol=1e-6
    )
    assert loaded.layers[0].get_vocabulary() == vectorize.get_vocabulary()


# --- StringLookup / IntegerLookup (values checked against Keras 3.15) ---------------------
from dendrite.layers.preprocessing import IntegerLookup, StringLookup  # noqa: E402

WORDS = np.array([["a", "b", "b"], ["c", "c", "c"], ["a", "z", "b"]])


def test_string_lookup_adapts_and_looks_up_as_keras():
    layer = StringLookup()
    layer.adapt(WORDS)
    # most frequent first; ties: the later token first
    assert layer.get_vocabulary() == ["[UNK]", "c", "b", "a", "z"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["c", "b", "a", "z"]
    np.testing.assert_array_equal(layer(np.array([["a", "q"]])).data, [[3, 0]])
    masked = StringLookup(mask_token="", vocabulary=["x", "y"])
    assert masked.get_vocabulary() == ["", "[UNK]", "x", "y"]
    np.testing.assert_array_equal(masked(np.array([["x", "", "q"]])).data, [[2, 0, 1]])
    inverse = StringLookup(vocabulary=["a", "b"], invert=True)
    assert inverse(np.array([[0, 1, 2, 5]])).data.tolist() == [["[UNK]", "a", "b", "[UNK]"]]


def test_lookup_output_modes():
    counts = StringLookup(output_mode="count", vocabulary=["a", "b"])
    np.testing.assert_array_equal(counts(np.array([["a", "a", "q"]])).data, [[1, 2, 0]])
    multi = StringLookup(output_mode="multi_hot", vocabulary=["a", "b"])
    np.testing.assert_array_equal(multi(np.array([["a", "a", "q"]])).data, [[1, 1, 0]])
    one = StringLookup(output_mode="one_hot", vocabulary=["a", "b"])
    np.testing.assert_array_equal(one(np.array(["b", "q"])).data, [[0, 0, 1], [1, 0, 0]])
    tf_idf = IntegerLookup(output_mode="tf_idf", vocabulary=[4, 5], idf_weights=[0.5, 1.5])
    np.testing.assert_allclose(tf_idf(np.array([[4, 4, 9]])).data, [[1.0, 1.0, 0.0]])
    padded = IntegerLookup(
        output_mode="count", vocabulary=[4], pad_to_max_tokens=True, max_tokens=4
    )
    assert padded(np.array([[4, 1]])).data.shape == (1, 4)


def test_integer_lookup_buckets_out_of_vocabulary_values():
    layer = IntegerLookup(num_oov_indices=3, vocabulary=[5, 7])
    assert layer.get_vocabulary() == [-1, -1, -1, 5, 7]
    np.testing.assert_array_equal(layer(np.array([[5, 7, 9, 10, 11]])).data, [[3, 4, 0, 1, 2]])
    masked = IntegerLookup(mask_token=0, vocabulary=[5])
    np.testing.assert_array_equal(masked(np.array([[0, 5, 6]])).data, [[0, 2, 1]])


def test_lookup_errors():
    with pytest.raises(ValueError, match="has no vocabulary"):
        StringLookup()(np.array([["a"]]))
    with pytest.raises(ValueError, match="repeated term"):
        StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="num_oov_indices=2"):
        StringLookup(num_oov_indices=2)
    with pytest.raises(ValueError, match="should be in vocabulary"):
        StringLookup(num_oov_indices=0, vocabulary=["a"])(np.array([["b"]]))
    with pytest.raises(ValueError, match="sparse=True"):
        IntegerLookup(output_mode="multi_hot", sparse=True)
    with pytest.raises(ValueError, match="vocabulary file path is not read"):
        StringLookup(vocabulary="/etc/passwd")
    with pytest.raises(ValueError, match="'ids' \\(IntegerLookup\\) expects integer input; "):
        IntegerLookup(vocabulary=[3, 5], name="ids")(np.array([["3"]]))


@pytest.mark.parametrize(
    ("make", "dtype", "data", "unknown"),
    [
        (
            lambda: IntegerLookup(vocabulary=[3, 5, 7], num_oov_indices=0),
            "int64",
            [[3, 7]],
            [[3, 4]],
        ),
        (
            lambda: StringLookup(vocabulary=["a", "b"], num_oov_indices=0),
            "string",
            [["a", "b"]],
            [["a", "z"]],
        ),
    ],
)
def test_lookup_without_oov_indices_builds_a_functional_model(make, dtype, data, unknown):
    """Building the graph runs the layer on placeholders, which are no tokens: that is
    not the out-of-vocabulary error, which data still gets."""
    inputs = tf.keras.Input((2,), dtype=dtype)
    model = tf.keras.Model(inputs, make()(inputs))
    np.testing.assert_array_equal(
        model.predict(np.array(data), verbose=0), [[0, 2 if dtype == "int64" else 1]]
    )
    with pytest.raises(ValueError, match="should be in vocabulary"):
        model.predict(np.array(unknown), verbose=0)


def test_lookups_read_keras_assets_and_tf_idf_variables(tmp_path):
    """Keras' hooks: an adapted layer saved by Keras has vocabulary=None in its config and
    its vocabulary in assets/<path>/vocabulary.txt (special tokens first)."""
    (tmp_path / "vocabulary.txt").write_text("[UNK]\nc\nb\na")
    layer = StringLookup()
    layer.load_own_variables({})
    layer.load_assets(str(tmp_path))
    assert layer.get_vocabulary() == ["[UNK]", "c", "b", "a"]
    (tmp_path / "vocabulary.txt").write_text("-1\n9\n7")
    tf_idf = IntegerLookup(output_mode="tf_idf")
    store = {"idf_weights": np.array([0.7, 0.2, 0.9], "float32")}
    tf_idf.load_own_variables(store)
    tf_idf.load_assets(str(tmp_path))
    np.testing.assert_allclose(tf_idf(np.array([[9, 3]])).data, [[0.7, 0.2, 0.0]], rtol=1e-6)
    saved: dict = {}
    tf_idf.save_own_variables(saved)
    np.testing.assert_allclose(saved["idf_weights"], store["idf_weights"])
    (tmp_path / "vocabulary.txt").write_text("x\ny")
    with pytest.raises(ValueError, match="not an integer"):
        IntegerLookup().load_assets(str(tmp_path))


def test_text_vectorization_reads_keras_assets(tmp_path):
    (tmp_path / "vocabulary.txt").write_text("\n[UNK]\ncat\nsat")
    layer = TextVectorization()
    layer.load_assets(str(tmp_path))
    assert layer.get_vocabulary() == ["", "[UNK]", "cat", "sat"]
    (tmp_path / "vocabulary.txt").write_text("cat\nsat")
    with pytest.raises(ValueError, match="reserved tokens"):
        TextVectorization().load_assets(str(tmp_path))


def test_a_graph_is_built_before_the_vocabulary_arrives():
    """Loading a Keras file builds the model first and reads assets after: a symbolic call
    without a vocabulary gives the declared shapes (vocabulary_size from the config)."""
    inputs = tf.keras.Input((3,), dtype="string")
    outputs = StringLookup(output_mode="multi_hot", vocabulary_size=5)(inputs)
    assert tuple(outputs.shape) == (None, 5)
    text = tf.keras.Input((1,), dtype="string")
    assert tuple(TextVectorization(output_sequence_length=4)(text).shape) == (None, 4)


def test_a_graph_without_a_vocabulary_needs_a_known_width():
    """Multi-hot, count and tf-idf rows are as wide as the vocabulary: without one (and
    without vocabulary_size or pad_to_max_tokens) the graph cannot be built, as in Keras."""
    inputs = tf.keras.Input((3,), dtype="string")
    with pytest.raises(ValueError, match="has no vocabulary"):
        StringLookup(output_mode="multi_hot")(inputs)
    text = tf.keras.Input((1,), dtype="string")
    with pytest.raises(ValueError, match="has no vocabulary"):
        TextVectorization(output_mode="count")(text)
    padded = TextVectorization(output_mode="count", max_tokens=6, pad_to_max_tokens=True)
    assert tuple(padded(text).shape) == (None, 6)


@pytest.mark.parametrize("suffix", [".dendrite", ".keras"])
def test_a_functional_text_model_round_trips(tmp_path, suffix):
    """String inputs in a functional model (their tensors are 'string' in the config), a
    tf-idf TextVectorization (idf weights in its own variables too) and a StringLookup."""
    texts = np.array(["the cat sat", "the dog", "a bird"])
    vectorize = TextVectorization(output_mode="tf_idf")
    vectorize.adapt(texts)
    lookup = StringLookup()
    lookup.adapt(np.array(["a", "b", "b"]))
    text = tf.keras.Input((1,), dtype="string")
    words = tf.keras.Input((2,), dtype="string")
    h = tf.keras.layers.Dense(2)(vectorize(text))
    model = tf.keras.Model(
        [text, words], tf.keras.layers.Concatenate()([h, tf.ops.cast(lookup(words), "float32")])
    )
    x = [np.array([["the cat"], ["zebra"]]), np.array([["a", "q"], ["b", "b"]])]
    model.save(tmp_path / f"text{suffix}")
    loaded = tf.keras.models.load_model(tmp_path / f"text{suffix}")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_lower_case_is_ascii_only_as_in_keras():
    """Keras lower-cases with TensorFlow's tf.strings.lower: ASCII letters only."""
    layer = TextVectorization(output_mode="int", standardize="lower")
    layer.adapt(["ÉCOLE École Straße STRASSE"])
    # "ÉCOLE" and "École" both become "École"; "ß" stays, "SS" becomes "ss"
    assert set(layer.get_vocabulary()[2:]) == {"École", "straße", "strasse"}


def test_non_ascii_text_gives_keras_vocabulary_and_ids(tmp_path):
    pytest.importorskip("tensorflow")  # Keras' TextVectorization runs on TensorFlow
    from dendrite.testing.keras_side import run_keras_side

    texts = ["ÉCOLE, École! Ça va?", "Straße STRASSE straße", "ÀB àb AB ab"]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    run_keras_side(
        """
import json, sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
texts = json.loads((root / "texts.json").read_text())
layer = keras.layers.TextVectorization()
layer.adapt(texts)
(root / "vocab.json").write_text(json.dumps(layer.get_vocabulary()))
np.save(root / "ids.npy", keras.ops.convert_to_numpy(layer(texts)))
""",
        tmp_path,
    )
    layer = TextVectorization()
    layer.adapt(texts)
    assert layer.get_vocabulary() == json.loads((tmp_path / "vocab.json").read_text())
    np.testing.assert_array_equal(np.asarray(layer(texts).data), np.load(tmp_path / "ids.npy"))
