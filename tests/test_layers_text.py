"""TextVectorization: Keras' standardisation, splitting, n-grams, vocabulary ranking and
output modes, its config and model-file round trip, and a text classifier trained on
strings end to end."""

from __future__ import annotations

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
