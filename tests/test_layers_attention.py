"""MultiHeadAttention, Attention and AdditiveAttention: values against NumPy references,
masks, gradients, configs, errors, and a Transformer block built from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_layers_recurrent import check_gradients

from dendrite.core import Tensor
from dendrite.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from dendrite.layers.base import Layer
from dendrite.layers.core import Dense

B, T, S, E = 2, 4, 5, 6


def _arr(shape: tuple, seed: int, dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_reference(
    layer: MultiHeadAttention, q: np.ndarray, v: np.ndarray, k: np.ndarray, mask: np.ndarray | None
) -> tuple:
    """Keras' equations with np.einsum (fine in a test: it is the readable reference)."""
    w = [x.data for x in layer.weights]
    qh = np.einsum("btd,dnh->btnh", q, w[0]) + w[1]
    kh = np.einsum("bsd,dnh->bsnh", k, w[2]) + w[3]
    vh = np.einsum("bsd,dnh->bsnh", v, w[4]) + w[5]
    scores = np.einsum("bsnh,btnh->bnts", kh, qh / np.sqrt(layer.key_dim))
    if mask is not None:
        scores = scores + (1.0 - mask[:, None]) * -1e9
    probs = _softmax(scores)
    context = np.einsum("bnts,bsnh->btnh", probs, vh)
    return np.einsum("btnh,nho->bto", context, w[6]) + w[7], probs


def test_multi_head_attention_matches_reference_with_masks() -> None:
    layer = MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, dtype="float64")
    q, v, k = _arr((B, T, E), 0), _arr((B, S, 5), 1), _arr((B, S, 3), 2)
    attention_mask = np.random.default_rng(3).random((B, T, S)) > 0.3
    value_mask = np.array([[True] * S, [True, True, True, False, False]])
    out, probs = layer(
        q,
        v,
        key=k,
        attention_mask=attention_mask,
        value_mask=value_mask,
        return_attention_scores=True,
    )
    assert [w.shape for w in layer.weights] == [
        (E, 3, 2),
        (3, 2),
        (3, 3, 2),
        (3, 2),
        (5, 3, 4),
        (3, 4),
        (3, 4, E),
        (E,),
    ]
    merged = attention_mask & value_mask[:, None, :]
    expected, expected_probs = _mha_reference(layer, q, v, k, merged)
    np.testing.assert_allclose(out.data, expected, atol=1e-10)
    np.testing.assert_allclose(probs.data, expected_probs, atol=1e-10)


def test_causal_mask_and_keras_masks() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3, dtype="float64")
    x = _arr((B, T, E), 4)
    out = layer(x, x, use_causal_mask=True)
    expected, _ = _mha_reference(layer, x, x, x, np.tril(np.ones((T, T)))[None])
    np.testing.assert_allclose(out.data, expected, atol=1e-10)
    # A query/value mask riding on the tensor (Embedding/Masking) is applied and passed on.
    from dendrite.layers.embedding import Masking

    data = x.copy()
    data[0, 2:] = 0.0
    masked = Masking(0.0, dtype="float64")(Tensor(data))
    out = layer(masked, masked)
    keep = masked._keras_mask
    expected, _ = _mha_reference(layer, data, data, data, keep[:, :, None] & keep[:, None, :])
    np.testing.assert_allclose(out.data, expected, atol=1e-10)
    np.testing.assert_array_equal(out._keras_mask, keep)


@pytest.mark.parametrize(
    "kwargs", [{}, {"value_dim": 2, "output_shape": (2, 3)}, {"use_bias": False, "key_dim": 1}]
)
def test_multi_head_attention_gradcheck(kwargs: dict) -> None:
    options = {"num_heads": 2, "key_dim": 3, **kwargs}
    layer = MultiHeadAttention(**options, dtype="float64")
    q, v = _arr((B, T, E), 5), _arr((B, S, 4), 6)
    mask = np.random.default_rng(7).random((B, T, S)) > 0.2
    layer(q, v)
    for w in layer.weights:
        w.data[...] += _arr(w.shape, 8) * 0.1
    check_gradients(lambda q, v: layer(q, v, attention_mask=mask), layer, [q, v])


def test_rank_four_inputs_attend_over_flattened_axes_and_scores_shape() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3, output_shape=7)
    q, v = _arr((B, 2, 3, E), 0, "float32"), _arr((B, 4, 2, E), 1, "float32")
    out, scores = layer(q, v, return_attention_scores=True)
    assert out.shape == (B, 2, 3, 7) and scores.shape == (B, 2, 2, 3, 4, 2)
    flat = layer(q.reshape(B, 6, E), v.reshape(B, 8, E))
    np.testing.assert_allclose(out.data.reshape(B, 6, 7), flat.data, atol=1e-6)
    assert layer.compute_output_shape((None, 2, 3, E)) == (None, 2, 3, 7)


def test_dropout_on_attention_probabilities() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5, seed=0)
    x = _arr((B, T, E), 2, "float32")
    inference = layer(x, x).data
    np.testing.assert_array_equal(layer(x, x, training=False).data, inference)
    assert not np.allclose(layer(x, x, training=True).data, inference)


def test_multi_head_attention_config_and_errors() -> None:
    layer = MultiHeadAttention(4, 2, value_dim=3, output_shape=(5,), name="mha")
    q, v = _arr((B, T, E), 0, "float32"), _arr((B, S, E), 1, "float32")
    expected = layer(q, v)
    config = json.loads(json.dumps(layer.get_config()))
    clone = MultiHeadAttention.from_config(config)
    clone(q, v)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(q, v).data, expected.data)
    assert clone.get_config() == config
    with pytest.raises(ValueError, match=r"'mha'.*`value`.*6 features.*\(2, 5, 3\)"):
        layer(q, v[..., :3])
    with pytest.raises(ValueError, match=r"'mha'.*rank >= 3.*\(2, 6\)"):
        layer(q[:, 0], v)
    with pytest.raises(ValueError, match=r"'mha'.*attention_mask.*\(2, 4, 5\)"):
        layer(q, v, attention_mask=np.ones((B, 3, 3), dtype=bool))
    with pytest.raises(NotImplementedError, match="attention_axes"):
        MultiHeadAttention(2, 2, attention_axes=(1,))


def test_attention_dot_and_concat_match_reference() -> None:
    q, v, k = _arr((B, T, E), 0), _arr((B, S, E), 1), _arr((B, S, E), 2)
    q_mask = np.array([[True, True, True, False], [True] * T])
    v_mask = np.array([[True] * S, [True, False, True, False, True]])
    layer = Attention(use_scale=True, dtype="float64")
    out, weights = layer([q, v, k], mask=[q_mask, v_mask], return_attention_scores=True)
    layer.scale.data[...] = 1.0
    scores = q @ k.transpose(0, 2, 1) - 1e9 * (~v_mask[:, None, :])
    np.testing.assert_allclose(weights.data, _softmax(scores), atol=1e-12)
    np.testing.assert_allclose(out.data, (_softmax(scores) @ v) * q_mask[..., None], atol=1e-12)
    concat = Attention(score_mode="concat", dtype="float64")
    got = concat([q, v], use_causal_mask=True)
    raw = np.tanh(q[:, :, None] + v[:, None]).sum(-1) - 1e9 * ~np.tril(np.ones((T, S), bool))
    np.testing.assert_allclose(got.data, _softmax(raw) @ v, atol=1e-12)


def test_additive_attention_matches_reference() -> None:
    q, v = _arr((B, T, E), 3), _arr((B, S, E), 4)
    layer = AdditiveAttention(dtype="float64")
    out = layer([q, v])
    scale = layer.scale.data
    scores = (np.tanh(q[:, :, None] + v[:, None]) * scale).sum(-1)
    np.testing.assert_allclose(out.data, _softmax(scores) @ v, atol=1e-12)
    assert [w.shape for w in layer.weights] == [(E,)]


@pytest.mark.parametrize("cls", [Attention, AdditiveAttention])
def test_luong_and_bahdanau_gradcheck_and_config(cls: type) -> None:
    kwargs = {"use_scale": True} if cls is Attention else {}
    layer = cls(**kwargs, dtype="float64")
    q, v = _arr((B, T, E), 5), _arr((B, S, E), 6)
    v_mask = np.array([[True] * S, [True, True, False, True, False]])
    layer([q, v])
    check_gradients(lambda q, v: layer([q, v], mask=[None, v_mask]), layer, [q, v])
    config = json.loads(json.dumps(layer.get_config()))
    clone = cls.from_config(config)
    clone([q, v])
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone([q, v]).data, layer([q, v]).data)
    with pytest.raises(ValueError, match=f"'{layer.name}'.*list of inputs"):
        layer(q)


class TransformerBlock(Layer):
    """Post-norm encoder block: x + MHA(x) -> norm -> x + FFN(x) -> norm."""

    def __init__(self, dim: int, heads: int, hidden: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        from dendrite.layers.normalization import LayerNormalization

        self.attention = MultiHeadAttention(heads, dim // heads)
        self.norm1 = LayerNormalization()
        self.norm2 = LayerNormalization()
        self.ffn1 = Dense(hidden, activation="relu")
        self.ffn2 = Dense(dim)

    def call(self, x: Tensor, training: object = None) -> Tensor:
        x = self.norm1(x + self.attention(x, x, use_causal_mask=True, training=training))
        return self.norm2(x + self.ffn2(self.ffn1(x)))


def test_transformer_block_trains() -> None:
    pytest.importorskip("dendrite.layers.normalization")
    from dendrite.layers.input_layer import Input
    from dendrite.models.model import Model
    from dendrite.optimizers import Adam

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 8)).astype("float32")
    y = np.cumsum(x[..., :1], axis=1).astype("float32")  # causal target: running sum
    inputs = Input(shape=(6, 8))
    outputs = Dense(1)(TransformerBlock(8, 2, 16)(inputs))
    model = Model(inputs, outputs)
    model.compile(optimizer=Adam(0.01), loss="mse")
    history = model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert len(model.trainable_weights) == 8 + 4 + 4 + 2  # MHA, 2 norms, FFN, head


def test_multi_head_attention_in_a_functional_model() -> None:
    from dendrite.layers.input_layer import Input
    from dendrite.models.model import Model

    query, value = Input(shape=(T, E)), Input(shape=(S, 3))
    out = MultiHeadAttention(2, 4)(query, value)
    model = Model([query, value], out)
    q, v = _arr((B, T, E), 0, "float32"), _arr((B, S, 3), 1, "float32")
    assert model.predict([q, v], verbose=0).shape == (B, T, E)
