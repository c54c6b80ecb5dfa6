"""Whole-model files: exact round trips for every layer and optimizer, continued training,
weights files, JSON, custom objects by registration, and atomic writes."""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np
import pytest

import dendrite as tf
from dendrite import optimizers, registry
from dendrite.layers.base import Layer
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.lambda_layer import Lambda
from dendrite.layers.registry import LAYER_REGISTRY
from dendrite.models.model import Model
from dendrite.saving import (
    ModelLoadError,
    WeightsLoadError,
    custom_object_scope,
    load_model,
    model_from_json,
    model_to_json,
    register_keras_serializable,
    save_model,
)

STEPS = 3


def _same_weights(a: Model, b: Model) -> bool:
    return len(a.weights) == len(b.weights) and all(
        x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a.get_weights(), b.get_weights())
    )


def _per_input(value, count: int, pairs: bool = False) -> list:
    """The layer-contract ``example`` convention: one entry, or one per input."""
    if value is None:
        return [None] * count
    single = isinstance(value, str) or (
        pairs and len(value) == 2 and not isinstance(value[0], (list, tuple))
    )
    return [value] * count if single else list(value)


def _example_arrays(example: dict, rng: np.random.Generator, batch: int = 6) -> list:
    shape = example["input_shape"]
    shapes = [tuple(s) for s in shape] if isinstance(shape, list) else [tuple(shape)]
    dtypes = _per_input(example.get("input_dtype"), len(shapes))
    ranges = _per_input(example.get("input_range"), len(shapes), pairs=True)
    arrays = []
    for shape, dtype, bounds in zip(shapes, dtypes, ranges):
        dtype = np.dtype(dtype or "float32")
        full = (batch, *shape[1:])
        if dtype.kind in "iu":
            arrays.append(rng.integers(bounds[0], bounds[1], size=full).astype(dtype))
        elif bounds is not None:
            arrays.append(rng.uniform(bounds[0], bounds[1], size=full).astype(dtype))
        else:
            arrays.append(rng.standard_normal(full).astype(dtype))
    return arrays


def _layer_cases() -> list:
    cases = []
    for name, cls in sorted(LAYER_REGISTRY.items()):
        if issubclass(cls, (Model, InputLayer)) or not getattr(cls, "example", None):
            continue
        cases.append(pytest.param(cls, "functional", id=f"{name}-functional"))
        example = cls.example
        # StackedRNNCells returns (output, states): a cell for RNN, not a Sequential layer
        if (
            not isinstance(example["input_shape"], list)
            and not example.get("call_kwargs")
            and name != "StackedRNNCells"
        ):
            cases.append(pytest.param(cls, "sequential", id=f"{name}-sequential"))
    return cases


def _model_for(cls: type, kind: str) -> tuple[Model, Any]:
    example = cls.example
    kwargs = example["kwargs"]
    layer = cls(**(kwargs() if callable(kwargs) else kwargs))
    arrays = _example_arrays(example, np.random.default_rng(0))
    inputs = [Input(shape=a.shape[1:], dtype=a.dtype.name) for a in arrays]
    multi = isinstance(example["input_shape"], list)
    if kind == "sequential":
        model = tf.Sequential([inputs[0], layer, tf.layers.Dense(2, name="head")])
        return model, arrays[0]
    call_kwargs = dict(example.get("call_kwargs", {}))
    if not multi:
        outputs = layer(inputs[0], **call_kwargs)
    elif example.get("positional"):
        outputs = layer(*inputs, **call_kwargs)
    else:
        outputs = layer(list(inputs), **call_kwargs)
    if isinstance(outputs, (list, tuple)):
        outputs = [tf.layers.Dense(2)(o) for o in outputs]
    else:
        outputs = tf.layers.Dense(2, name="head")(outputs)
    model = Model(inputs if multi else inputs[0], outputs)
    return model, arrays if multi else arrays[0]


def _train(model: Model, x: Any, seed: int, steps: int = STEPS) -> None:
    predictions = model.predict(x, verbose=0)
    if isinstance(predictions, list):
        y: Any = [np.zeros(p.shape, "float32") for p in predictions]
    else:
        y = np.zeros(predictions.shape, "float32")
    tf.utils.set_random_seed(seed)
    model.fit(x, y, batch_size=2, epochs=1, steps_per_epoch=steps, verbose=0)


@pytest.mark.parametrize("cls, kind", _layer_cases())
def test_every_layer_round_trips_and_continues_training(cls, kind, tmp_path):
    tf.utils.set_random_seed(7)
    model, x = _model_for(cls, kind)
    model.compile(optimizer="adam", loss="mse")
    _train(model, x, seed=1)
    path = tmp_path / f"{cls.__name__}.dendrite"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert _same_weights(model, loaded)
    _assert_equal_outputs(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert int(loaded.optimizer.iterations.data) == int(model.optimizer.iterations.data) == STEPS
    _train(model, x, seed=3)
    _train(loaded, x, seed=3)
    assert _same_weights(model, loaded), "training after load differs from uninterrupted"


def _assert_equal_outputs(a: Any, b: Any) -> None:
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def _optimizer_cases() -> list:
    cases = [
        pytest.param(cls(), id=name.lower())
        for name, cls in sorted(registry.items("optimizer").items())
    ]
    schedule = optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)
    cases += [
        pytest.param(optimizers.Adam(amsgrad=True, clipnorm=1.0), id="adam-amsgrad"),
        pytest.param(optimizers.SGD(0.05, momentum=0.9, nesterov=True), id="sgd-nesterov"),
        pytest.param(optimizers.RMSprop(momentum=0.5, centered=True), id="rmsprop-centered"),
        pytest.param(optimizers.AdamW(use_ema=True, ema_overwrite_frequency=2), id="adamw-ema"),
        pytest.param(optimizers.SGD(learning_rate=schedule), id="sgd-schedule"),
    ]
    return cases


@pytest.mark.parametrize("optimizer", _optimizer_cases())
def test_every_optimizer_state_round_trips(optimizer, tmp_path):
    tf.utils.set_random_seed(11)
    model = tf.Sequential(
        [
            tf.layers.Dense(6, activation="tanh", input_shape=(4,)),
            tf.layers.Dropout(0.25),
            tf.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 4)).astype("float32")
    y = rng.integers(0, 3, 40)
    tf.utils.set_random_seed(1)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded.optimizer) is type(optimizer)
    assert int(loaded.optimizer.iterations.data) == 10
    # MultiOptimizer has no learning rate of its own (its inner optimizers have theirs)
    assert getattr(loaded.optimizer, "learning_rate", None) == getattr(
        model.optimizer, "learning_rate", None
    )
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.data, b.data)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    tf.utils.set_random_seed(5)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    tf.utils.set_random_seed(5)
    loaded.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert _same_weights(model, loaded)
    assert int(loaded.optimizer.iterations.data) == 20


def test_file_layout_is_a_zip_with_config_and_safetensors(tmp_path):
    from safetensors.numpy import load

    model = tf.Sequential([tf.layers.Dense(3, input_shape=(2,))])
    model.compile("sgd", "mse")
    model.save(tmp_path / "m.dendrite")
    with zipfile.ZipFile(tmp_path / "m.dendrite") as archive:
        names = archive.namelist()
        config = archive.read("config.json").decode()
        weights = load(archive.read("model.weights.safetensors"))
    assert names == ["config.json", "model.weights.safetensors", "optimizer.safetensors"]
    assert '"format_version": 1' in config and '"dendrite_version"' in config
    assert [weights[k].shape for k in sorted(weights)] == [(2, 3), (3,)]


def test_save_rejects_unknown_extension(tmp_path):
    model = tf.Sequential([tf.layers.Dense(3, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"\.dendrite"):
        model.save(tmp_path / "m.h5")


def test_uncompiled_and_unbuilt_models_round_trip(tmp_path):
    model = tf.Sequential([tf.layers.Dense(3), tf.layers.Dense(1)])
    save_model(model, tmp_path / "unbuilt.dendrite")
    assert not load_model(tmp_path / "unbuilt.dendrite").built
    x = np.ones((2, 5), "float32")
    model(x)
    model.save(tmp_path / "built.dendrite")
    loaded = load_model(tmp_path / "built.dendrite")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert not loaded._compiled


def test_compile_false_skips_compile_settings(tmp_path):
    model = tf.Sequential([tf.layers.Dense(3, input_shape=(2,))])
    model.compile("adam", "mse")
    model.save(tmp_path / "m.dendrite")
    assert not load_model(tmp_path / "m.dendrite", compile=False)._compiled


def test_to_json_and_model_from_json():
    model = tf.Sequential([tf.layers.Dense(4, activation="relu", input_shape=(3,))])
    text = model_to_json(model)
    fresh = model_from_json(text)
    assert fresh.get_config()["layers"][0]["config"]["units"] == 4
    assert [w.shape for w in fresh.weights] == [w.shape for w in model.weights]
    with pytest.raises(ModelLoadError, match="Unknown class 'Evil'"):
        model_from_json(text.replace('"Dense"', '"Evil"'))


# --- save_weights / load_weights ------------------------------------------------------------
def test_weights_round_trip_and_mismatch_errors(tmp_path):
    model = tf.Sequential([tf.layers.Dense(4, input_shape=(3,)), tf.layers.Dense(2)])
    path = tmp_path / "m.weights.safetensors"
    model.save_weights(path)
    same = tf.Sequential([tf.layers.Dense(4, input_shape=(3,)), tf.layers.Dense(2)])
    same.load_weights(path)
    assert _same_weights(model, same)

    wider = tf.Sequential([tf.layers.Dense(5, input_shape=(3,), name="wide"), tf.layers.Dense(2)])
    before = wider.get_weights()
    with pytest.raises(
        WeightsLoadError, match=r"layer 'wide' weight 'kernel' expects shape \(3, 5\).*\(3, 4\)"
    ):
        wider.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, wider.get_weights()))

    deeper = tf.Sequential(
        [tf.layers.Dense(4, input_shape=(3,)), tf.layers.Dense(2), tf.layers.Dense(1)]
    )
    with pytest.raises(WeightsLoadError, match="holds 4 weights but model .* has 6"):
        deeper.load_weights(path)
    with pytest.warns(UserWarning, match="Skipping"):
        wider.load_weights(path, skip_mismatch=True)
    np.testing.assert_array_equal(wider.layers[1].bias.data, model.layers[1].bias.data)


def test_load_weights_from_a_model_file(tmp_path):
    model = tf.Sequential([tf.layers.Dense(4, input_shape=(3,))])
    model.save(tmp_path / "m.dendrite")
    other = tf.Sequential([tf.layers.Dense(4, input_shape=(3,))])
    other.load_weights(tmp_path / "m.dendrite")
    assert _same_weights(model, other)


def test_weights_file_names_and_requires_built_model(tmp_path):
    model = tf.Sequential([tf.layers.Dense(4)])
    with pytest.raises(ValueError, match=r"\.weights\.safetensors"):
        model.save_weights(tmp_path / "w.npz")
    with pytest.raises(WeightsLoadError, match="build it first"):
        model.load_weights(tmp_path / "missing.weights.safetensors")


# --- custom objects -------------------------------------------------------------------------
@register_keras_serializable(package="tests_saving")
def scaled_tanh(x):
    return tf.ops.tanh(x) * 2.0


@register_keras_serializable(package="tests_saving")
def doubled(x, factor=2.0):
    return x * factor


@register_keras_serializable(package="tests_saving")
def half_squared_error(y_true, y_pred):
    return tf.ops.mean(tf.ops.square(y_pred - y_true), axis=-1) * 0.5


@register_keras_serializable(package="tests_saving")
class Scale(Layer):
    """A custom layer with one weight."""

    def __init__(self, init=1.5, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.scale = self.add_weight((input_shape[-1],), initializer="ones", name="scale")
        self.scale.data[...] = self.init

    def call(self, inputs):
        return inputs * self.scale

    def get_config(self):
        return {**super().get_config(), "init": self.init}


def test_registered_layer_activation_loss_and_lambda_round_trip(tmp_path):
    tf.utils.set_random_seed(0)
    model = tf.Sequential(
        [
            tf.layers.Dense(4, activation=scaled_tanh, input_shape=(3,)),
            Scale(0.5),
            Lambda(doubled, arguments={"factor": 3.0}),
        ]
    )
    model.compile("sgd", loss=half_squared_error)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    model.fit(x, np.zeros((8, 4), "float32"), verbose=0)
    model.save(tmp_path / "custom.dendrite")
    config = zipfile.ZipFile(tmp_path / "custom.dendrite").read("config.json").decode()
    assert '"tests_saving>scaled_tanh"' in config and '"tests_saving>doubled"' in config
    assert '"tests_saving>half_squared_error"' in config
    loaded = load_model(tmp_path / "custom.dendrite")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[0].activation is scaled_tanh
    assert loaded.loss is half_squared_error


def test_unregistered_function_fails_with_how_to_register(tmp_path):
    def secret(x):
        return x

    model = tf.Sequential([tf.layers.Dense(2, activation=secret, input_shape=(3,))])
    model.save(tmp_path / "m.dendrite")
    with pytest.raises(ModelLoadError, match=r"register_keras_serializable.*custom_objects"):
        load_model(tmp_path / "m.dendrite")
    loaded = load_model(tmp_path / "m.dendrite", custom_objects={"secret": secret})
    assert loaded.layers[0].activation is secret
    with custom_object_scope({"secret": secret}):
        assert load_model(tmp_path / "m.dendrite").layers[0].activation is secret


def test_lambda_with_unregistered_function_cannot_be_saved(tmp_path):
    def shift(x):
        return x + 1.0

    model = tf.Sequential([Lambda(shift, input_shape=(2,))])
    with pytest.raises(ValueError, match="not registered.*register_keras_serializable"):
        model.save(tmp_path / "m.dendrite")
    with pytest.raises(ValueError, match="anonymous `lambda`"):
        tf.Sequential([Lambda(lambda x: x, input_shape=(2,))]).save(tmp_path / "n.dendrite")


def test_lambda_file_naming_unregistered_function_fails_to_load(tmp_path):
    model = tf.Sequential([Lambda(doubled, input_shape=(2,))])
    model.save(tmp_path / "m.dendrite")
    from dendrite.registry import custom_objects as registry

    saved = registry.GLOBAL_CUSTOM_OBJECTS.pop("tests_saving>doubled")
    try:
        with pytest.raises(ModelLoadError, match=r"'tests_saving>doubled'.*register"):
            load_model(tmp_path / "m.dendrite")
    finally:
        registry.GLOBAL_CUSTOM_OBJECTS["tests_saving>doubled"] = saved


def test_register_refuses_a_second_object_under_one_name():
    with pytest.raises(ValueError, match="already been registered"):
        register_keras_serializable(package="tests_saving", name="scaled_tanh")(lambda x: x)
    with pytest.raises(ValueError, match="get_config"):
        register_keras_serializable(package="tests_saving")(type("NoConfig", (), {}))


# --- atomic writes ----------------------------------------------------------------------------
def test_crash_mid_save_leaves_the_previous_file(tmp_path, monkeypatch):
    model = tf.Sequential([tf.layers.Dense(3, input_shape=(2,))])
    path = tmp_path / "m.dendrite"
    model.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash)
    with pytest.raises(KeyboardInterrupt):
        tf.Sequential([tf.layers.Dense(7, input_shape=(2,))]).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.dendrite"]
    assert load_model(path).layers[0].units == 3
