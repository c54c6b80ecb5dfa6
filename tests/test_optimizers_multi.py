"""MultiOptimizer and OptimizerMap, against real Keras 3.15 (in a subprocess,
KERAS_BACKEND=torch) where Keras has them.

A model of two Dense layers, "encoder_dense" (Adam, by the pattern "encoder_dense/.*") and
"head" (SGD with momentum, the default), starts from the same weights in both and trains
on the same batches: the weights after every ``train_on_batch`` step, and after a
``fit`` with the optimizer compiled by instance, must agree (``atol=1e-5``), as must the
optimizer's state, variable by variable, in Keras' order. ``.keras`` files go both ways
(dendrite -> Keras -> dendrite) with the state; dendrite's own ``.dendrite`` files round
trip it. Also: the map's rules (exact key, ``re.fullmatch`` patterns, default, ambiguity),
its errors, the dispatch of each gradient, ``iterations``, ``learning_rate``,
``loss_scale_factor``, ``get_weights``/``set_weights`` and the config.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dendrite as tf
from dendrite.core import Variable
from dendrite.optimizers import (
    SGD,
    Adam,
    LossScaleOptimizer,
    MultiOptimizer,
    OptimizerMap,
    RMSprop,
    schedules,
)
from dendrite.saving.keras_format.optimizer_map import keras_ordered
from dendrite.testing.keras_side import run_keras_side

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="needs Keras 3 (the keras package)"
)
STEPS = 5
BATCH = 4


class _Path:
    """A stand-in with only the ``path`` an OptimizerMap reads."""

    def __init__(self, path: str) -> None:
        self.path = path


def _variable(path: str, shape: tuple[int, ...], seed: int) -> Variable:
    variable = Variable(np.random.default_rng(seed).standard_normal(shape), name=path)
    variable.path = path  # a bare Variable's path is its name; make it explicit
    return variable


# --- OptimizerMap ---------------------------------------------------------------------------
def test_exact_key_wins_then_one_full_match_then_the_default() -> None:
    default, adam, sgd, rms = RMSprop(), Adam(), SGD(), RMSprop()
    opt_map = OptimizerMap(default)
    opt_map["encoder/layer_0/dense"] = adam
    opt_map["encoder/.*"] = sgd
    opt_map["decoder"] = rms
    assert opt_map["decoder"] is rms
    assert opt_map["encoder/layer_0/dense"] is adam  # exact, although "encoder/.*" matches
    assert opt_map["encoder/layer_0/attention/query"] is sgd
    assert opt_map["decoder/layer_0/dense"] is default  # "decoder" must match in full
    assert opt_map["my_encoder/kernel"] is default  # fullmatch, not search
    assert opt_map.default_optimizer is default
    assert opt_map(_Path("encoder/kernel")) is sgd  # called on a variable: its path


def test_two_matching_patterns_are_an_error_unless_the_path_is_a_key() -> None:
    opt_map = OptimizerMap(SGD(), {"enc.*": Adam(), ".*kernel": RMSprop()})
    with pytest.raises(ValueError, match="Multiple optimizers.*'encoder/kernel'"):
        opt_map["encoder/kernel"]
    assert opt_map["encoder/bias"] is opt_map._optimizer_map["enc.*"]
    exact = SGD()
    opt_map["encoder/kernel"] = exact
    assert opt_map["encoder/kernel"] is exact


def test_setitem_refuses_what_keras_refuses() -> None:
    opt_map = OptimizerMap(SGD(), {"a": Adam()})
    with pytest.raises(ValueError, match="'a' already exists in the OptimizerMap"):
        opt_map["a"] = SGD()
    with pytest.raises(ValueError, match=r"key must be a string.*key=3 \(int\)"):
        opt_map[3] = SGD()
    with pytest.raises(ValueError, match="must be a dendrite Optimizer.*'sgd' \\(str\\)"):
        opt_map["b"] = "sgd"
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        opt_map["b"] = LossScaleOptimizer(Adam())
    with pytest.raises(ValueError, match="cannot be a MultiOptimizer"):
        opt_map["b"] = MultiOptimizer(OptimizerMap(SGD()))
    assert list(opt_map) == ["a"]  # nothing was added
    # the initial dict goes through the same checks
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        OptimizerMap(SGD(), {"x": LossScaleOptimizer(SGD())})
    with pytest.raises(TypeError, match="default_optimizer.*Received: default_optimizer='sgd'"):
        OptimizerMap("sgd")
    with pytest.raises(TypeError, match="optimizer_map` must be a dict"):
        OptimizerMap(SGD(), [("a", Adam())])


def test_it_is_a_mutable_mapping() -> None:
    adam, sgd = Adam(), SGD()
    opt_map = OptimizerMap(RMSprop(), {"a/.*": adam})
    assert isinstance(opt_map, MutableMapping)
    opt_map.update({"b": sgd})
    assert len(opt_map) == 2 and list(opt_map) == ["a/.*", "b"]
    assert list(opt_map.values()) == [adam, sgd]
    assert "b" in opt_map and "a/x" not in opt_map  # membership is by key
    del opt_map["a/.*"]
    assert list(opt_map.items()) == [("b", sgd)]
    assert opt_map["a/x"] is opt_map.default_optimizer
    opt_map["a/.*"] = adam  # a deleted key can be set again
    assert opt_map["a/x"] is adam


# --- MultiOptimizer: construction, properties -----------------------------------------------
def test_optimizers_are_the_map_values_then_the_default() -> None:
    adam, sgd, default = Adam(), SGD(), RMSprop()
    multi = MultiOptimizer(OptimizerMap(default, {"a": adam, "b": sgd, "c": adam}))
    assert multi.optimizers == [adam, sgd, default]
    assert multi.name == "multi_optimizer"
    assert MultiOptimizer(OptimizerMap(SGD()), name="mo").name == "mo"


def test_learning_rate_is_not_defined_on_it() -> None:
    multi = MultiOptimizer(OptimizerMap(SGD(), {"a": Adam()}))
    with pytest.raises(AttributeError, match="cannot be accessed on a MultiOptimizer"):
        _ = multi.learning_rate
    with pytest.raises(AttributeError, match="cannot be set on a MultiOptimizer"):
        multi.learning_rate = 0.1
    assert not hasattr(multi, "learning_rate")
    assert [o.learning_rate for o in multi.optimizers] == pytest.approx([0.001, 0.01])


def test_loss_scale_factor_reaches_every_inner_optimizer() -> None:
    adam, sgd = Adam(loss_scale_factor=8.0), SGD()
    multi = MultiOptimizer(OptimizerMap(sgd, {"a": adam}), loss_scale_factor=4.0)
    assert [adam.loss_scale_factor, sgd.loss_scale_factor] == [4.0, 4.0]
    assert float(multi.scale_loss(np.float64(2.0))) == 8.0
    multi.loss_scale_factor = None
    assert adam.loss_scale_factor is None and sgd.loss_scale_factor is None
    # as in Keras, None replaces the inner optimizers' own factors
    assert (
        MultiOptimizer(OptimizerMap(Adam(loss_scale_factor=2.0))).optimizers[0].loss_scale_factor
        is None
    )
    with pytest.raises(ValueError, match="loss_scale_factor"):
        MultiOptimizer(OptimizerMap(SGD()), loss_scale_factor=-1.0)


def test_bad_optimizer_maps_are_refused() -> None:
    with pytest.raises(TypeError, match="MultiOptimizer: `optimizer_map`.*Wrap a dict"):
        MultiOptimizer({"a": Adam()})
    with pytest.raises(TypeError, match="MultiOptimizer: `optimizer_map`.*Adam"):
        MultiOptimizer(Adam())
    variables = [_variable("w", (2,), 0)]
    multi = MultiOptimizer(lambda v: "adam")
    with pytest.raises(
        ValueError, match="MultiOptimizer 'multi_optimizer'.*chosen for variable 'w'"
    ):
        multi.build(variables)
    assert not multi.built
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        MultiOptimizer(lambda v: LossScaleOptimizer(SGD())).build(variables)


# --- MultiOptimizer: dispatch ---------------------------------------------------------------
def _three_variables() -> list[Variable]:
    return [
        _variable("encoder/kernel", (3, 2), 1),
        _variable("head/kernel", (2, 2), 2),
        _variable("encoder/bias", (2,), 3),
    ]


def test_each_gradient_goes_to_its_optimizer() -> None:
    """The same steps as the inner optimizers applied alone on their own variables."""
    variables = _three_variables()
    copies = [Variable(v.data.copy(), name=v.name) for v in variables]
    adam, sgd = Adam(learning_rate=0.05), SGD(learning_rate=0.1, momentum=0.9)
    multi = MultiOptimizer(OptimizerMap(sgd, {"encoder/.*": adam}))
    alone_adam, alone_sgd = Adam(learning_rate=0.05), SGD(learning_rate=0.1, momentum=0.9)
    rng = np.random.default_rng(7)
    for step in range(4):
        grads = [rng.standard_normal(v.data.shape) for v in variables]
        if step % 2:
            multi.apply(grads, variables)
        else:
            assert multi.apply_gradients(zip(grads, variables)) is multi.iterations
        alone_adam.apply([grads[0], grads[2]], [copies[0], copies[2]])
        alone_sgd.apply([grads[1]], [copies[1]])
    for got, want in zip(variables, copies):
        np.testing.assert_array_equal(got.data, want.data)
    assert int(multi.iterations) == 4
    assert int(adam.iterations) == int(sgd.iterations) == 4
    assert adam._trainable_variables == [variables[0], variables[2]]
    assert sgd._trainable_variables == [variables[1]]
    # gradients without variables follow the build order
    before = [v.data.copy() for v in variables]
    multi.apply([np.zeros_like(v.data) for v in variables])
    assert int(multi.iterations) == 5
    assert not np.array_equal(before[1], variables[1].data)  # SGD momentum still moves it


def test_an_optimizer_without_gradients_does_not_step() -> None:
    variables = _three_variables()
    adam, sgd = Adam(), SGD()
    multi = MultiOptimizer(OptimizerMap(sgd, {"encoder/.*": adam}))
    multi.build(variables)
    multi.apply([np.ones((2, 2))], [variables[1]])
    assert (int(multi.iterations), int(adam.iterations), int(sgd.iterations)) == (1, 0, 1)
    multi.apply([], [])  # no gradients: nothing counts
    assert int(multi.iterations) == 1
    with pytest.raises(ValueError, match="was not built on variable 'other'"):
        multi.apply([np.ones(2)], [_variable("other", (2,), 0)])
    with pytest.raises(ValueError, match="2 gradients for 1 variables"):
        multi.apply([np.ones((2, 2)), np.ones(2)], [variables[1]])


def test_a_callable_map_adds_the_optimizers_it_returns() -> None:
    variables = _three_variables()
    made: dict[str, Any] = {}

    def choose(variable: Any) -> Any:
        layer = variable.path.split("/")[0]
        if layer not in made:
            made[layer] = Adam(learning_rate=0.1) if layer == "encoder" else SGD(0.1)
        return made[layer]

    multi = MultiOptimizer(choose, loss_scale_factor=2.0)
    assert multi.optimizers == []
    multi.apply([np.ones(v.data.shape) for v in variables], variables)
    assert multi.optimizers == [made["encoder"], made["head"]]
    assert made["head"].loss_scale_factor == 2.0
    np.testing.assert_allclose(  # SGD on g / 2
        variables[1].data, _variable("head/kernel", (2, 2), 2).data - 0.1 * 0.5
    )


def test_variables_and_weights_are_its_own_then_each_inner_ones() -> None:
    variables = _three_variables()
    adam, sgd = Adam(), SGD(momentum=0.9)
    unused = RMSprop()
    multi = MultiOptimizer(OptimizerMap(sgd, {"encoder/.*": adam, "nothing": unused}))
    multi.build(variables)
    assert not unused.built  # no variable of its own: not built, as Keras
    expected = multi._variables + adam.variables + unused.variables + sgd.variables
    assert [id(v) for v in multi.variables] == [id(v) for v in expected]
    assert [v.name for v in multi.variables[:2]] == ["iteration", "learning_rate"]
    rng = np.random.default_rng(3)
    for _ in range(3):
        multi.apply([rng.standard_normal(v.data.shape) for v in variables], variables)
    state = multi.get_weights()
    assert len(state) == len(expected) == 2 + 6 + 2 + 3
    fresh_vars = _three_variables()
    for fresh, variable in zip(fresh_vars, variables):
        fresh.assign(variable.data)
    fresh = MultiOptimizer.from_config(multi.get_config())
    fresh.build(fresh_vars)
    fresh.set_weights(state)
    for a, b in zip(fresh.get_weights(), state):
        np.testing.assert_array_equal(a, b)
    for _ in range(2):
        grads = [rng.standard_normal(v.data.shape) for v in variables]
        multi.apply(grads, variables)
        fresh.apply(grads, fresh_vars)
    for a, b in zip(fresh_vars, variables):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="has 13 variables; received 12"):
        fresh.set_weights(state[:-1])
    with pytest.raises(ValueError, match="not yet been built"):
        MultiOptimizer(OptimizerMap(SGD())).set_weights(state)


def test_finalize_goes_to_each_inner_optimizer() -> None:
    variables = _three_variables()
    adam = Adam(learning_rate=0.5, use_ema=True, ema_momentum=0.5)
    multi = MultiOptimizer(OptimizerMap(SGD(), {"encoder/.*": adam}))
    multi.apply([np.ones(v.data.shape) for v in variables], variables)
    head = variables[1].data.copy()
    multi.finalize_variable_values(variables)
    np.testing.assert_array_equal(variables[0].data, adam._averages[0].data)
    np.testing.assert_array_equal(variables[1].data, head)  # SGD has no averages


# --- config ---------------------------------------------------------------------------------
def test_config_is_keras_form_and_round_trips() -> None:
    multi = MultiOptimizer(
        OptimizerMap(SGD(momentum=0.9), {"encoder_dense/.*": Adam(learning_rate=0.01)}),
        loss_scale_factor=2.0,
        name="multi",
    )
    config = multi.get_config()
    assert list(config) == ["optimizer_map", "loss_scale_factor", "name"]
    entry = config["optimizer_map"]
    assert (entry["module"], entry["class_name"], entry["registered_name"]) == (
        "keras.optimizers",
        "OptimizerMap",
        None,
    )
    assert list(entry["config"]) == ["default_optimizer", "optimizer_map"]
    assert entry["config"]["default_optimizer"]["class_name"] == "SGD"
    assert entry["config"]["optimizer_map"]["encoder_dense/.*"]["config"]["learning_rate"] == 0.01
    assert OptimizerMap.from_config(entry["config"]).get_config() == entry["config"]
    clone = tf.optimizers.deserialize(json.loads(json.dumps(tf.optimizers.serialize(multi))))
    assert type(clone) is MultiOptimizer and clone.get_config() == config
    assert [type(o) for o in clone.optimizers] == [Adam, SGD]
    assert type(tf.optimizers.get("multioptimizer")) is MultiOptimizer  # registered


# --- a model: dendrite and Keras ------------------------------------------------------------
def _model() -> Any:
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(3, activation="tanh", name="encoder_dense")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="head")(hidden))


def _multi() -> MultiOptimizer:
    return MultiOptimizer(
        OptimizerMap(
            SGD(learning_rate=0.05, momentum=0.9), {"encoder_dense/.*": Adam(learning_rate=0.02)}
        )
    )


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return (
        rng.standard_normal((STEPS * BATCH, 4)).astype("float32"),
        rng.standard_normal((STEPS * BATCH, 2)).astype("float32"),
    )


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def test_fit_with_the_instance_trains_each_layer_with_its_optimizer() -> None:
    tf.keras.utils.set_random_seed(0)
    model = _model()
    optimizer = _multi()
    model.compile(optimizer=optimizer, loss="mse")
    x, y = _data()
    start = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    assert model.optimizer is optimizer
    assert history.history["loss"][-1] < start
    adam, sgd = optimizer.optimizers
    assert int(optimizer.iterations) == int(adam.iterations) == int(sgd.iterations) == 15
    paths = [v.path for v in model.trainable_weights]
    assert [v.path for v in adam._trainable_variables] == paths[:2]
    assert [v.path for v in sgd._trainable_variables] == paths[2:]


KERAS_SIDE = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import keras
    from keras import ops, optimizers
    root = sys.argv[1]

    def arrays(name):
        with np.load(root + "/" + name, allow_pickle=False) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def model_and_optimizer():
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, activation="tanh", name="encoder_dense")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
        model.set_weights(arrays("initial.npz"))
        optimizer = optimizers.MultiOptimizer(optimizers.OptimizerMap(
            optimizers.SGD(learning_rate=0.05, momentum=0.9),
            {"encoder_dense/.*": optimizers.Adam(learning_rate=0.02)}))
        return model, optimizer

    def state(optimizer):
        return [ops.convert_to_numpy(v) for v in optimizer.variables]

    x, y = arrays("data.npz")
    batch, steps = int(sys.argv[2]), int(sys.argv[3])
    # 1. step by step, train_on_batch
    model, optimizer = model_and_optimizer()
    model.compile(optimizer=optimizer, loss="mse")
    per_step = []
    for i in range(steps):
        model.train_on_batch(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        per_step.extend(model.get_weights())
    np.savez(root + "/keras_steps.npz", *per_step)
    np.savez(root + "/keras_state.npz", *state(optimizer))
    with open(root + "/keras_names.json", "w") as f:
        json.dump([v.path for v in optimizer.variables], f)
    # 2. fit with the optimizer compiled by instance
    model, optimizer = model_and_optimizer()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0)
    np.savez(root + "/keras_fit.npz", *model.get_weights())
    # 3. dendrite's .keras file continues in Keras, and Keras writes its own
    model = keras.models.load_model(root + "/dendrite.keras")
    assert type(model.optimizer).__name__ == "MultiOptimizer", model.optimizer
    np.savez(root + "/keras_loaded_state.npz", *state(model.optimizer))
    model.train_on_batch(x[:batch], y[:batch])
    np.savez(root + "/keras_step1.npz", *model.get_weights())
    model.save(root + "/keras.keras")
    model.train_on_batch(x[:batch], y[:batch])
    np.savez(root + "/keras_step2.npz", *model.get_weights())
    np.savez(root + "/keras_step2_state.npz", *state(model.optimizer))
    # 4. an inner optimizer with a learning-rate schedule
    model = keras.models.load_model(root + "/schedule.keras")
    adam = model.optimizer.optimizers[0]
    with open(root + "/keras_schedule.json", "w") as f:
        json.dump({"class": type(adam._learning_rate).__name__,
                   "iterations": int(ops.convert_to_numpy(adam.iterations)),
                   "rate": float(ops.convert_to_numpy(adam.learning_rate))}, f)
    """
)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dendrite's side (initial weights, data, a ``.keras`` file after 3 steps), then one
    Keras process for every comparison."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("needs Keras 3 (the keras package)")
    pytest.importorskip("h5py")
    root = tmp_path_factory.mktemp("multi_keras")
    tf.keras.utils.set_random_seed(0)
    initial = _model().get_weights()
    x, y = _data()
    np.savez(root / "initial.npz", *initial)
    np.savez(root / "data.npz", x, y)
    model = _model()
    model.set_weights(initial)
    model.compile(optimizer=_multi(), loss="mse")
    for i in range(3):
        model.train_on_batch(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
    model.save(root / "dendrite.keras")
    scheduled = _model()
    decay = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    scheduled.compile(
        optimizer=MultiOptimizer(OptimizerMap(SGD(), {"encoder_dense/.*": Adam(decay)})),
        loss="mse",
    )
    scheduled.train_on_batch(x[:BATCH], y[:BATCH])
    scheduled.save(root / "schedule.keras")
    side = KERAS_SIDE.replace("int(sys.argv[2]), int(sys.argv[3])", f"{BATCH}, {STEPS}")
    run_keras_side(side, root, backend="torch")
    return {"root": root, "initial": initial, "x": x, "y": y, "saved": model}


def _fresh(keras_run: dict[str, Any]) -> Any:
    model = _model()
    model.set_weights(keras_run["initial"])
    model.compile(optimizer=_multi(), loss="mse")
    return model


@needs_keras
def test_same_steps_and_state_as_keras(keras_run: dict[str, Any]) -> None:
    root, x, y = keras_run["root"], keras_run["x"], keras_run["y"]
    model = _fresh(keras_run)
    keras_steps = _arrays(root / "keras_steps.npz")
    count = len(model.get_weights())
    for i in range(STEPS):
        model.train_on_batch(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
        for got, want in zip(model.get_weights(), keras_steps[i * count : (i + 1) * count]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"step {i}")
    optimizer = model.optimizer
    mine = keras_ordered(optimizer, model.trainable_weights)
    names = json.loads((root / "keras_names.json").read_text())
    # Keras' paths: "<optimizer>/<variable>"; dendrite's names are the variable part
    assert [n.rsplit("/", 1)[-1] for n in names] == [v.name for v in mine]
    assert names[:2] == ["multi_optimizer/iteration", "multi_optimizer/learning_rate"]
    for variable, array in zip(mine, _arrays(root / "keras_state.npz")):
        np.testing.assert_allclose(
            variable.data, array, rtol=1e-5, atol=1e-5, err_msg=variable.name
        )


@needs_keras
def test_fit_matches_keras_fit(keras_run: dict[str, Any]) -> None:
    model = _fresh(keras_run)
    optimizer = model.optimizer
    model.fit(keras_run["x"], keras_run["y"], batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert int(optimizer.iterations) == 2 * STEPS
    for got, want in zip(model.get_weights(), _arrays(keras_run["root"] / "keras_fit.npz")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_keras
def test_keras_files_go_both_ways_with_the_state(keras_run: dict[str, Any]) -> None:
    root, x, y = keras_run["root"], keras_run["x"][:BATCH], keras_run["y"][:BATCH]
    model = keras_run["saved"]
    mine = keras_ordered(model.optimizer, model.trainable_weights)
    loaded_by_keras = _arrays(root / "keras_loaded_state.npz")
    assert len(loaded_by_keras) == len(mine) == 12
    for variable, array in zip(mine, loaded_by_keras):
        np.testing.assert_allclose(variable.data, array, rtol=1e-7, err_msg=variable.name)
    model.train_on_batch(x, y)
    for got, want in zip(model.get_weights(), _arrays(root / "keras_step1.npz")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and dendrite continues from Keras' file as Keras continued
    loaded = tf.keras.models.load_model(root / "keras.keras")
    assert type(loaded.optimizer) is MultiOptimizer
    assert [type(o) for o in loaded.optimizer.optimizers] == [Adam, SGD]
    assert [int(o.iterations) for o in loaded.optimizer.optimizers] == [4, 4]
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6, err_msg=a.name)
    loaded.train_on_batch(x, y)
    for got, want in zip(loaded.get_weights(), _arrays(root / "keras_step2.npz")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    state = keras_ordered(loaded.optimizer, loaded.trainable_weights)
    for variable, array in zip(state, _arrays(root / "keras_step2_state.npz")):
        np.testing.assert_allclose(
            variable.data, array, rtol=1e-5, atol=1e-5, err_msg=variable.name
        )


def test_keras_file_holds_each_inner_optimizer_as_keras_writes_it(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    import zipfile

    tf.keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer=_multi(), loss="mse")
    x, y = _data()
    model.train_on_batch(x[:BATCH], y[:BATCH])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        (tmp_path / "w.h5").write_bytes(archive.read("model.weights.h5"))
    ordered = keras_ordered(model.optimizer, model.trainable_weights)
    with h5py.File(tmp_path / "w.h5", "r") as store:
        assert len(store["optimizer/vars"]) == 12
        for i, variable in enumerate(ordered):
            np.testing.assert_array_equal(store[f"optimizer/vars/{i}"][()], variable.data)
        assert sorted(store["optimizer/optimizers"]) == ["adam", "sgd"]
        adam = store["optimizer/optimizers/adam/vars"]
        assert len(adam) == 6 and len(store["optimizer/optimizers/sgd/vars"]) == 4
        # Adam's slots interleaved per variable, as in Keras: m0, v0, m1, v1
        np.testing.assert_array_equal(adam["2"][()], ordered[4].data)
        assert ordered[4].name.endswith("kernel_momentum")
        assert ordered[5].name.endswith("kernel_velocity")


@pytest.mark.parametrize("suffix", [".dendrite", ".keras"])
def test_model_files_round_trip_the_state(suffix: str, tmp_path: Path) -> None:
    if suffix == ".keras":
        pytest.importorskip("h5py")
    tf.keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer=_multi(), loss="mse")
    x, y = _data()
    for i in range(3):
        model.train_on_batch(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
    model.save(tmp_path / f"m{suffix}")
    loaded = tf.keras.models.load_model(tmp_path / f"m{suffix}")
    assert type(loaded.optimizer) is MultiOptimizer
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) == 12
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.name == b.name
        np.testing.assert_array_equal(a.data, b.data)
    for i in range(2):
        batch = slice(i * BATCH, (i + 1) * BATCH)
        model.train_on_batch(x[batch], y[batch])
        loaded.train_on_batch(x[batch], y[batch])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_keras
def test_an_inner_schedule_loads_in_keras(keras_run: dict[str, Any]) -> None:
    """The schedule of an inner optimizer carries Keras' module in the ``.keras`` file."""
    found = json.loads((keras_run["root"] / "keras_schedule.json").read_text())
    assert found == {"class": "ExponentialDecay", "iterations": 1, "rate": pytest.approx(0.05)}


def test_a_key_that_is_not_a_regular_expression_is_named() -> None:
    """An exact key need not be a valid pattern; when the lookup has to read it as one,
    the error names the key and the path instead of re's bare message."""
    optimizer_map = OptimizerMap(SGD(), {"dense[": Adam()})
    assert isinstance(optimizer_map["dense["], Adam)
    with pytest.raises(ValueError, match=r"the key 'dense\[' is neither the exact path 'x/kernel'"):
        optimizer_map["x/kernel"]
