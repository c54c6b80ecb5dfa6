"""The optimizer contract: defaults, state, learning rate, get/serialize, config, errors."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from dendrite import optimizers, registry
from dendrite.core import Variable
from dendrite.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    Optimizer,
    RMSprop,
    schedules,
)

ALL = [SGD, Adam, AdamW, Adamax, Nadam, RMSprop, Adagrad, Adadelta]

# Keras 3 defaults, from keras/src/optimizers/*.py
KERAS_DEFAULTS = {
    SGD: {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False, "name": "SGD"},
    Adam: {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "name": "adam",
    },
    AdamW: {
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "name": "adamw",
    },
    Adamax: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    Nadam: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    RMSprop: {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    },
    Adagrad: {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    Adadelta: {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
}

BASE_ARGS = [
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
]


def variables_and_grads(seed=0):
    rng = np.random.default_rng(seed)
    variables = [
        Variable(rng.standard_normal((3, 2)).astype(np.float32), name="dense/kernel"),
        Variable(rng.standard_normal(2).astype(np.float32), name="dense/bias"),
    ]
    grads = [rng.standard_normal(v.shape).astype(np.float32) for v in variables]
    return variables, grads


# --- defaults and signatures ----------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_keras_defaults(cls):
    config = cls().get_config()
    for key, value in KERAS_DEFAULTS[cls].items():
        assert config[key] == value, key
    parameters = inspect.signature(cls).parameters
    for key, value in KERAS_DEFAULTS[cls].items():
        assert parameters[key].default == value, key
    assert all(arg in parameters for arg in BASE_ARGS)
    if cls is not AdamW:
        assert config["weight_decay"] is None
    assert config["clipnorm"] is config["clipvalue"] is config["global_clipnorm"] is None
    assert config["use_ema"] is False


def test_base_signature():
    parameters = list(inspect.signature(Optimizer).parameters)
    assert parameters[:4] == ["learning_rate", "weight_decay", "clipnorm", "clipvalue"]
    assert "global_clipnorm" in parameters and "use_ema" in parameters


# --- state -------------------------------------------------------------------------------------
def test_iterations_is_an_int_like_variable():
    variables, grads = variables_and_grads()
    optimizer = Adam()
    assert isinstance(optimizer.iterations, Variable)
    assert int(optimizer.iterations) == 0 and optimizer.iterations.numpy() == 0
    for _ in range(3):
        result = optimizer.apply_gradients(zip(grads, variables))
    assert result is optimizer.iterations
    assert int(optimizer.iterations) == 3
    assert optimizer.iterations.numpy() == 3
    assert optimizer.iterations.numpy().dtype == np.int64
    assert optimizer.iterations == 3
    assert optimizer.iterations > 2
    assert optimizer.iterations <= 3
    assert not optimizer.iterations.trainable
    assert optimizer.variables[0] is optimizer.iterations


@pytest.mark.parametrize(
    "optimizer, slots",
    [
        (SGD(), []),
        (SGD(momentum=0.9), ["momentum"]),
        (Adam(), ["momentum", "velocity"]),
        (Adam(amsgrad=True), ["momentum", "velocity", "velocity_hat"]),
        (Adamax(), ["momentum", "norm"]),
        (Nadam(), ["momentum", "velocity"]),
        (RMSprop(momentum=0.5, centered=True), ["velocity", "momentum", "average_gradient"]),
        (Adagrad(), ["accumulator"]),
        (Adadelta(), ["accumulated_grad", "accumulated_delta_var"]),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, Optimizer) else None,
)
def test_variables_have_a_stable_keras_order(optimizer, slots):
    variables, grads = variables_and_grads()
    assert [v.name for v in optimizer.variables] == ["iteration", "learning_rate"]
    optimizer.apply(grads, variables)
    names = [v.name for v in optimizer.variables]
    expected = ["iteration", "learning_rate"]
    for slot in slots:
        expected += [f"dense_kernel_{slot}", f"dense_bias_{slot}"]
    if isinstance(optimizer, Nadam):
        expected.append("u_product")
    assert names == expected
    for state in optimizer.variables[2:]:
        assert not state.trainable
    for state, variable in zip(optimizer.variables[2:4], variables):
        assert state.shape == variable.shape and state.dtype == variable.dtype
    if isinstance(optimizer, Adagrad):
        assert optimizer.variables[2].data.flat[0] != 0  # started at 0.1, then grew
    # building again (a second apply) creates nothing new
    optimizer.apply(grads, variables)
    assert [v.name for v in optimizer.variables] == expected


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_restoring_state_resumes_the_same_trajectory(cls):
    variables, grads = variables_and_grads()
    kwargs = {"momentum": 0.9} if cls in (SGD, RMSprop) else {}
    optimizer = cls(learning_rate=0.01, **kwargs)
    for _ in range(3):
        optimizer.apply(grads, variables)
    saved_state = optimizer.get_weights()
    saved_vars = [v.data.copy() for v in variables]
    for _ in range(3):
        optimizer.apply([g * 0.5 for g in grads], variables)
    trajectory = [v.data.copy() for v in variables]

    fresh_vars = [Variable(data, name=v.name) for data, v in zip(saved_vars, variables)]
    fresh = cls.from_config(optimizer.get_config())
    fresh.build(fresh_vars)
    fresh.set_weights(saved_state)
    assert int(fresh.iterations) == 3
    for _ in range(3):
        fresh.apply([g * 0.5 for g in grads], fresh_vars)
    for got, want in zip(fresh_vars, trajectory):
        np.testing.assert_array_equal(got.data, want)


def test_save_and_load_own_variables():
    variables, grads = variables_and_grads()
    optimizer = Adam()
    optimizer.apply(grads, variables)
    store = {}
    optimizer.save_own_variables(store)
    assert sorted(store) == [str(i) for i in range(len(optimizer.variables))]
    other = Adam()
    other.build(variables)
    other.load_own_variables(store)
    for a, b in zip(other.variables, optimizer.variables):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        Adam().load_own_variables(store)


def test_set_weights_errors():
    variables, _ = variables_and_grads()
    with pytest.raises(ValueError, match="not yet been built"):
        Adam().set_weights([])
    optimizer = Adam()
    optimizer.build(variables)
    with pytest.raises(ValueError, match="has 6 variables"):
        optimizer.set_weights([np.array(0)])
    state = optimizer.get_weights()
    wrong = [state[0], np.zeros(state[1].size + 1, state[1].dtype), *state[2:]]
    with pytest.raises(ValueError, match=r"variable .* has shape .*received a weight of shape"):
        optimizer.set_weights(wrong)
    # nothing was assigned: the check comes before any change
    for before, after in zip(state, optimizer.get_weights()):
        np.testing.assert_array_equal(before, after)


# --- learning rate ---------------------------------------------------------------------------
def test_learning_rate_property_and_setter():
    variables, grads = variables_and_grads()
    optimizer = SGD(learning_rate=0.1)
    assert optimizer.learning_rate == 0.1
    assert isinstance(optimizer.learning_rate, float)
    before = variables[0].data.copy()
    optimizer.learning_rate = 0.5  # what ReduceLROnPlateau does
    assert optimizer.learning_rate == 0.5
    assert optimizer.get_config()["learning_rate"] == 0.5
    optimizer.apply(grads, variables)
    np.testing.assert_allclose(variables[0].data, before - 0.5 * grads[0], rtol=1e-6)
    optimizer.learning_rate = np.float32(0.25)
    assert optimizer.learning_rate == 0.25
    optimizer.learning_rate = 1  # ints are numbers too
    assert optimizer.learning_rate == 1.0
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = -0.1
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = "fast"


def test_schedule_learning_rate_follows_iterations():
    variables, grads = variables_and_grads()
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = SGD(learning_rate=schedule)
    assert [v.name for v in optimizer.variables] == ["iteration"]
    for step in range(4):
        assert optimizer.learning_rate == pytest.approx(0.1 * 0.5**step)
        optimizer.apply(grads, variables)
    with pytest.raises(TypeError, match="not settable"):
        optimizer.learning_rate = 0.01


def test_setting_a_schedule_replaces_the_rate_variable():
    optimizer = Adam(0.01)
    optimizer.learning_rate = schedules.PiecewiseConstantDecay([2], [0.3, 0.2])
    assert optimizer.learning_rate == 0.3
    assert [v.name for v in optimizer.variables] == ["iteration"]


def test_callable_learning_rate():
    variables, grads = variables_and_grads()
    rates = iter([0.1, 0.2])
    optimizer = SGD(learning_rate=lambda: next(rates))
    before = variables[1].data.copy()
    optimizer.apply(grads, variables)
    np.testing.assert_allclose(variables[1].data, before - 0.1 * grads[1], rtol=1e-6)
    with pytest.raises(TypeError, match="callable"):
        optimizer.get_config()


# --- get / serialize / config ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(registry.items("optimizer")))
def test_get_by_name_any_case(name):
    for spelling in (name, name.lower(), name.upper(), name.capitalize()):
        optimizer = optimizers.get(spelling)
        assert type(optimizer) is registry.get("optimizer", name)
    assert optimizers.get(name) is not optimizers.get(name)  # a fresh one each time


def test_get_other_identifiers():
    adam = Adam(0.02)
    assert optimizers.get(adam) is adam
    assert optimizers.get(None) is None
    got = optimizers.get({"class_name": "RMSprop", "config": {"learning_rate": 0.5, "rho": 0.8}})
    assert isinstance(got, RMSprop) and got.learning_rate == 0.5 and got.rho == 0.8
    with pytest.raises(ValueError, match="interpret"):
        optimizers.get(42)


def test_unknown_optimizer_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        optimizers.get("adamm")
    message = str(info.value)
    assert "adamm" in message
    for name in ("sgd", "adam", "adamw", "adamax", "nadam", "rmsprop", "adagrad", "adadelta"):
        assert repr(name) in message


def _configured(cls):
    schedule = schedules.CosineDecay(0.1, 100, alpha=0.1, warmup_target=0.2, warmup_steps=10)
    extra = {
        SGD: {"momentum": 0.9, "nesterov": True},
        Adam: {"amsgrad": True, "beta_1": 0.8},
        AdamW: {"weight_decay": 0.1},
        Adamax: {"beta_2": 0.99},
        Nadam: {"epsilon": 1e-5},
        RMSprop: {"centered": True, "momentum": 0.5, "rho": 0.8},
        Adagrad: {"initial_accumulator_value": 0.3},
        Adadelta: {"rho": 0.9},
    }[cls]
    return [
        cls(**extra),
        cls(learning_rate=schedule, clipnorm=1.0, name="custom", **extra),
        cls(learning_rate=0.3, global_clipnorm=2.0, use_ema=True, ema_momentum=0.9),
        cls(clipvalue=0.5, loss_scale_factor=8.0, ema_overwrite_frequency=3),
    ]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    for optimizer in _configured(cls):
        config = optimizer.get_config()
        json.dumps(config)  # JSON-compatible, schedule included
        clone = cls.from_config(config)
        assert type(clone) is cls
        assert clone.get_config() == config
        again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(optimizer))))
        assert again.get_config() == config
        assert again.learning_rate == optimizer.learning_rate
    scheduled = _configured(cls)[1].get_config()["learning_rate"]
    assert scheduled["class_name"] == "CosineDecay"
    assert scheduled["config"]["warmup_target"] == 0.2


def test_deserialize_custom_objects():
    class Halving(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.5**step

        def get_config(self):
            return {}

    config = optimizers.serialize(SGD(learning_rate=Halving()))
    with pytest.raises(ValueError, match="Unknown learning rate schedule"):
        optimizers.deserialize(config)
    clone = optimizers.deserialize(config, custom_objects={"Halving": Halving})
    assert clone.learning_rate == 1.0


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [-0.1, "0.1", None, float("nan")])
def test_bad_learning_rate(cls, bad):
    with pytest.raises(ValueError, match="learning_rate"):
        cls(learning_rate=bad)


@pytest.mark.parametrize("arg", ["clipnorm", "clipvalue", "global_clipnorm"])
@pytest.mark.parametrize("bad", [-1.0, 0.0, "1", True])
def test_bad_clip_arguments(arg, bad):
    with pytest.raises(ValueError, match=arg):
        Adam(**{arg: bad})


def test_only_one_clip_argument():
    with pytest.raises(ValueError, match="Only one of"):
        SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="Only one of"):
        SGD(clipnorm=1.0, global_clipnorm=1.0)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (SGD, {"momentum": 1.5}, "momentum"),
        (SGD, {"momentum": -0.1}, "momentum"),
        (Adam, {"beta_1": 1.1}, "beta_1"),
        (Adam, {"epsilon": -1e-7}, "epsilon"),
        (RMSprop, {"rho": 2.0}, "rho"),
        (Adagrad, {"initial_accumulator_value": -0.1}, "initial_accumulator_value"),
        (Adam, {"weight_decay": -0.1}, "weight_decay"),
        (AdamW, {"weight_decay": None}, "weight_decay"),
        (Adam, {"ema_momentum": 1.5, "use_ema": True}, "ema_momentum"),
        (Adam, {"ema_overwrite_frequency": 0}, "ema_overwrite_frequency"),
        (Adam, {"not_an_argument": 1}, "not recognized"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("steps", [1, 0, 2.5, True])
def test_gradient_accumulation_steps_must_be_an_integer_of_at_least_two(steps):
    with pytest.raises(ValueError, match="must be an integer >= 2"):
        Adam(gradient_accumulation_steps=steps)


def test_gradient_accumulation_updates_every_n_steps_with_the_mean_gradient():
    rng = np.random.default_rng(4)
    start = rng.standard_normal((3, 2)).astype("float32")
    variable = Variable(start.copy())
    optimizer = optimizers.SGD(0.5, gradient_accumulation_steps=3, clipvalue=10.0)
    grads = [rng.standard_normal((3, 2)).astype("float32") for _ in range(6)]
    for step, grad in enumerate(grads[:3]):
        optimizer.apply([grad], [variable])
        if step < 2:
            np.testing.assert_array_equal(variable.data, start)  # only accumulating
    expected = start - 0.5 * (grads[0] + grads[1] + grads[2]) / 3
    np.testing.assert_allclose(variable.data, expected, rtol=1e-6)
    assert int(optimizer.iterations.data) == 3
    for grad in grads[3:]:
        optimizer.apply([grad], [variable])
    expected = expected - 0.5 * (grads[3] + grads[4] + grads[5]) / 3
    np.testing.assert_allclose(variable.data, expected, rtol=1e-6)
    accumulator_names = [v.name for v in optimizer.variables if "accumulator" in v.name]
    assert accumulator_names and optimizer.get_config()["gradient_accumulation_steps"] == 3


def test_fit_with_gradient_accumulation_trains():
    import dendrite as tf

    tf.utils.set_random_seed(0)
    x = np.random.default_rng(1).standard_normal((64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-1.0], [2.0]], "float32")
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=Adam(0.1, gradient_accumulation_steps=4), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_legacy_decay_argument_warns():
    with pytest.warns(UserWarning, match="decay"):
        SGD(decay=0.1)


def _state(optimizer, variables):
    return [v.data.copy() for v in variables] + [s.data.copy() for s in optimizer.variables]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_wrong_gradient_shape_names_variable_and_shapes_and_changes_nothing(cls):
    variables, grads = variables_and_grads()
    optimizer = cls(weight_decay=0.1, clipnorm=1.0, use_ema=True)
    optimizer.apply(grads, variables)
    before = _state(optimizer, variables)
    bad = [grads[0], np.ones((3,), np.float32)]
    with pytest.raises(ValueError) as info:
        optimizer.apply(bad, variables)
    message = str(info.value)
    assert "dense/bias" in message and "(3,)" in message and "(2,)" in message
    for got, want in zip(_state(optimizer, variables), before):
        np.testing.assert_array_equal(got, want)


def test_wrong_shape_on_first_call_changes_nothing():
    variables, grads = variables_and_grads()
    before = [v.data.copy() for v in variables]
    optimizer = SGD(0.1)
    with pytest.raises(ValueError, match=r"dense/kernel.*\(2, 3\).*\(3, 2\)"):
        optimizer.apply([grads[0].T, grads[1]], variables)
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(v.data, b)
    assert int(optimizer.iterations) == 0


def test_apply_errors():
    variables, grads = variables_and_grads()
    with pytest.raises(ValueError, match="must already be built"):
        Adam().apply(grads)
    optimizer = Adam()
    with pytest.raises(ValueError, match="one to one"):
        optimizer.apply(grads[:1], variables)
    optimizer = Adam()
    optimizer.apply(grads, variables)
    optimizer.apply(grads)  # built: the variables it was built with, in order
    assert int(optimizer.iterations) == 2
    stranger = Variable(np.zeros(2, np.float32), name="stranger")
    with pytest.raises(ValueError, match="Unknown variable"):
        optimizer.apply([grads[1]], [stranger])
    with pytest.raises(ValueError, match="No gradients"):
        optimizer.apply([None, None], variables)
    assert int(optimizer.iterations) == 2
    optimizer.apply([], [])  # nothing to do
    optimizer.apply_gradients([])
    assert int(optimizer.iterations) == 2


def test_build_rejects_non_float_and_duplicate_variables():
    counter = Variable(np.array(3), trainable=False, name="count")
    with pytest.raises(ValueError, match="floating-point"):
        SGD().build([counter])
    weight = Variable(np.zeros(2), name="w")
    with pytest.raises(ValueError, match="listed twice"):
        SGD().build([weight, weight])


def test_subset_of_variables_per_step():
    variables, grads = variables_and_grads()
    optimizer = SGD(0.1)
    optimizer.build(variables)
    before = variables[0].data.copy()
    optimizer.apply([grads[1]], [variables[1]])
    np.testing.assert_array_equal(variables[0].data, before)


def test_repr():
    assert "adam" in repr(Adam()) and "iterations=0" in repr(Adam())
