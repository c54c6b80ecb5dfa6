"""LossScaleOptimizer against real Keras 3 (in a subprocess, KERAS_BACKEND=torch).

The same variables take the same gradient sequences in both, some steps with an inf or a
NaN (skipped, the scale halved), some with a missing gradient, with a small
``dynamic_growth_steps`` so that the scale also doubles; the weights, ``dynamic_scale``,
``step_counter``, the inner optimizer's ``iterations`` and state must agree after every
step (float32 ``rtol=2e-5, atol=2e-6``; the float64 case with values float32 holds
exactly, ``rtol=1e-12``). Also: the argument errors and their messages, the config,
``fit``, dendrite's own files, and a ``.keras`` file continued in Keras.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dendrite as tf
from dendrite.core import Variable
from dendrite.optimizers import SGD, Adam, LossScaleOptimizer, RMSprop, schedules
from dendrite.optimizers._utils import variable_label
from dendrite.saving.keras_format.optimizer_map import keras_ordered
from dendrite.testing.keras_side import run_keras_side

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="needs Keras 3 (the keras package)"
)
SHAPES = [(3, 2), (2,), ()]
STEPS = 9
# per step: which variable gets a bad value ("inf", "nan") or no gradient ("none")
EVENTS = {2: (0, "inf"), 5: (1, "nan"), 6: (2, "none"), 7: (1, "-inf")}
# (id, inner optimizer class, inner arguments, schedule, LSO arguments, dtype)
CASES: list[tuple[str, str, dict[str, Any], dict | None, dict[str, Any], str]] = [
    ("sgd-growth", "SGD", {"learning_rate": 0.1, "momentum": 0.9}, None,
     {"initial_scale": 4.0, "dynamic_growth_steps": 2}, "float32"),
    ("adam-defaults", "Adam", {"learning_rate": 0.01}, None, {}, "float32"),
    ("adam-inner-loss-scale-factor", "Adam", {"loss_scale_factor": 4.0, "clipnorm": 1.0}, None,
     {"initial_scale": 16.0, "dynamic_growth_steps": 3}, "float32"),
    ("sgd-schedule", "SGD", {}, {"initial_learning_rate": 0.5, "decay_steps": 1,
     "decay_rate": 0.5}, {"initial_scale": 2.0**10, "dynamic_growth_steps": 1}, "float32"),
    ("rmsprop-float64", "RMSprop", {"learning_rate": 0.25, "rho": 0.75}, None,
     {"initial_scale": 8.0, "dynamic_growth_steps": 2}, "float64"),
]  # fmt: skip
BAD_ARGUMENTS: list[dict[str, Any]] = [
    {"dynamic": False},
    {"clipnorm": 1.0},
    {"use_ema": True},
    {"gradient_accumulation_steps": 2},
    {"loss_scale_factor": 2.0},
    {"unknown": 1, "other": 2},
    {"learning_rate": 0.1},
]
ACCEPTED_ARGUMENTS: list[dict[str, Any]] = [
    {"dynamic": True},
    {"weight_decay": None, "use_ema": False, "ema_momentum": 0.99, "clipnorm": None},
]

KERAS_RULES = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import keras
    from keras import ops
    root = sys.argv[1]
    with open(root + "/cases.json") as f:
        spec = json.load(f)
    out, info = {}, {}
    for case_id, cls, inner_kwargs, schedule, kwargs, dtype in spec["cases"]:
        data = np.load(root + "/" + case_id + ".npz", allow_pickle=False)
        n = len([k for k in data.files if k.startswith("w")])
        variables = [keras.Variable(data["w%d" % i], dtype=dtype, name="v%d" % i)
                     for i in range(n)]
        if schedule:
            inner_kwargs["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(
                **schedule)
        inner = getattr(keras.optimizers, cls)(**inner_kwargs)
        optimizer = keras.optimizers.LossScaleOptimizer(inner, **kwargs)
        info[case_id + "/scale_before"] = float(optimizer.scale_loss(3.0))
        for s in range(spec["steps"]):
            grads = [None if ("g%d_%d" % (s, i)) not in data.files
                     else ops.convert_to_tensor(data["g%d_%d" % (s, i)]) for i in range(n)]
            optimizer.apply(grads, variables)
            for i, v in enumerate(variables):
                out["%s__w%d_%d" % (case_id, s, i)] = ops.convert_to_numpy(v)
            out["%s__scale%d" % (case_id, s)] = ops.convert_to_numpy(optimizer.dynamic_scale)
            out["%s__counter%d" % (case_id, s)] = ops.convert_to_numpy(optimizer.step_counter)
            out["%s__iterations%d" % (case_id, s)] = ops.convert_to_numpy(optimizer.iterations)
        info[case_id + "/names"] = [v.name for v in optimizer.variables]
        for j, v in enumerate(optimizer.variables):
            out["%s__opt%d" % (case_id, j)] = ops.convert_to_numpy(v)
        info[case_id + "/scale_after"] = float(optimizer.scale_loss(3.0))
        info[case_id + "/learning_rate"] = float(optimizer.learning_rate)
        if not schedule:
            info[case_id + "/config"] = optimizer.get_config()
    errors = []
    for kwargs in spec["bad"] + spec["accepted"]:
        try:
            keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), **kwargs)
            errors.append(None)
        except Exception as error:
            errors.append([type(error).__name__, str(error)])
    info["errors"] = errors
    info["mixed_precision"] = (
        keras.mixed_precision.LossScaleOptimizer is keras.optimizers.LossScaleOptimizer)
    np.savez(root + "/keras.npz", **out)
    with open(root + "/info.json", "w") as f:
        json.dump(info, f)
    """
)


def _case_data(index: int, dtype: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(300 + index)
    data = {}
    for i, shape in enumerate(SHAPES):
        data[f"w{i}"] = rng.standard_normal(shape)
        for s in range(STEPS):
            g = rng.standard_normal(shape) * 8.0  # "scaled" gradients
            which, what = EVENTS.get(s, (None, None))
            if which == i:
                if what == "none":
                    continue
                g = np.asarray(g, dtype=float)
                g.flat[0] = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[what]
            data[f"g{s}_{i}"] = g
    return {k: np.asarray(v, dtype=dtype) for k, v in data.items()}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("loss_scale")
    for index, case in enumerate(CASES):
        np.savez(root / f"{case[0]}.npz", **_case_data(index, case[5]))
    spec = {
        "cases": [list(case) for case in CASES],
        "steps": STEPS,
        "bad": BAD_ARGUMENTS,
        "accepted": ACCEPTED_ARGUMENTS,
    }
    (root / "cases.json").write_text(json.dumps(spec))
    run_keras_side(KERAS_RULES, root, backend="torch")
    return {
        "arrays": np.load(root / "keras.npz", allow_pickle=False),
        "info": json.loads((root / "info.json").read_text()),
        "root": root,
    }


def _make(cls_name: str, inner_kwargs: dict, schedule: dict | None, kwargs: dict) -> Any:
    inner_kwargs = dict(inner_kwargs)
    if schedule:
        inner_kwargs["learning_rate"] = schedules.ExponentialDecay(**schedule)
    return LossScaleOptimizer(getattr(tf.optimizers, cls_name)(**inner_kwargs), **kwargs)


@needs_keras
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_steps_scale_and_state_as_keras(case, keras_results) -> None:
    case_id, cls_name, inner_kwargs, schedule, kwargs, dtype = case
    theirs, info = keras_results["arrays"], keras_results["info"]
    tolerance = {"rtol": 2e-5, "atol": 2e-6} if dtype == "float32" else {"rtol": 1e-12}
    with np.load(keras_results["root"] / f"{case_id}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    variables = [Variable(arrays[f"w{i}"].copy(), name=f"v{i}") for i in range(len(SHAPES))]
    optimizer = _make(cls_name, inner_kwargs, schedule, kwargs)
    assert optimizer.scale_loss(3.0) == info[f"{case_id}/scale_before"]
    for s in range(STEPS):
        grads = [arrays.get(f"g{s}_{i}") for i in range(len(SHAPES))]
        before = [v.data.copy() for v in variables]
        if s in EVENTS and EVENTS[s][1] == "none":
            with pytest.warns(UserWarning, match="Gradients do not exist"):
                optimizer.apply(grads, variables)
        else:
            optimizer.apply(grads, variables)
        for i, variable in enumerate(variables):
            expected = theirs[f"{case_id}__w{s}_{i}"]
            assert variable.data.dtype == expected.dtype
            np.testing.assert_allclose(variable.data, expected, **tolerance, err_msg=f"{s}, {i}")
        if s in EVENTS and EVENTS[s][1] != "none":  # skipped: nothing moved
            for variable, old in zip(variables, before):
                np.testing.assert_array_equal(variable.data, old)
        assert optimizer.dynamic_scale.data == theirs[f"{case_id}__scale{s}"], s
        assert optimizer.dynamic_scale.data.dtype == np.float32
        assert optimizer.step_counter.data == theirs[f"{case_id}__counter{s}"], s
        assert int(optimizer.iterations) == int(theirs[f"{case_id}__iterations{s}"]), s
    # the state: this optimizer's four variables in Keras' order, the inner one's by name
    names = info[f"{case_id}/names"]
    mine = optimizer.variables
    assert [v.name for v in mine[:4]] == names[:4]
    assert sorted(v.name for v in mine[4:]) == sorted(names[4:])
    by_name = {v.name: v for v in mine[4:]}
    for j, name in enumerate(names):
        variable = mine[j] if j < 4 else by_name[name]
        expected = theirs[f"{case_id}__opt{j}"]
        assert variable.data.shape == expected.shape, name
        assert variable.data.dtype.kind == expected.dtype.kind, name
        if name == "learning_rate":  # float32 in Keras, float64 in dendrite
            np.testing.assert_allclose(variable.data, expected, rtol=1e-7)
        else:
            np.testing.assert_allclose(variable.data, expected, **tolerance, err_msg=name)
    assert optimizer.scale_loss(3.0) == info[f"{case_id}/scale_after"]
    assert optimizer.learning_rate == pytest.approx(info[f"{case_id}/learning_rate"], rel=1e-7)
    keras_config = info.get(f"{case_id}/config")
    if keras_config is not None:
        config = optimizer.get_config()
        assert sorted(config) == sorted(keras_config)
        assert config["initial_scale"] == keras_config["initial_scale"]
        assert config["dynamic_growth_steps"] == keras_config["dynamic_growth_steps"]
        inner, keras_inner = config["inner_optimizer"], keras_config["inner_optimizer"]
        assert inner["class_name"] == keras_inner["class_name"]
        assert sorted(inner["config"]) == sorted(keras_inner["config"])
        for key, value in keras_inner["config"].items():
            if key == "name":  # Keras numbers the names of later instances ("adam_1")
                continue
            assert inner["config"][key] == pytest.approx(value, rel=1e-7), key


@needs_keras
@pytest.mark.parametrize("index", range(len(BAD_ARGUMENTS) + len(ACCEPTED_ARGUMENTS)))
def test_arguments_are_refused_as_keras_refuses_them(index, keras_results) -> None:
    kwargs = (BAD_ARGUMENTS + ACCEPTED_ARGUMENTS)[index]
    keras_error = keras_results["info"]["errors"][index]
    if keras_error is None:
        LossScaleOptimizer(SGD(), **kwargs)
        return
    with pytest.raises(Exception) as raised:  # noqa: PT011 - compared below
        LossScaleOptimizer(SGD(), **kwargs)
    assert [type(raised.value).__name__, str(raised.value)] == keras_error


@needs_keras
def test_keras_exports_it_in_mixed_precision_too(keras_results) -> None:
    # dendrite has no mixed_precision namespace (no float16 training); Keras exports the
    # same class under both names.
    assert keras_results["info"]["mixed_precision"] is True


# --- dendrite only ----------------------------------------------------------------------------
def test_defaults_and_dendrite_argument_checks() -> None:
    optimizer = LossScaleOptimizer(Adam())
    assert optimizer.get_config()["initial_scale"] == 32768.0
    assert optimizer.get_config()["dynamic_growth_steps"] == 2000
    assert optimizer.name == "loss_scale_optimizer"
    assert optimizer.scale_loss(2.0) == 65536.0  # initial_scale before it is built
    # Keras requires inner_optimizer; dendrite wraps RMSprop (compile's default) without it
    assert type(LossScaleOptimizer().inner_optimizer) is RMSprop
    assert type(tf.optimizers.get("lossscaleoptimizer")) is LossScaleOptimizer
    with pytest.raises(TypeError, match="inner_optimizer"):
        LossScaleOptimizer("adam")
    for bad in (0.0, -1.0, float("inf"), "big"):
        with pytest.raises(ValueError, match="initial_scale"):
            LossScaleOptimizer(SGD(), initial_scale=bad)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="dynamic_growth_steps"):
            LossScaleOptimizer(SGD(), dynamic_growth_steps=bad)


def test_delegates_to_the_inner_optimizer() -> None:
    inner = SGD(0.1, momentum=0.5, loss_scale_factor=8.0)
    optimizer = LossScaleOptimizer(inner, initial_scale=2.0)
    assert inner.loss_scale_factor is None  # not unscaled twice
    with pytest.raises(ValueError, match="must already be built"):
        optimizer.apply([np.ones(2)])
    w = Variable(np.zeros(2, "float32"), name="w")
    assert optimizer.apply_gradients([(np.ones(2, "float32"), w)]) is inner.iterations
    np.testing.assert_allclose(w.data, -0.05)  # 0.1 * (1 / 2)
    assert optimizer.iterations is inner.iterations and int(optimizer.iterations) == 1
    optimizer.learning_rate = 0.5
    assert inner.learning_rate == optimizer.learning_rate == 0.5
    names = [v.name for v in optimizer.variables]
    assert names == [
        "iteration",
        "learning_rate",
        "step_counter",
        "dynamic_scale",
        "iteration",
        "learning_rate",
        "w_momentum",
    ]
    state = optimizer.get_weights()
    assert len(state) == 7 and state[3] == 2.0
    optimizer.apply([tf.convert_to_tensor(np.array([np.inf, 1.0], "float32"))])
    assert float(optimizer.dynamic_scale.data) == 1.0 and int(optimizer.iterations) == 1
    optimizer.set_weights(state)
    assert float(optimizer.dynamic_scale.data) == 2.0
    store: dict[str, Any] = {}
    optimizer.save_own_variables(store)
    assert len(store) == 7
    other = LossScaleOptimizer(SGD(0.1, momentum=0.5))
    other.build([w])
    other.load_own_variables(store)
    for a, b in zip(other.variables, optimizer.variables):
        np.testing.assert_array_equal(a.data, b.data)
    assert "loss_scale_optimizer" in repr(optimizer)


def test_growth_and_shrink_over_many_steps() -> None:
    w = Variable(np.zeros(3, "float32"))
    optimizer = LossScaleOptimizer(SGD(0.01), initial_scale=1.0, dynamic_growth_steps=3)
    scales = []
    for step in range(10):
        grad = np.full(3, np.nan if step == 7 else 1.0, "float32")
        optimizer.apply([grad], [w])
        scales.append(float(optimizer.dynamic_scale.data))
    assert scales == [1, 1, 2, 2, 2, 4, 4, 2, 2, 2]
    assert int(optimizer.step_counter.data) == 2 and int(optimizer.iterations) == 9


def test_config_round_trips_with_the_inner_optimizer() -> None:
    schedule = schedules.ExponentialDecay(0.1, 10, 0.5)
    optimizer = LossScaleOptimizer(
        Adam(learning_rate=schedule, amsgrad=True), initial_scale=128.0, name="lso"
    )
    config = optimizer.get_config()
    assert config["inner_optimizer"]["class_name"] == "Adam"
    entry = json.loads(json.dumps(tf.optimizers.serialize(optimizer)))
    clone = tf.optimizers.deserialize(entry)
    assert type(clone) is LossScaleOptimizer and type(clone.inner_optimizer) is Adam
    assert clone.get_config() == config
    # as Keras writes it: a backend module, and the base arguments older Keras wrote
    keras_style = dict(config, weight_decay=None, use_ema=False, clipnorm=None)
    keras_style["inner_optimizer"] = dict(
        config["inner_optimizer"], module="keras.src.backend.torch.optimizers.torch_adam"
    )
    assert LossScaleOptimizer.from_config(keras_style).get_config() == config


def test_a_custom_loop_scales_like_keras_train_step() -> None:
    """Keras' train_step: loss -> scale_loss -> gradients -> apply: the update is plain
    SGD's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    results = []
    for optimizer in (SGD(0.1), LossScaleOptimizer(SGD(0.1), initial_scale=2.0**12)):
        tf.keras.utils.set_random_seed(1)
        model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        weights = model.trainable_weights
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.ops.mean((model(x) - y) ** 2)
                scaled = optimizer.scale_loss(loss)
            optimizer.apply(tape.gradient(scaled, weights), weights)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_train_on_batch_scales_the_loss_as_keras_does() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    deltas = []
    scale = 2.0**12
    for optimizer in (SGD(0.1), LossScaleOptimizer(SGD(0.1), initial_scale=scale)):
        tf.keras.utils.set_random_seed(1)
        model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        before = model.get_weights()
        model.train_on_batch(x, y)
        deltas.append([a - b for a, b in zip(model.get_weights(), before)])
    plain, scaled = deltas
    # Keras' train_step scales the loss before differentiating: the same step either way
    for s, p in zip(scaled, plain):
        np.testing.assert_allclose(s, p, rtol=1e-5, atol=1e-8)


def test_fit_reduces_the_loss() -> None:
    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ rng.standard_normal((4, 1)) + 0.5).astype("float32")
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(8, "tanh"), tf.keras.layers.Dense(1)]
    )
    model.compile(optimizer=LossScaleOptimizer(Adam(0.05), dynamic_growth_steps=5), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert int(model.optimizer.iterations) == 60
    assert float(model.optimizer.dynamic_scale.data) > 2.0**15  # grew every 5 steps


def _small_model() -> Any:
    return tf.keras.Sequential(
        [
            tf.keras.Input((5,)),
            tf.keras.layers.Dense(4, activation="tanh"),
            tf.keras.layers.Dense(2),
        ]
    )


def _trained(seed: int, initial_scale: float = 64.0) -> tuple[Any, np.ndarray, np.ndarray]:
    """Three steps (the scale doubles once), then one skipped (it halves back)."""
    tf.keras.utils.set_random_seed(0)
    model = _small_model()
    model.compile(
        optimizer=LossScaleOptimizer(
            Adam(0.01), initial_scale=initial_scale, dynamic_growth_steps=2
        ),
        loss="mse",
    )
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 5)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    for _ in range(3):
        model.train_on_batch(x, y)
    # a skipped step: the scale halves and the counter restarts
    weights = model.trainable_weights
    model.optimizer.apply([np.full(w.data.shape, np.inf, "float32") for w in weights], weights)
    return model, x, y


def test_dendrite_files_round_trip_the_state(tmp_path: Path) -> None:
    model, x, y = _trained(2)
    assert float(model.optimizer.dynamic_scale.data) == 64.0  # 64 -> 128 -> 64
    model.save(tmp_path / "m.dendrite")
    loaded = tf.keras.models.load_model(tmp_path / "m.dendrite")
    assert type(loaded.optimizer) is LossScaleOptimizer
    assert type(loaded.optimizer.inner_optimizer) is Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) == 14
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.name == b.name and a.data.dtype == b.data.dtype
        np.testing.assert_array_equal(a.data, b.data)
    for _ in range(3):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(loaded.optimizer.dynamic_scale.data) == float(model.optimizer.dynamic_scale.data)


KERAS_CONTINUES = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import keras
    from keras import ops
    root = sys.argv[1]
    model = keras.models.load_model(root + "/dendrite.keras")
    x = np.load(root + "/x.npy", allow_pickle=False)
    y = np.load(root + "/y.npy", allow_pickle=False)
    np.savez(root + "/keras_loaded_state.npz",
             *[ops.convert_to_numpy(v) for v in model.optimizer.variables])
    model.train_on_batch(x, y)
    np.savez(root + "/keras_step1.npz", *[np.asarray(w) for w in model.get_weights()])
    model.save(root + "/keras.keras")
    model.train_on_batch(x, y)
    np.savez(root + "/keras_step2.npz", *[np.asarray(w) for w in model.get_weights()])
    """
)


def _keras_order(optimizer: LossScaleOptimizer) -> list[str]:
    """Keras' order: this optimizer's variables, then Adam's, momentum and velocity
    interleaved variable by variable."""
    inner = optimizer.inner_optimizer
    labels = [variable_label(v).replace("/", "_") for v in inner._trainable_variables]
    own = [v.name for v in optimizer.variables[: len(optimizer.variables) - len(inner.variables)]]
    return [
        *own,
        "iteration",
        "learning_rate",
        *(f"{label}_{kind}" for label in labels for kind in ("momentum", "velocity")),
    ]


@needs_keras
def test_training_continues_in_keras(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    model, x, y = _trained(1, initial_scale=1.0)
    assert float(model.optimizer.dynamic_scale.data) == 1.0
    mine = keras_ordered(model.optimizer, model.trainable_weights)
    assert [v.name for v in mine] == _keras_order(model.optimizer)
    model.save(tmp_path / "dendrite.keras")
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    np.save(tmp_path / "y.npy", y, allow_pickle=False)
    run_keras_side(KERAS_CONTINUES, tmp_path)
    with np.load(tmp_path / "keras_loaded_state.npz", allow_pickle=False) as saved:
        theirs = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert len(theirs) == len(mine)
    for variable, array in zip(mine, theirs):
        np.testing.assert_allclose(variable.data, array, rtol=1e-7, err_msg=variable.name)
    model.train_on_batch(x, y)
    with np.load(tmp_path / "keras_step1.npz", allow_pickle=False) as saved:
        after = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    for a, b in zip(model.get_weights(), after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
    # and dendrite continues from Keras' file as Keras continues
    loaded = tf.keras.models.load_model(tmp_path / "keras.keras")
    assert type(loaded.optimizer) is LossScaleOptimizer
    assert type(loaded.optimizer.inner_optimizer) is Adam
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=2e-6, err_msg=a.name)
    loaded.train_on_batch(x, y)
    with np.load(tmp_path / "keras_step2.npz", allow_pickle=False) as saved:
        after = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    for a, b in zip(loaded.get_weights(), after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
