"""The one registry (``dendrite.registry``): every kind complete, every name round-trips.

- completeness: for each kind, every public class its modules export (a subclass of the
  kind's base) is registered; only abstract bases are not, each listed with its reason;
- round trips: every registered name gives its object through ``registry.get`` and the
  kind's own getter, and every class with a config comes back equal through
  ``serialize``/``get`` (or ``deserialize``);
- the lookup order (``custom_objects``, scope, user registrations, built-ins), the errors,
  the names that worked before the registry, and Keras's ``snake_case``.

Process-wide tables are swapped for copies (``monkeypatch``) wherever a test registers
something, so no other test ever sees it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np
import pytest

import dendrite as dd
import dendrite.ops
from dendrite import losses, metrics, optimizers, registry
from dendrite.core import Function
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.registry import LAYER_REGISTRY, get_layer_class
from dendrite.models import Model
from dendrite.optimizers import schedules
from dendrite.registry import builtins, custom_objects
from dendrite.registry.naming import snake_case
from dendrite.saving import custom_object_scope, register_keras_serializable
from dendrite.training import callbacks

# kind -> (the modules that export it, the kind's base class)
KINDS: dict[str, tuple[tuple[Any, ...], type]] = {
    "layer": ((dd.layers, dd.models), Layer),
    "loss": ((losses,), losses.Loss),
    "metric": ((metrics,), metrics.Metric),
    "optimizer": ((optimizers,), optimizers.Optimizer),
    "schedule": ((schedules,), schedules.LearningRateSchedule),
    "initializer": ((initializers,), initializers.Initializer),
    "regularizer": ((regularizers,), regularizers.Regularizer),
    "constraint": ((constraints,), constraints.Constraint),
    "callback": ((callbacks,), callbacks.Callback),
}
# Public classes that are not registered, and why. Nothing else may be listed here.
NOT_REGISTERED = {
    Layer: "the abstract base: subclass it",
    Model: "the base of subclassed models (a saved functional model is a Functional)",
    losses.Loss: "the abstract base: subclass it",
    metrics.Metric: "the abstract base: subclass it",
    metrics.MeanMetricWrapper: "needs a function; compile settings save the function's name",
    optimizers.Optimizer: "the abstract base: subclass it",
    schedules.LearningRateSchedule: "the abstract base: subclass it",
    initializers.Initializer: "the abstract base: subclass it",
    regularizers.Regularizer: "the abstract base: subclass it",
}
# Constructor arguments for the registered schedules (they have no defaults).
SCHEDULE_ARGS: dict[str, dict[str, Any]] = {
    "ExponentialDecay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
    "InverseTimeDecay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
    "PiecewiseConstantDecay": {"boundaries": [5, 10], "values": [0.1, 0.05, 0.01]},
    "PolynomialDecay": {"initial_learning_rate": 0.1, "decay_steps": 10},
    "CosineDecay": {"initial_learning_rate": 0.1, "decay_steps": 10},
    "CosineDecayRestarts": {"initial_learning_rate": 0.1, "first_decay_steps": 10},
}


def _exported_classes(kind: str) -> dict[str, type]:
    """The public classes the kind's modules export that subclass its base."""
    modules, base = KINDS[kind]
    found = {}
    for module in modules:
        public = getattr(module, "__all__", None) or [n for n in vars(module) if n[:1] != "_"]
        for name in public:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, base):
                found[value.__qualname__] = value
    return found


def _registered(kind: str) -> set[type]:
    return set(registry.items(kind).values())


# --- completeness ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_exported_class_is_registered(kind: str) -> None:
    registered = _registered(kind)
    missing = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _exported_classes(kind).values()
        if cls not in registered and cls not in NOT_REGISTERED
    ]
    assert not missing, (
        f"exported {kind} classes missing from the registry: {missing}. Decorate each with "
        f"@dendrite.registry.register({kind!r}) where it is defined."
    )


def test_not_registered_lists_only_unregistered_exports() -> None:
    exported = {cls for kind in KINDS for cls in _exported_classes(kind).values()}
    registered = {obj for kind in registry.KINDS for obj in registry.items(kind).values()}
    for cls, reason in NOT_REGISTERED.items():
        assert reason and cls in exported, f"{cls.__name__} is not exported"
        assert cls not in registered, f"{cls.__name__} is registered: remove it from the list"


def test_every_public_op_is_registered() -> None:
    for info in pkgutil.walk_packages(dendrite.ops.__path__, "dendrite.ops."):
        importlib.import_module(info.name)
    registered = _registered("op")
    abstract = {"Recurrence"}  # the base of the three fused recurrences
    missing = []
    for module_name in [m for m in list(importlib.sys.modules) if m.startswith("dendrite.ops")]:
        module = importlib.sys.modules[module_name]
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Function)
                and value.__module__ == module_name
                and not name.startswith("_")
                and name not in abstract
                and value not in registered
            ):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"Function classes not registered as ops: {missing}"


def test_every_loss_function_is_registered() -> None:
    for name in losses.__all__:
        value = getattr(losses, name)
        if inspect.isfunction(value) and list(inspect.signature(value).parameters)[:2] == [
            "y_true",
            "y_pred",
        ]:
            assert registry.name_of("loss", value) is not None, f"losses.{name}"


def test_every_activation_function_is_registered() -> None:
    for name, value in vars(activations).items():
        if (
            inspect.isfunction(value)
            and name not in ("get", "serialize", "deserialize")
            and name[0] != "_"
        ):
            assert registry.name_of("activation", value) is not None, f"activations.{name}"


def test_every_schedule_has_constructor_arguments_here() -> None:
    assert set(registry.items("schedule")) == set(SCHEDULE_ARGS)


# --- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", registry.KINDS)
def test_every_name_resolves_to_its_object(kind: str) -> None:
    canonical = registry.items(kind)
    assert canonical, f"nothing registered as {kind}"
    by_name = registry.table(kind, aliases=True)
    assert set(canonical) <= set(by_name) and sorted(by_name) == registry.names(kind)
    for name, obj in by_name.items():
        assert registry.get(kind, name) is obj
    for name, obj in canonical.items():
        assert registry.name_of(kind, obj) == name


def _round_trip_cases() -> list:
    cases = []
    simple = {
        "loss": (losses.serialize, losses.get),
        "metric": (lambda m: {"class_name": type(m).__name__, "config": m.get_config()}, None),
        "optimizer": (optimizers.serialize, optimizers.deserialize),
        "initializer": (initializers.serialize, initializers.get),
        "regularizer": (regularizers.serialize, regularizers.get),
        "constraint": (constraints.serialize, constraints.get),
        "schedule": (schedules.serialize, schedules.deserialize),
    }
    for kind in simple:
        for name, obj in sorted(registry.items(kind).items()):
            if isinstance(obj, type) and obj is not losses.LossFunctionWrapper:
                cases.append(pytest.param(kind, name, id=f"{kind}-{name}"))
    return cases


# The metrics whose Keras signatures have required arguments.
METRIC_ARGS = {
    "IoU": {"num_classes": 3, "target_class_ids": [0, 2]},
    "MeanIoU": {"num_classes": 3},
    "OneHotIoU": {"num_classes": 3, "target_class_ids": [1]},
    "OneHotMeanIoU": {"num_classes": 3},
    "PrecisionAtRecall": {"recall": 0.5},
    "RecallAtPrecision": {"precision": 0.5},
    "SensitivityAtSpecificity": {"specificity": 0.5},
    "SpecificityAtSensitivity": {"sensitivity": 0.5},
}


def _make(kind: str, cls: type) -> Any:
    if kind == "metric":
        return cls(**METRIC_ARGS.get(cls.__name__, {}))
    return cls(**SCHEDULE_ARGS[cls.__name__]) if kind == "schedule" else cls()


@pytest.mark.parametrize("kind,name", _round_trip_cases())
def test_config_round_trips_by_name(kind: str, name: str) -> None:
    cls = registry.get(kind, name)
    obj = _make(kind, cls)
    config = obj.get_config()
    entry = {"class_name": type(obj).__name__, "config": config}
    if kind in ("optimizer", "schedule"):
        clone = (optimizers if kind == "optimizer" else schedules).deserialize(entry)
    elif kind == "metric":
        clone = metrics.get(entry)
    elif kind == "loss":
        clone = losses.deserialize(losses.serialize(obj))
    else:
        clone = {
            "initializer": initializers,
            "regularizer": regularizers,
            "constraint": constraints,
        }[kind].get(entry)
    assert type(clone) is cls and clone.get_config() == config


@pytest.mark.parametrize("name", sorted(registry.items("layer")))
def test_every_layer_is_found_by_its_class_name(name: str) -> None:
    assert get_layer_class(name) is LAYER_REGISTRY[name] is registry.get("layer", name)


def test_loss_functions_and_activations_serialize_to_their_canonical_names() -> None:
    """Keras 3: a loss function serializes to a "function" dict naming it, an activation
    to its bare name; both come back as the same function."""
    for name, fn in registry.items("loss").items():
        if not isinstance(fn, type):
            entry = losses.serialize(fn)
            assert entry["class_name"] == "function" and entry["config"] == name
            assert losses.deserialize(entry) is fn and losses.get(entry) is fn
            assert losses.get(name) is fn
    for name, fn in registry.items("activation").items():
        assert activations.serialize(fn) == name and activations.get(name) is fn
        assert activations.deserialize(name) is fn


# --- registering ----------------------------------------------------------------------------
@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made in the test go to copies of the tables, dropped afterwards."""
    for table in ("_canonical", "_by_name", "_names_of"):
        copy = {kind: dict(entries) for kind, entries in getattr(builtins, table).items()}
        monkeypatch.setattr(builtins, table, copy)
    monkeypatch.setattr(custom_objects, "GLOBAL_CUSTOM_OBJECTS", {})
    monkeypatch.setattr(custom_objects, "GLOBAL_CUSTOM_NAMES", {})


def test_two_objects_under_one_name_raise(scratch_registry: None) -> None:
    @registry.register("callback", name="_registry_probe")
    class First(callbacks.Callback):
        pass

    class Second(callbacks.Callback):
        pass

    with pytest.raises(ValueError, match=r"'_registry_probe'.*already belongs to.*First"):
        registry.register("callback", name="_registry_probe")(Second)
    registry.register("callback", name="_registry_probe")(First)  # the same object again
    with pytest.raises(ValueError, match="already belongs"):
        registry.register("loss", aliases=("mse",))(lambda y_true, y_pred: y_pred)
    with pytest.raises(ValueError, match="already belongs"):
        registry.register("optimizer", name="ADAM2", aliases=("adam",))(Second)


def test_a_class_gets_the_automatic_alias_of_its_kind(scratch_registry: None) -> None:
    @registry.register("metric")
    class RunningPeak(metrics.Mean):
        pass

    @registry.register("optimizer")
    class SGDW(optimizers.SGD):
        pass

    assert registry.get("metric", "running_peak") is RunningPeak
    assert registry.get("optimizer", "sgdw") is registry.get("optimizer", "SgDw") is SGDW
    assert SGDW().name == "SGD"  # SGD names itself, as in Keras
    assert isinstance(metrics.get("running_peak"), RunningPeak)


def test_unknown_kind_and_nameless_objects_raise() -> None:
    with pytest.raises(ValueError, match="Unknown registry kind 'lossfn'.*'loss'"):
        registry.get("lossfn", "mse")
    with pytest.raises(ValueError, match="give it a name"):
        registry.register("loss")(np.float64(1.0))


# --- lookup order and errors ----------------------------------------------------------------
def test_lookup_order(scratch_registry: None) -> None:
    def given(y_true: Any, y_pred: Any) -> Any:
        return y_pred

    def scoped(y_true: Any, y_pred: Any) -> Any:
        return y_pred

    def registered(y_true: Any, y_pred: Any) -> Any:
        return y_pred

    builtin = losses.mean_squared_error
    assert registry.get("loss", "mse") is builtin
    register_keras_serializable(package="probe", name="mse")(registered)
    assert registry.get("loss", "mse") is registered
    assert registry.get("loss", "probe>mse") is registered
    with custom_object_scope({"mse": scoped}):
        assert registry.get("loss", "mse") is scoped
        assert registry.get("loss", "mse", {"mse": given}) is given
        assert losses.get("mse") is scoped
    assert registry.find("loss", "nothing_called_this") is None


def test_unknown_names_list_the_known_ones_and_say_how_to_register() -> None:
    with pytest.raises(ValueError) as info:
        registry.get("metric", "accuracyy")
    message = str(info.value)
    assert message.startswith("Unknown metric 'accuracyy'.")
    assert "'sparse_categorical_accuracy'" in message and "'acc'" in message
    assert "register_keras_serializable" in message and "custom_objects" in message
    with pytest.raises(ValueError, match="Unknown learning rate schedule 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="Unknown layer class 'Nope'"):
        get_layer_class("Nope")
    with pytest.raises(ValueError, match="Expected the name of a loss.*42"):
        registry.get("loss", 42)


# --- names that worked before the registry --------------------------------------------------
@pytest.mark.parametrize(
    "getter,names,expected",
    [
        (optimizers.get, ["adam", "Adam", "ADAM"], optimizers.Adam),
        (optimizers.get, ["sgd", "SGD"], optimizers.SGD),
        (optimizers.get, ["rmsprop", "RMSprop"], optimizers.RMSprop),
        (optimizers.get, ["adamw", "AdamW"], optimizers.AdamW),
        (losses.get, ["MeanSquaredError"], losses.MeanSquaredError),
        (metrics.get, ["acc", "accuracy", "Accuracy"], metrics.Accuracy),
        (metrics.get, ["mse", "MSE", "mean_squared_error"], metrics.MeanSquaredError),
        (metrics.get, ["auc", "AUC"], metrics.AUC),
        (metrics.get, ["rmse", "root_mean_squared_error"], metrics.RootMeanSquaredError),
        (metrics.get, ["bce", "BCE", "binary_crossentropy"], metrics.BinaryCrossentropy),
        (metrics.get, ["mean", "sum"], (metrics.Mean, metrics.Sum)),
        (initializers.get, ["glorot_uniform", "GlorotUniform", "Glorot_Uniform"], None),
        (initializers.get, ["uniform", "random_uniform"], initializers.RandomUniform),
        (initializers.get, ["normal", "RandomNormal"], initializers.RandomNormal),
        (regularizers.get, ["l1", "L1"], regularizers.L1),
        (regularizers.get, ["l1_l2", "l1l2", "L1L2"], regularizers.L1L2),
        (constraints.get, ["max_norm", "MaxNorm"], constraints.MaxNorm),
        (constraints.get, ["non_neg", "NonNeg", "Constraint"], None),
    ],
)
def test_names_that_worked_before_still_work(getter: Any, names: list, expected: Any) -> None:
    for name in names:
        got = getter(name)
        if expected is not None:
            assert isinstance(got, expected), (name, got)


@pytest.mark.parametrize(
    "name,fn",
    [
        ("mse", losses.mean_squared_error),
        ("MSE", losses.mean_squared_error),
        ("mean_squared_error", losses.mean_squared_error),
        ("mae", losses.mean_absolute_error),
        ("mape", losses.mean_absolute_percentage_error),
        ("msle", losses.mean_squared_logarithmic_error),
        ("kld", losses.kl_divergence),
        ("kullback_leibler_divergence", losses.kl_divergence),
        ("bce", losses.binary_crossentropy),
        ("logcosh", losses.log_cosh),
        ("huber_loss", losses.huber),
        ("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy),
    ],
)
def test_loss_names_give_the_functions(name: str, fn: Any) -> None:
    assert losses.get(name) is fn


def test_activation_names() -> None:
    assert activations.get("swish") is activations.get("silu") is dd.ops.silu
    assert activations.serialize(dd.ops.silu) == "silu"
    assert activations.get("exponential") is dd.ops.exp
    assert activations.get(None) is activations.get("linear") is activations.linear


def test_abstract_bases_are_not_names() -> None:
    for getter, name in (
        (metrics.get, "Metric"),
        (metrics.get, "MeanMetricWrapper"),
        (losses.get, "Loss"),
        (losses.get, "LossFunctionWrapper"),
        (optimizers.get, "Optimizer"),
        (initializers.get, "Initializer"),
        (regularizers.get, "Regularizer"),
    ):
        with pytest.raises(ValueError):
            getter(name)


# --- snake_case -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,expected",
    [
        ("SGDW", "sgdw"),
        ("MeanSquaredError", "mean_squared_error"),
        ("AUC", "auc"),
        ("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy"),
        ("Conv2DTranspose", "conv2d_transpose"),
        ("LSTMCell", "lstm_cell"),
        ("KLDivergence", "kl_divergence"),
        ("RMSprop", "rm_sprop"),  # Keras's rule gives this too; RMSprop names itself
        ("L1L2", "l1l2"),
        ("My-Layer", "my_layer"),
    ],
)
def test_snake_case_is_keras_rule(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_every_default_name_uses_the_one_snake_case() -> None:
    class SGDX(optimizers.Optimizer):
        def __init__(self) -> None:
            super().__init__(learning_rate=0.1)

    class MyHTTPLoss(losses.Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            return y_pred

    assert SGDX().name == "sgdx"
    assert MyHTTPLoss().name == "my_http_loss"
    assert metrics.SparseTopKCategoricalAccuracy().name == "sparse_top_k_categorical_accuracy"
    assert dd.layers.BatchNormalization().name.startswith("batch_normalization")
