"""Keras 3 names programs import (issue #11): ``keras.config``, the serialization functions
under ``keras.saving`` / ``keras.utils`` / each namespace, and the top-level names."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import dendrite as keras
from dendrite import _settings


@pytest.fixture(autouse=True)
def restore_settings():
    saved = (_settings.floatx(), _settings.epsilon(), _settings.image_data_format())
    yield
    keras.config.set_floatx(saved[0])
    keras.config.set_epsilon(saved[1])
    keras.config.set_image_data_format(saved[2])
    keras.config.enable_interactive_logging()
    keras.config.enable_traceback_filtering()


# --- keras.config ---------------------------------------------------------------------------
def test_config_floatx_and_epsilon_are_the_backend_settings():
    assert keras.config.floatx() == "float32" and keras.config.epsilon() == 1e-7
    keras.config.set_floatx("float64")
    assert keras.backend.floatx() == "float64"
    assert keras.layers.Dense(2)(np.ones((1, 3))).dtype == "float64"
    keras.config.set_epsilon(1e-4)
    assert keras.backend.epsilon() == 1e-4
    with pytest.raises(ValueError, match="floatx"):
        keras.config.set_floatx("int8")


def test_image_data_format_is_the_default_of_layers_created_afterwards():
    assert keras.config.image_data_format() == "channels_last"
    keras.config.set_image_data_format("channels_first")
    assert keras.backend.image_data_format() == "channels_first"
    conv = keras.layers.Conv2D(4, 3)
    pool = keras.layers.MaxPooling2D()
    flat = keras.layers.Flatten()
    assert conv.data_format == pool.data_format == flat.data_format == "channels_first"
    assert keras.layers.GlobalAveragePooling2D().data_format == "channels_first"
    y = conv(np.ones((2, 3, 8, 8), "float32"))  # (batch, channels, rows, cols)
    assert y.shape == (2, 4, 6, 6)
    keras.config.set_image_data_format("channels_last")
    assert keras.layers.Conv2D(4, 3).data_format == "channels_last"
    assert conv.data_format == "channels_first"  # a layer keeps what it was built with
    with pytest.raises(ValueError, match="channels_first.*Received: data_format='nhwc'"):
        keras.config.set_image_data_format("nhwc")


def test_backend_dtype_policy_and_flags():
    assert keras.config.backend() == "numpy"
    policy = keras.config.dtype_policy()
    assert policy.name == policy.compute_dtype == policy.variable_dtype == "float32"
    keras.config.set_dtype_policy("float64")
    assert keras.config.floatx() == "float64" and keras.config.dtype_policy().name == "float64"
    with pytest.raises(ValueError, match="no mixed precision.*mixed_float16"):
        keras.config.set_dtype_policy("mixed_float16")
    keras.config.disable_traceback_filtering()
    assert not keras.config.is_traceback_filtering_enabled()
    keras.config.enable_traceback_filtering()
    assert keras.config.is_traceback_filtering_enabled()
    keras.config.disable_interactive_logging()
    assert not keras.config.is_interactive_logging_enabled()
    keras.config.enable_interactive_logging()
    assert keras.config.is_interactive_logging_enabled()


def test_mixed_precision_namespace_has_keras_names():
    """keras.mixed_precision: the global policy under Keras 2's and 3's names, float
    policies set, mixed ones refused by name, and LossScaleOptimizer."""
    mp = keras.mixed_precision
    assert mp.Policy is mp.DTypePolicy is keras.DTypePolicy
    assert mp.LossScaleOptimizer is keras.optimizers.LossScaleOptimizer
    try:
        mp.set_global_policy("float64")
        assert mp.global_policy().name == mp.dtype_policy().name == keras.config.floatx()
        assert keras.layers.Dense(2).dtype == "float64"
        mp.set_global_policy(mp.Policy("float32"))
        assert keras.config.floatx() == "float32"
        with pytest.raises(ValueError, match="no mixed precision.*mixed_bfloat16"):
            mp.set_global_policy("mixed_bfloat16")
    finally:
        keras.config.set_dtype_policy("float32")


def test_unsafe_deserialization_is_refused_with_a_warning_and_changes_nothing(tmp_path):
    with pytest.warns(UserWarning, match="never runs code from a file"):
        keras.config.enable_unsafe_deserialization()
    entry = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None}}
    with pytest.raises(ValueError, match="never runs code"):
        keras.saving.deserialize_keras_object(entry)


# --- serialization names --------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="compat")
class Scale(keras.layers.Layer):
    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="compat")
def doubled_mse(y_true, y_pred):
    return 2.0 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


def test_the_same_names_under_saving_and_utils():
    names = [
        "serialize_keras_object",
        "deserialize_keras_object",
        "get_registered_name",
        "get_registered_object",
        "custom_object_scope",
        "get_custom_objects",
        "register_keras_serializable",
    ]
    for name in names:
        assert getattr(keras.saving, name) is getattr(keras.utils, name), name
    assert keras.saving.get_registered_name(Scale) == "compat>Scale"
    assert keras.saving.get_registered_object("compat>Scale") is Scale
    assert keras.utils.get_custom_objects()["compat>doubled_mse"] is doubled_mse


def test_serialize_keras_object_writes_keras_3_dicts_and_reads_them_back():
    dense = keras.layers.Dense(3, activation="relu", kernel_regularizer="l2")
    entry = keras.saving.serialize_keras_object(dense)
    assert entry["module"] == "keras.layers" and entry["class_name"] == "Dense"
    assert entry["registered_name"] is None
    assert entry["config"]["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert entry["config"]["kernel_initializer"]["module"] == "keras.initializers"
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(entry)))
    assert type(clone) is keras.layers.Dense and clone.get_config() == dense.get_config()

    custom = keras.saving.serialize_keras_object(Scale(3.0))
    assert custom["registered_name"] == "compat>Scale" and custom["module"] == __name__
    assert keras.saving.deserialize_keras_object(custom).factor == 3.0

    fn = keras.saving.serialize_keras_object(doubled_mse)
    assert fn["class_name"] == "function" and fn["registered_name"] == "compat>doubled_mse"
    assert keras.saving.deserialize_keras_object(fn) is doubled_mse

    # Plain values, lists and dicts pass through; numpy values become JSON values.
    value = {"a": [1, 2.5, None], "b": np.float32(0.5), "c": np.arange(3)}
    assert keras.saving.serialize_keras_object(value) == {
        "a": [1, 2.5, None],
        "b": 0.5,
        "c": [0, 1, 2],
    }


def test_a_built_layer_keeps_its_build_config():
    layer = keras.layers.Dense(2)
    layer(np.ones((1, 5), "float32"))
    entry = keras.saving.serialize_keras_object(layer)
    assert entry["build_config"] == {"input_shape": [1, 5]}
    clone = keras.saving.deserialize_keras_object(entry)
    assert clone.built and clone.kernel.shape == (5, 2)


def test_custom_objects_resolve_only_by_name():
    class Local(keras.layers.Layer):
        pass

    entry = {"module": "os", "class_name": "Local", "config": {}, "registered_name": None}
    with pytest.raises(ValueError, match="Unknown .*'Local'.*register"):
        keras.saving.deserialize_keras_object(entry)
    with keras.saving.custom_object_scope({"Local": Local}):
        assert type(keras.saving.deserialize_keras_object(entry)) is Local
    assert type(keras.saving.deserialize_keras_object(entry, {"Local": Local})) is Local
    # A module path in the file is never imported.
    entry = {"module": "subprocess", "class_name": "Popen", "config": {"args": ["true"]}}
    with pytest.raises(ValueError, match="Unknown"):
        keras.saving.deserialize_keras_object(entry)


@pytest.mark.parametrize(
    "namespace, obj",
    [
        ("losses", lambda: keras.losses.Huber(delta=0.5)),
        ("metrics", lambda: keras.metrics.AUC(num_thresholds=50)),
        ("optimizers", lambda: keras.optimizers.Adam(learning_rate=0.01)),
        ("initializers", lambda: keras.initializers.HeNormal(seed=3)),
        ("regularizers", lambda: keras.regularizers.L1L2(l1=0.1, l2=0.2)),
        ("constraints", lambda: keras.constraints.MaxNorm(2.0)),
        ("layers", lambda: keras.layers.Conv2D(4, 3, strides=2)),
    ],
)
def test_each_namespace_serializes_and_deserializes(namespace, obj):
    module = getattr(keras, namespace)
    original = obj()
    entry = module.serialize(original)
    assert entry["class_name"] == type(original).__name__
    assert entry["module"] == f"keras.{namespace}"
    clone = module.deserialize(json.loads(json.dumps(entry)))
    assert type(clone) is type(original) and clone.get_config() == original.get_config()
    if hasattr(module, "get"):
        assert type(module.get(entry)) is type(original)


def test_function_forms_of_losses_metrics_and_activations():
    entry = keras.losses.serialize(keras.losses.mean_squared_error)
    assert entry["class_name"] == "function" and entry["config"] == "mean_squared_error"
    assert keras.losses.deserialize(entry) is keras.losses.mean_squared_error
    assert keras.losses.get("mse") is keras.losses.mean_squared_error
    assert keras.activations.serialize(keras.activations.relu) == "relu"
    assert keras.activations.deserialize("relu") is keras.activations.relu
    assert (
        keras.activations.deserialize(
            {"module": "keras.activations", "class_name": "function", "config": "tanh"}
        )
        is keras.activations.tanh
    )
    # Keras 3 writes a loss function with module "builtins" and registered_name "function".
    keras_entry = {
        "module": "builtins",
        "class_name": "function",
        "config": "mean_squared_error",
        "registered_name": "function",
    }
    assert keras.losses.deserialize(keras_entry) is keras.losses.mean_squared_error
    with pytest.raises(ValueError, match="Unknown"):
        keras.losses.deserialize({"class_name": "function", "config": "no_such_loss"})
    with pytest.raises(ValueError, match="lambda"):
        keras.saving.serialize_keras_object(lambda x: x)


def test_clone_model_and_from_config_find_registered_classes():
    x = keras.Input((3,))
    model = keras.Model(x, Scale(4.0)(keras.layers.Dense(2)(x)))
    clone = keras.models.clone_model(model)
    assert isinstance(clone.layers[-1], Scale) and clone.layers[-1].factor == 4.0
    rebuilt = keras.Model.from_config(model.get_config())
    assert isinstance(rebuilt.layers[-1], Scale)
    seq = keras.Sequential([keras.Input((3,)), Scale(5.0)])
    assert keras.models.clone_model(seq).layers[-1].factor == 5.0
    assert keras.Sequential.from_config(seq.get_config()).layers[-1].factor == 5.0


# --- top-level names ------------------------------------------------------------------------
def test_top_level_names():
    assert keras.Layer is keras.layers.Layer
    assert keras.Model is keras.models.Model and keras.Sequential is keras.models.Sequential
    assert keras.Input is keras.layers.Input and keras.Variable is keras.Variable
    assert isinstance(keras.Input((2,)), keras.KerasTensor)
    assert keras.version() == keras.__version__
    assert keras.__keras_version__.startswith("3.")
    assert keras.keras.random is keras.random and keras.keras.config is keras.config
    import dendrite.keras.config  # noqa: F401 (importable as a submodule, as in Keras)
    import dendrite.keras.random  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = keras.Variable(np.ones(3, "float32"))
    assert keras.ops.sum(v).data == 3.0
