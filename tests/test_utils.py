"""to_categorical, pad_sequences (Keras' pre/post semantics), set_random_seed."""

import numpy as np
import pytest

import dendrite as tf
from dendrite.utils import pad_sequences, to_categorical


def test_to_categorical():
    out = to_categorical([0, 2, 1])
    np.testing.assert_array_equal(out, np.eye(3)[[0, 2, 1]])
    assert out.dtype == np.float32
    assert to_categorical(np.array([[1], [0]]), num_classes=4).shape == (2, 4)
    with pytest.raises(ValueError, match="out of range"):
        to_categorical([5], num_classes=3)


def test_pad_sequences_pre_and_post():
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    np.testing.assert_array_equal(
        pad_sequences(seqs, maxlen=4),
        [[0, 1, 2, 3], [0, 0, 0, 4], [6, 7, 8, 9]],
    )
    np.testing.assert_array_equal(
        pad_sequences(seqs, maxlen=4, padding="post", truncating="post"),
        [[1, 2, 3, 0], [4, 0, 0, 0], [5, 6, 7, 8]],
    )
    assert pad_sequences(seqs).shape == (3, 5)
    assert pad_sequences(seqs).dtype == np.int32
    np.testing.assert_array_equal(
        pad_sequences([[1.5]], maxlen=2, dtype="float32", value=-1), [[-1, 1.5]]
    )
    assert pad_sequences([[], [1]]).tolist() == [[0], [1]]
    with pytest.raises(ValueError, match="padding"):
        pad_sequences(seqs, padding="middle")


def test_set_random_seed_repeats_weights():
    tf.utils.set_random_seed(3)
    a = tf.layers.Dense(3)
    a(np.ones((1, 2), dtype="float32"))
    tf.utils.set_random_seed(3)
    b = tf.layers.Dense(3)
    b(np.ones((1, 2), dtype="float32"))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_keras_namespace_is_dendrite_itself():
    import dendrite

    assert tf.keras is dendrite
    assert tf.keras.layers.Dense is dendrite.layers.Dense
    from dendrite.keras import layers as keras_layers

    assert keras_layers is dendrite.layers


def test_keras_backend_namespace():
    from dendrite.keras import backend

    import dendrite as tf

    assert backend is tf.keras.backend
    assert backend.floatx() == "float32" and backend.epsilon() == 1e-7
    assert backend.image_data_format() == "channels_last" and backend.backend() == "numpy"
    backend.set_epsilon(1e-6)
    try:
        assert backend.epsilon() == 1e-6
    finally:
        backend.set_epsilon(1e-7)
    tf.keras.layers.Dense(1)
    backend.clear_session()
    assert tf.keras.layers.Dense(1).name == "dense"


def test_standardize_dtype_and_is_keras_tensor():
    """keras.utils.standardize_dtype's names (Python types by Keras' widths) and
    is_keras_tensor telling symbolic tensors from data."""
    import numpy as np
    import pytest

    import dendrite as tf

    utils = tf.keras.utils
    assert utils.standardize_dtype(None) == tf.keras.config.floatx()
    cases = {float: "float32", int: "int32", bool: "bool", "int64": "int64", "string": "string"}
    for given, name in cases.items():
        assert utils.standardize_dtype(given) == name
    assert utils.standardize_dtype(np.float64) == "float64"
    assert utils.standardize_dtype(np.dtype("int8")) == "int8"
    assert utils.standardize_dtype("bfloat16") == "bfloat16"
    for bad in ("float", "nonsense"):
        with pytest.raises(ValueError, match="Invalid dtype"):
            utils.standardize_dtype(bad)
    assert utils.is_keras_tensor(tf.keras.Input((2,)))
    assert not utils.is_keras_tensor(np.ones(2))
