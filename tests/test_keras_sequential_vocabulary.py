"""A Sequential saved by Keras 3 with an adapted TextVectorization or StringLookup (the
vocabulary in the file's assets, read after the model is built) loads in dendrite and
predicts what Keras predicts (Keras in a subprocess, as tests/test_keras_files_roundtrip.py
runs it)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

pytest.importorskip("h5py")

TEXTS = ["the cat sat", "the dog ran far", "a cat and a dog", "dogs and cats"]
PROBE = [["the cat ran"], ["a dog"], ["unknown words here"]]

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    texts, probe = json.loads(open(root + "/data.json").read())
    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    vectorize.adapt(np.array(texts))
    text = keras.Sequential([keras.Input((1,), dtype="string"), vectorize,
                             keras.layers.Embedding(12, 3)])
    text.save(root + "/text.keras")
    words = [w for t in texts for w in t.split()]
    lookup = keras.layers.StringLookup()
    lookup.adapt(np.array(words))
    ids = keras.Sequential([keras.Input((1,), dtype="string"), lookup])
    ids.save(root + "/lookup.keras")
    import tensorflow as tf
    np.save(root + "/text_y.npy", np.asarray(text(tf.constant(probe))))
    first = [[p[0].split()[0]] for p in probe]
    np.save(root + "/lookup_y.npy", np.asarray(ids(tf.constant(first))))
    """
)


def test_placeholder_runs_pass_layers_waiting_for_their_vocabulary():
    """The mechanism: a model run on placeholder zeros (as loading does to build what its
    symbolic build left unbuilt) passes a lookup layer with no vocabulary yet."""
    from dendrite.layers.symbolic import infer_output_shape

    model = tf.keras.Sequential(
        [tf.keras.Input((1,), dtype="string"), tf.keras.layers.StringLookup()]
    )
    assert infer_output_shape(model, (None, 1)) == (None, 1)
    vectorize = tf.keras.layers.TextVectorization(output_sequence_length=4)
    text = tf.keras.Sequential([tf.keras.Input((1,), dtype="string"), vectorize])
    assert infer_output_shape(text, (None, 1)) == (None, 4)


def test_keras_saved_sequentials_with_vocabularies_load(tmp_path: Path):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")  # Keras' lookup layers need it on every backend
    (tmp_path / "data.json").write_text(json.dumps([TEXTS, PROBE]))
    # Strings need Keras' TensorFlow backend (torch tensors hold no strings); the file is
    # the same whichever backend wrote it.
    run_keras_side(KERAS_SIDE, tmp_path, backend="tensorflow")
    text = tf.keras.models.load_model(tmp_path / "text.keras")
    np.testing.assert_allclose(
        text.predict(np.array(PROBE), verbose=0), np.load(tmp_path / "text_y.npy"), rtol=1e-6
    )
    lookup = tf.keras.models.load_model(tmp_path / "lookup.keras")
    first = np.array([[p[0].split()[0]] for p in PROBE])
    np.testing.assert_array_equal(
        lookup.predict(first, verbose=0), np.load(tmp_path / "lookup_y.npy")
    )
    with pytest.raises(ValueError, match="vocabulary"):
        tf.keras.layers.StringLookup()(np.array([["a"]]))  # data, not placeholders: refused
