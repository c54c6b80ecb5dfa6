"""The functional API guide (keras.io/guides/functional_api/), as our own programs:
Input, layer calls on symbolic tensors, Model(inputs, outputs), summary, training,
saving, shared graphs of layers (encoder/autoencoder), models called like layers,
ensembling, several inputs and outputs, a toy ResNet, shared layers, node extraction,
custom layers with get_config, and mixing functional and subclassed code."""

from __future__ import annotations

import numpy as np
import pytest
from guide_helpers import assert_same_structure

import dendrite as keras
from dendrite import layers, ops

RNG = np.random.default_rng(0)


def build_mlp(k):
    inputs = k.Input(shape=(20,))
    x = k.layers.Dense(16, activation="relu")(inputs)
    x = k.layers.Dense(16, activation="relu")(x)
    outputs = k.layers.Dense(4)(x)
    return k.Model(inputs=inputs, outputs=outputs, name="small_mlp")


def build_autoencoder(k):
    encoder_input = k.Input(shape=(12, 12, 1), name="img")
    x = k.layers.Conv2D(4, 3, activation="relu")(encoder_input)
    x = k.layers.Conv2D(8, 3, activation="relu")(x)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Conv2D(4, 3, activation="relu")(x)
    encoder_output = k.layers.GlobalMaxPooling2D()(x)
    encoder = k.Model(encoder_input, encoder_output, name="encoder")

    x = k.layers.Reshape((2, 2, 1))(encoder_output)
    x = k.layers.Conv2DTranspose(4, 3, activation="relu")(x)
    x = k.layers.Conv2DTranspose(8, 3, activation="relu")(x)
    x = k.layers.UpSampling2D(2)(x)
    decoder_output = k.layers.Conv2DTranspose(1, 3, activation="relu", padding="same")(x)
    autoencoder = k.Model(encoder_input, decoder_output, name="autoencoder")
    return encoder, autoencoder


def build_nested_autoencoder(k):
    encoder_input = k.Input(shape=(12, 12, 1), name="original_img")
    x = k.layers.Conv2D(4, 3, activation="relu")(encoder_input)
    x = k.layers.MaxPooling2D(2)(x)
    encoder_output = k.layers.GlobalMaxPooling2D()(x)
    encoder = k.Model(encoder_input, encoder_output, name="encoder")

    decoder_input = k.Input(shape=(4,), name="encoded_img")
    x = k.layers.Reshape((2, 2, 1))(decoder_input)
    x = k.layers.Conv2DTranspose(4, 3, activation="relu")(x)
    x = k.layers.Conv2DTranspose(4, 3, activation="relu")(x)
    x = k.layers.UpSampling2D(2)(x)
    decoder_output = k.layers.Conv2DTranspose(1, 3, activation="relu", padding="same")(x)
    decoder = k.Model(decoder_input, decoder_output, name="decoder")

    autoencoder_input = k.Input(shape=(12, 12, 1), name="img")
    encoded = encoder(autoencoder_input)
    decoded = decoder(encoded)
    return k.Model(autoencoder_input, decoded, name="autoencoder")


def build_ensemble(k):
    def get_model():
        inputs = k.Input(shape=(8,))
        outputs = k.layers.Dense(1)(inputs)
        return k.Model(inputs, outputs)

    members = [get_model() for _ in range(3)]
    inputs = k.Input(shape=(8,))
    outputs = k.layers.average([m(inputs) for m in members])
    return k.Model(inputs=inputs, outputs=outputs)


NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 6, 50, 3


def build_ticket_model(k, dict_outputs=False):
    title_input = k.Input(shape=(None,), name="title")
    body_input = k.Input(shape=(None,), name="body")
    tags_input = k.Input(shape=(NUM_TAGS,), name="tags")
    title_features = k.layers.Embedding(NUM_WORDS, 8)(title_input)
    body_features = k.layers.Embedding(NUM_WORDS, 8)(body_input)
    title_features = k.layers.LSTM(8)(title_features)
    body_features = k.layers.LSTM(4)(body_features)
    x = k.layers.concatenate([title_features, body_features, tags_input])
    priority_pred = k.layers.Dense(1, name="priority")(x)
    department_pred = k.layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    if dict_outputs:
        outputs = {"priority": priority_pred, "department": department_pred}
    else:
        outputs = [priority_pred, department_pred]
    return k.Model(inputs=[title_input, body_input, tags_input], outputs=outputs)


def build_toy_resnet(k):
    inputs = k.Input(shape=(16, 16, 3), name="img")
    x = k.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = k.layers.Conv2D(8, 3, activation="relu")(x)
    block_1_output = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same")(block_1_output)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    block_2_output = k.layers.add([x, block_1_output])
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same")(block_2_output)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    block_3_output = k.layers.add([x, block_2_output])
    x = k.layers.Conv2D(8, 3, activation="relu")(block_3_output)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(16, activation="relu")(x)
    x = k.layers.Dropout(0.5)(x)
    outputs = k.layers.Dense(5)(x)
    return k.Model(inputs, outputs, name="toy_resnet")


def build_shared_embedding(k):
    shared_embedding = k.layers.Embedding(30, 4)
    text_input_a = k.Input(shape=(None,), dtype="int32")
    text_input_b = k.Input(shape=(None,), dtype="int32")
    encoded_a = shared_embedding(text_input_a)
    encoded_b = shared_embedding(text_input_b)
    return k.Model([text_input_a, text_input_b], [encoded_a, encoded_b])


def build_feature_extractor(k):
    base = k.Sequential(
        [
            k.Input(shape=(10, 10, 3)),
            k.layers.Conv2D(4, 3, activation="relu", name="conv_a"),
            k.layers.Conv2D(6, 3, activation="relu", name="conv_b"),
            k.layers.Flatten(name="flat"),
            k.layers.Dense(3, name="head"),
        ]
    )
    features_list = [layer.output for layer in base.layers]
    return k.Model(inputs=base.inputs, outputs=features_list)


# --- Input and the first model ------------------------------------------------------


def test_input_has_shape_and_dtype():
    inputs = keras.Input(shape=(20,))
    assert tuple(inputs.shape) == (None, 20)
    assert str(inputs.dtype).endswith("float32")
    img_inputs = keras.Input(shape=(8, 8, 3))
    assert tuple(img_inputs.shape) == (None, 8, 8, 3)


def test_model_from_inputs_and_outputs():
    model = build_mlp(keras)
    assert model.name == "small_mlp"
    assert model.count_params() == (20 * 16 + 16) + (16 * 16 + 16) + (16 * 4 + 4)
    assert [tuple(t.shape) for t in model.outputs] == [(None, 4)]
    assert len(model.layers) == 4  # the InputLayer counts in a functional model
    assert model.predict(np.zeros((3, 20), "float32"), verbose=0).shape == (3, 4)


def test_summary_names_layers_and_total():
    model = build_mlp(keras)
    lines = []
    model.summary(print_fn=lambda line, *a, **kw: lines.append(line))
    text = "\n".join(lines)
    assert "small_mlp" in text
    assert "Total params" in text
    assert f"{model.count_params():,}" in text


def test_plot_model_exists():
    assert callable(keras.utils.plot_model)


def test_train_evaluate_predict():
    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(96, 20)).astype("float32")
    y = (x[:, :4].argmax(axis=1)).astype("int64")
    model = build_mlp(keras)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(learning_rate=3e-3),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=16, epochs=4, validation_split=0.25, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    scores = model.evaluate(x, y, verbose=0)
    assert len(scores) == 2 and 0.0 <= scores[1] <= 1.0


def test_save_and_load_keras_file(tmp_path):
    model = build_mlp(keras)
    x = RNG.normal(size=(5, 20)).astype("float32")
    expected = model.predict(x, verbose=0)
    path = tmp_path / "my_model.keras"
    model.save(path)
    del model
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, rtol=1e-6)


# --- One graph of layers, several models ----------------------------------------------


def test_encoder_and_autoencoder_share_layers():
    encoder, autoencoder = build_autoencoder(keras)
    assert tuple(encoder.output.shape) == (None, 4)
    assert tuple(autoencoder.output.shape) == (None, 12, 12, 1)
    enc_weights = {id(w) for w in encoder.weights}
    assert enc_weights <= {id(w) for w in autoencoder.weights}


def test_models_are_callable_like_layers():
    autoencoder = build_nested_autoencoder(keras)
    assert [layer.name for layer in autoencoder.layers[1:]] == ["encoder", "decoder"]
    out = autoencoder(np.ones((2, 12, 12, 1), "float32"))
    assert tuple(out.shape) == (2, 12, 12, 1)


def test_ensemble_averages_member_models():
    model = build_ensemble(keras)
    assert model.count_params() == 3 * 9
    x = RNG.normal(size=(4, 8)).astype("float32")
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(members) == 3
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)


# --- Several inputs and outputs -------------------------------------------------------


def _ticket_data(n=32):
    title = RNG.integers(0, NUM_WORDS, size=(n, 5))
    body = RNG.integers(0, NUM_WORDS, size=(n, 7))
    tags = RNG.integers(0, 2, size=(n, NUM_TAGS)).astype("float32")
    priority = RNG.random(size=(n, 1)).astype("float32")
    department = RNG.integers(0, 2, size=(n, NUM_DEPARTMENTS)).astype("float32")
    return title, body, tags, priority, department


def test_multi_input_multi_output_loss_list():
    keras.utils.set_random_seed(1)
    model = build_ticket_model(keras)
    assert [t.name for t in model.inputs] == ["title", "body", "tags"]
    title, body, tags, priority, department = _ticket_data()
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-2),
        loss=[
            keras.losses.BinaryCrossentropy(from_logits=True),
            keras.losses.CategoricalCrossentropy(from_logits=True),
        ],
        loss_weights=[1.0, 0.2],
    )
    history = model.fit(
        {"title": title, "body": body, "tags": tags},
        [priority, department],
        epochs=3,
        batch_size=8,
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    priority_pred, department_pred = model.predict([title, body, tags], verbose=0)
    assert priority_pred.shape == (32, 1) and department_pred.shape == (32, NUM_DEPARTMENTS)


def test_dict_outputs_are_flattened_in_sorted_key_order():
    model = build_ticket_model(keras, dict_outputs=True)
    assert [tuple(t.shape) for t in model.outputs] == [(None, NUM_DEPARTMENTS), (None, 1)]
    assert list(model.output_names) == ["department", "priority"]


def test_multi_input_multi_output_loss_dict():
    keras.utils.set_random_seed(2)
    model = build_ticket_model(keras, dict_outputs=True)
    title, body, tags, priority, department = _ticket_data()
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-2),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    history = model.fit(
        {"title": title, "body": body, "tags": tags},
        {"priority": priority, "department": department},
        epochs=3,
        batch_size=8,
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    preds = model.predict({"title": title, "body": body, "tags": tags}, verbose=0)
    assert preds["priority"].shape == (32, 1)
    assert preds["department"].shape == (32, NUM_DEPARTMENTS)


def test_toy_resnet_trains():
    keras.utils.set_random_seed(3)
    model = build_toy_resnet(keras)
    assert tuple(model.output.shape) == (None, 5)
    x = RNG.random(size=(24, 16, 16, 3)).astype("float32")
    y = keras.utils.to_categorical(RNG.integers(0, 5, size=24), 5)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    assert len(history.history["val_acc"]) == 2


def test_shared_layer_weights_used_by_both_inputs():
    model = build_shared_embedding(keras)
    assert len(model.weights) == 1
    a, b = model.predict([np.array([[1, 2]]), np.array([[1, 2]])], verbose=0)
    np.testing.assert_array_equal(a, b)


def test_extract_and_reuse_nodes():
    extractor = build_feature_extractor(keras)
    feats = extractor(np.ones((2, 10, 10, 3), "float32"))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 8, 4), (2, 6, 6, 6), (2, 216), (2, 3)]


# --- Custom layers --------------------------------------------------------------------


class CustomDense(layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_custom_layer_in_functional_model_and_from_config():
    inputs = keras.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = keras.Model(inputs, outputs)
    assert model.count_params() == 4 * 10 + 10
    config = model.get_config()
    new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert isinstance(new_model.layers[-1], CustomDense)
    assert new_model.layers[-1].units == 10
    assert tuple(new_model.output.shape) == (None, 10)


# --- Mixing styles --------------------------------------------------------------------

UNITS, TIMESTEPS, INPUT_DIM = 6, 4, 3


class CustomRNN(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = UNITS
        self.projection_1 = layers.Dense(units=UNITS, activation="tanh")
        self.projection_2 = layers.Dense(units=UNITS, activation="tanh")
        self.classifier = layers.Dense(1)

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            h = self.projection_1(inputs[:, t, :])
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        return self.classifier(ops.stack(outputs, axis=1))


def test_subclassed_layer_in_functional_model_with_batch_shape():
    inputs = keras.Input(batch_shape=(1, TIMESTEPS, INPUT_DIM))
    x = layers.Conv1D(5, 3, padding="same")(inputs)
    outputs = CustomRNN()(x)
    model = keras.Model(inputs, outputs)
    assert tuple(model.output.shape) == (1, TIMESTEPS, 1)
    out = model(np.zeros((1, TIMESTEPS, INPUT_DIM), "float32"))
    assert tuple(out.shape) == (1, TIMESTEPS, 1)


def test_functional_model_inside_subclassed_model():
    inputs = keras.Input(shape=(None, UNITS))
    x = layers.GlobalAveragePooling1D()(inputs)
    classifier = keras.Model(inputs, layers.Dense(1)(x))

    class Wrapper(keras.Model):
        def __init__(self):
            super().__init__()
            self.projection = layers.Dense(UNITS, activation="tanh")
            self.classifier = classifier

        def call(self, inputs):
            return self.classifier(self.projection(inputs))

    model = Wrapper()
    out = model(np.zeros((2, TIMESTEPS, INPUT_DIM), "float32"))
    assert tuple(out.shape) == (2, 1)
    assert model.count_params() == (INPUT_DIM * UNITS + UNITS) + (UNITS + 1)


# --- The same definitions in real Keras -----------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(build_mlp, id="mlp"),
        pytest.param(lambda k: build_autoencoder(k)[1], id="autoencoder"),
        pytest.param(build_nested_autoencoder, id="nested_autoencoder"),
        pytest.param(build_ensemble, id="ensemble"),
        pytest.param(build_ticket_model, id="ticket"),
        pytest.param(
            lambda k: build_ticket_model(k, dict_outputs=True),
            id="ticket_dict_outputs",
        ),
        pytest.param(build_toy_resnet, id="toy_resnet"),
        pytest.param(build_shared_embedding, id="shared_embedding"),
        pytest.param(build_feature_extractor, id="feature_extractor"),
    ],
)
def test_same_structure_as_keras(build):
    assert_same_structure(build)
