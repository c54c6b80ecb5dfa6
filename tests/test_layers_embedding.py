"""Embedding and Masking: lookups, gradients, range errors, masks, configs."""

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers import initializers
from dendrite.layers.embedding import Embedding, Masking
from dendrite.layers.normalization import LayerNormalization
from dendrite.testing import gradcheck

R = np.random.default_rng(0)


def test_embedding_keras_defaults_and_weight():
    emb = Embedding(50, 8)
    assert isinstance(emb.embeddings_initializer, initializers.RandomUniform)
    assert not emb.mask_zero and not emb.built
    out = emb(np.array([[1, 2, 3]]))
    (table,) = emb.get_weights()
    assert table.shape == (50, 8) and table.dtype == np.float32
    assert np.abs(table).max() <= 0.05 and table.std() > 0.01
    assert out.shape == (1, 3, 8) and out.dtype == np.float32
    assert [w.path for w in emb.weights] == [f"{emb.name}/embeddings"]


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 2)])
def test_embedding_reads_rows_for_ids_of_any_shape(shape):
    emb = Embedding(10, 3)
    ids = R.integers(0, 10, size=shape)
    out = emb(ids).numpy()
    assert out.shape == (*shape, 3)
    np.testing.assert_array_equal(out, emb.get_weights()[0][ids])
    assert emb.compute_output_shape((None, *shape[1:])) == (None, *shape[1:], 3)


def test_embedding_accepts_float_ids_and_int32():
    emb = Embedding(5, 2)
    table = emb(np.array([0]))  # build
    table = emb.get_weights()[0]
    np.testing.assert_array_equal(emb(np.array([[1.0, 4.0]], "float32")).numpy(), table[[[1, 4]]])
    np.testing.assert_array_equal(emb(np.array([3], "int32")).numpy(), table[[3]])


def test_embedding_gradient_accumulates_repeated_rows():
    emb = Embedding(6, 4, dtype="float64")
    ids = np.array([[1, 1, 5], [0, 1, 5]])
    emb(ids)

    def run(table):
        keep = emb.embeddings
        emb.embeddings = table
        try:
            return emb(ids)
        finally:
            emb.embeddings = keep

    gradcheck(run, emb.embeddings.numpy().copy(), mode="elementwise")
    emb.embeddings.grad = None
    upstream = R.normal(size=(2, 3, 4))
    emb(ids).backward(upstream)
    grad = emb.embeddings.grad
    np.testing.assert_allclose(grad[1], upstream[0, 0] + upstream[0, 1] + upstream[1, 1])
    np.testing.assert_allclose(grad[5], upstream[0, 2] + upstream[1, 2])
    assert np.all(grad[[2, 3, 4]] == 0)


def test_embedding_out_of_range_ids_name_layer_index_and_input_dim():
    emb = Embedding(10, 2, name="emb_probe")
    with pytest.raises(ValueError) as info:
        emb(np.array([[1, 10, 3]]))
    message = str(info.value)
    assert "emb_probe" in message and "index 10" in message and "input_dim=10" in message
    with pytest.raises(ValueError, match="index -1"):
        emb(np.array([[-1, 2]]))


def test_embedding_rejects_bad_dims_and_warns_on_input_length():
    with pytest.raises(ValueError, match="input_dim"):
        Embedding(0, 3)
    with pytest.raises(ValueError, match="output_dim"):
        Embedding(3, -1)
    with pytest.warns(UserWarning, match="input_length"):
        emb = Embedding(3, 2, input_length=5)
    assert "input_length" not in emb.get_config()


def test_embedding_mask_zero_emits_mask_that_flows_on():
    emb = Embedding(10, 4, mask_zero=True)
    ids = np.array([[3, 5, 0, 0], [7, 0, 0, 0]])
    out = emb(ids)
    expected = ids != 0
    np.testing.assert_array_equal(out._keras_mask.numpy(), expected)
    np.testing.assert_array_equal(emb.compute_mask(ids).numpy(), expected)
    # A layer that supports masking passes it along.
    after = LayerNormalization()(out)
    np.testing.assert_array_equal(after._keras_mask.numpy(), expected)
    assert Embedding(10, 4)(ids)._keras_mask is None
    assert Embedding(10, 4).compute_mask(ids) is None


def test_embedding_initial_weights_regularizer_and_config_round_trip():
    table = R.normal(size=(4, 2)).astype("float32")
    emb = Embedding(4, 2, weights=table, embeddings_regularizer="l2", mask_zero=True)
    assert emb.built
    np.testing.assert_array_equal(emb.get_weights()[0], table)
    emb(np.array([[1, 2]]))
    (penalty,) = emb.losses
    np.testing.assert_allclose(penalty.numpy(), 0.01 * np.sum(table**2), rtol=1e-5)
    config = emb.get_config()
    clone = Embedding.from_config(config)
    assert clone.get_config() == config
    assert config["input_dim"] == 4 and config["output_dim"] == 2 and config["mask_zero"]
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    with pytest.raises(ValueError, match="weight shape"):
        Embedding(4, 3, weights=table)


def test_embedding_trains_in_a_model():
    import dendrite as tf
    from dendrite.layers.core import Dense, Flatten

    tf.utils.set_random_seed(0)
    ids = R.integers(0, 20, size=(64, 3))
    y = (ids[:, 0] % 2).astype("int64")
    model = tf.keras.Sequential([Embedding(20, 4), Flatten(), Dense(2)])
    model.compile(
        optimizer=tf.optimizers.Adam(0.05),
        loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(ids, y, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_embedding_parity_with_torch():
    torch = pytest.importorskip("torch")
    emb = Embedding(30, 5)
    ids = R.integers(0, 30, size=(4, 7))
    x = Tensor._make(ids)
    out = emb(x)
    upstream = R.normal(size=out.shape).astype("float32")
    out.backward(upstream)
    weight = torch.tensor(emb.get_weights()[0], requires_grad=True)
    expected = torch.nn.functional.embedding(torch.tensor(ids), weight)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(emb.embeddings.grad, weight.grad.numpy(), atol=1e-5)


# --- Masking ----------------------------------------------------------------------------


def test_masking_zeroes_masked_timesteps_and_emits_mask():
    x = R.normal(size=(2, 4, 3)).astype("float32")
    x[0, 1] = 0.0
    x[1, 2:] = 0.0
    x[1, 0, 0] = 0.0  # one zero feature does not mask the timestep
    layer = Masking()
    out = layer(x)
    expected_mask = np.array([[True, False, True, True], [True, True, False, False]])
    np.testing.assert_array_equal(out._keras_mask.numpy(), expected_mask)
    np.testing.assert_array_equal(out.numpy(), x * expected_mask[..., None])
    np.testing.assert_array_equal(layer.compute_mask(x).numpy(), expected_mask)


def test_masking_custom_value_gradient_and_config():
    x = R.normal(size=(2, 3, 2))
    x[0, 2] = -1.0
    layer = Masking(mask_value=-1.0, dtype="float64")
    out = layer(x)
    assert out.numpy()[0, 2].tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(out._keras_mask.numpy(), [[True, True, False], [True] * 3])
    # The gradient is the upstream one on kept timesteps and 0 on masked ones (a finite
    # difference would unmask the padded row, so check the VJP directly).
    t = Tensor(x, requires_grad=True)
    upstream = R.normal(size=x.shape)
    layer(t).backward(upstream)
    np.testing.assert_allclose(t.grad, upstream * out._keras_mask.numpy()[..., None])
    gradcheck(lambda t: Masking(mask_value=-1.0, dtype="float64")(t), x[1:])
    config = layer.get_config()
    assert Masking.from_config(config).get_config() == config and config["mask_value"] == -1.0
    with pytest.raises(ValueError, match="feature axis"):
        Masking()(np.ones(3, "float32"))
