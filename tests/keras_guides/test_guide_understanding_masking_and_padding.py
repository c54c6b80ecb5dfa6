"""The understanding masking and padding guide
(keras.io/guides/understanding_masking_and_padding/), as our own programs:
pad_sequences, Embedding(mask_zero=True) and compute_mask, the Masking layer,
_keras_mask, mask propagation through Sequential and functional models, passing masks
by hand, custom layers that change the mask (compute_mask), opt in to propagating it
(supports_masking) or use it in call(mask=...)."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RAW = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]


def build_masked_lstm(k):
    return k.Sequential(
        [
            k.Input(shape=(None,), dtype="int32"),
            k.layers.Embedding(input_dim=50, output_dim=4, mask_zero=True),
            k.layers.LSTM(6),
        ]
    )


def build_functional_masked_lstm(k):
    inputs = k.Input(shape=(None,), dtype="int32")
    x = k.layers.Embedding(input_dim=50, output_dim=4, mask_zero=True)(inputs)
    outputs = k.layers.LSTM(6)(x)
    return k.Model(inputs, outputs)


def test_pad_sequences_post_and_pre():
    post = keras.utils.pad_sequences(RAW, padding="post")
    np.testing.assert_array_equal(
        post,
        [[711, 632, 71, 0, 0, 0], [73, 8, 3215, 55, 927, 0], [83, 91, 1, 645, 1253, 927]],
    )
    pre = keras.utils.pad_sequences(RAW)
    np.testing.assert_array_equal(pre[0], [0, 0, 0, 711, 632, 71])
    short = keras.utils.pad_sequences(RAW, maxlen=4, value=-1, padding="post")
    np.testing.assert_array_equal(
        short, [[711, 632, 71, -1], [8, 3215, 55, 927], [1, 645, 1253, 927]]
    )


def test_embedding_mask_zero():
    padded = keras.utils.pad_sequences(RAW, padding="post")
    embedding = layers.Embedding(input_dim=5000, output_dim=4, mask_zero=True)
    masked_output = embedding(padded)
    expected = padded != 0
    np.testing.assert_array_equal(np.asarray(masked_output._keras_mask), expected)
    np.testing.assert_array_equal(np.asarray(embedding.compute_mask(padded)), expected)


def test_masking_layer():
    padded = keras.utils.pad_sequences(RAW, padding="post")
    unmasked = np.repeat(padded[:, :, None], 3, axis=-1).astype("float32")
    masked = layers.Masking(mask_value=0.0)(unmasked)
    np.testing.assert_array_equal(np.asarray(masked._keras_mask), padded != 0)


def test_mask_propagates_to_lstm_in_sequential():
    keras.utils.set_random_seed(0)
    model = build_masked_lstm(keras)
    padded = keras.utils.pad_sequences([[5, 7, 9]], maxlen=6, padding="post")
    np.testing.assert_allclose(
        np.asarray(model(padded)), np.asarray(model(np.array([[5, 7, 9]]))), rtol=1e-5
    )


def test_mask_propagates_in_functional_model():
    keras.utils.set_random_seed(0)
    model = build_functional_masked_lstm(keras)
    padded = keras.utils.pad_sequences([[5, 7, 9], [1, 2]], maxlen=5, padding="post")
    out = np.asarray(model(padded))
    np.testing.assert_allclose(out[1], np.asarray(model(np.array([[1, 2]])))[0], rtol=1e-5)


class MyLayer(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = layers.Embedding(input_dim=50, output_dim=4, mask_zero=True)
        self.lstm = layers.LSTM(6)

    def call(self, inputs):
        x = self.embedding(inputs)
        mask = self.embedding.compute_mask(inputs)
        return self.lstm(x, mask=mask)


def test_pass_mask_by_hand():
    keras.utils.set_random_seed(0)
    layer = MyLayer()
    padded = keras.utils.pad_sequences([[5, 7, 9]], maxlen=6, padding="post")
    np.testing.assert_allclose(
        np.asarray(layer(padded)), np.asarray(layer(np.array([[5, 7, 9]]))), rtol=1e-5
    )


class TemporalSplit(layers.Layer):
    def call(self, inputs):
        return ops.split(inputs, 2, axis=1)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return ops.split(mask, 2, axis=1)


def test_custom_layer_splits_the_mask():
    x = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    emb = layers.Embedding(10, 3, mask_zero=True)(x)
    first, second = TemporalSplit()(emb)
    np.testing.assert_array_equal(np.asarray(first._keras_mask), [[True, True], [True, False]])
    np.testing.assert_array_equal(np.asarray(second._keras_mask), [[False, False], [False, False]])


class CustomEmbedding(layers.Layer):
    def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim), initializer="random_normal"
        )

    def call(self, inputs):
        return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)


def test_custom_layer_compute_mask_called_directly():
    x = np.array([[1, 2, 0], [4, 0, 0]])
    layer = CustomEmbedding(10, 4, mask_zero=True)
    y = layer(x)
    assert tuple(y.shape) == (2, 3, 4)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(x)), x != 0)


def test_custom_layer_generates_a_mask_eagerly():
    x = np.array([[1, 2, 0], [4, 0, 0]])
    y = CustomEmbedding(10, 4, mask_zero=True)(x)
    np.testing.assert_array_equal(np.asarray(y._keras_mask), x != 0)


def test_custom_layer_generates_a_mask_symbolically():
    inputs = keras.Input(shape=(None,), dtype="int32")
    y = CustomEmbedding(10, 4, mask_zero=True)(inputs)
    assert y._keras_mask is not None


class MyActivation(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.relu(inputs)


def test_opt_in_mask_propagation():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=20, output_dim=4, mask_zero=True)(inputs)
    x = MyActivation()(x)
    assert x._keras_mask is not None
    model = keras.Model(inputs, layers.LSTM(3)(x))
    padded = np.array([[3, 4, 0, 0]])
    np.testing.assert_allclose(
        np.asarray(model(padded)), np.asarray(model(np.array([[3, 4]]))), rtol=1e-5
    )


class TemporalSoftmax(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        assert mask is not None
        broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
        inputs_exp = ops.exp(inputs) * broadcast_float_mask
        inputs_sum = ops.sum(inputs_exp * broadcast_float_mask, axis=1, keepdims=True)
        return inputs_exp / inputs_sum


def test_layer_that_uses_the_mask():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=6, mask_zero=True)(inputs)
    x = layers.Dense(1)(x)
    outputs = TemporalSoftmax()(x)
    model = keras.Model(inputs, outputs)
    y = np.asarray(model(np.array([[1, 2, 3, 0, 0]])))
    assert y.shape == (1, 5, 1)
    np.testing.assert_array_equal(y[0, 3:, 0], 0.0)
    np.testing.assert_allclose(y[0, :3, 0].sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "build", [build_masked_lstm, build_functional_masked_lstm], ids=["sequential", "functional"]
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
