"""Adafactor and Ftrl against real Keras 3 (in a subprocess, KERAS_BACKEND=torch).

The same variables (0-D to 3-D, float32 and float64) take the same gradient sequences in
both, for every option that changes the rule, with and without a learning-rate schedule;
the weights after every step and the optimizer's state in Keras' order must agree. Then a
``.keras`` file goes from dendrite to Keras and back, training continuing on each side to
the same weights; and the usual: fit lowers the loss, zero gradients, dendrite's own files,
Keras' argument checks.
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
from dendrite.optimizers import Adafactor, Ftrl, schedules
from dendrite.saving.keras_format.optimizer_map import keras_ordered
from dendrite.testing.keras_side import run_keras_side

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="needs Keras 3 (the keras package)"
)
SHAPES = [(5,), (4, 3), (2, 3, 4), ()]
STEPS = 6
DECAY = {"initial_learning_rate": 0.5, "decay_steps": 2, "decay_rate": 0.5}
# Keras keeps learning rates in float32, and its Constant initializer rounds Ftrl's
# initial_accumulator_value to float32 even for float64 variables (dendrite keeps the value
# given): float64 cases use values float32 holds exactly.
EXACT_DECAY = {**DECAY, "staircase": True}
ACCUMULATE = {"gradient_accumulation_steps": 3}
# (id, class, constructor arguments, schedule arguments, dtype, how the data are made)
CASES: list[tuple[str, str, dict[str, Any], dict | None, str, str]] = [
    ("adafactor-default", "Adafactor", {}, None, "float32", "random"),
    ("adafactor-lr-above-1/sqrt(t)", "Adafactor", {"learning_rate": 0.5}, None, "float32", ""),
    (
        "adafactor-no-relative-step",
        "Adafactor",
        {"learning_rate": 0.5, "relative_step": False},
        None,
        "float32",
        "",
    ),
    (
        "adafactor-options",
        "Adafactor",
        {
            "learning_rate": 0.2,
            "beta_2_decay": -0.5,
            "epsilon_1": 1e-3,
            "epsilon_2": 0.05,
            "clip_threshold": 0.1,
        },
        None,
        "float32",
        "",
    ),
    ("adafactor-schedule", "Adafactor", {}, DECAY, "float32", ""),
    (
        "adafactor-zero-weights",
        "Adafactor",
        {"learning_rate": 0.1, "epsilon_2": 0.01},
        None,
        "float32",
        "zero-weights",
    ),
    ("adafactor-zero-gradients", "Adafactor", {"learning_rate": 0.3}, None, "float32", "zero"),
    (
        "adafactor-float64",
        "Adafactor",
        {"learning_rate": 0.25, "clip_threshold": 0.5, "beta_2_decay": -0.6},
        None,
        "float64",
        "",
    ),
    ("adafactor-float64-schedule", "Adafactor", {}, EXACT_DECAY, "float64", ""),
    (
        "adafactor-decay-clipnorm",
        "Adafactor",
        {"learning_rate": 0.3, "weight_decay": 0.05, "clipnorm": 1.0},
        None,
        "float32",
        "",
    ),
    (
        "adafactor-accumulation",
        "Adafactor",
        {"learning_rate": 0.3, "gradient_accumulation_steps": 2},
        None,
        "float32",
        "",
    ),
    # Keras counts updates, not steps, in the other optimizers' rules too (bias corrections)
    *(
        (
            f"{name.lower()}-accumulation",
            name,
            {"learning_rate": 0.1, **ACCUMULATE},
            None,
            "float32",
            "",
        )
        for name in ("Adam", "AdamW", "Nadam", "Adamax", "Lamb")
    ),
    ("ftrl-default", "Ftrl", {}, None, "float32", ""),
    (
        "ftrl-l1-l2",
        "Ftrl",
        {
            "learning_rate": 0.1,
            "l1_regularization_strength": 0.05,
            "l2_regularization_strength": 0.1,
        },
        None,
        "float32",
        "",
    ),
    (
        "ftrl-fixed-rate",
        "Ftrl",
        {"learning_rate": 0.1, "learning_rate_power": 0.0, "initial_accumulator_value": 0.0},
        None,
        "float32",
        "",
    ),
    (
        "ftrl-power-1",
        "Ftrl",
        {"learning_rate": 0.1, "learning_rate_power": -1.0, "initial_accumulator_value": 0.5},
        None,
        "float32",
        "",
    ),
    (
        "ftrl-shrinkage-beta",
        "Ftrl",
        {"learning_rate": 0.1, "l2_shrinkage_regularization_strength": 0.1, "beta": 0.5},
        None,
        "float32",
        "",
    ),
    ("ftrl-zero-accumulator", "Ftrl", {"initial_accumulator_value": 0.0}, None, "float32", ""),
    ("ftrl-schedule", "Ftrl", {"l1_regularization_strength": 0.01}, DECAY, "float32", ""),
    ("ftrl-zero-gradients", "Ftrl", {"learning_rate": 0.1}, None, "float32", "zero"),
    (
        "ftrl-float64",
        "Ftrl",
        {
            "learning_rate": 0.25,
            "learning_rate_power": -0.7,
            "initial_accumulator_value": 0.25,
            "l1_regularization_strength": 0.02,
            "l2_regularization_strength": 0.01,
            "l2_shrinkage_regularization_strength": 0.05,
            "beta": 0.3,
        },
        None,
        "float64",
        "",
    ),
    (
        "ftrl-float64-schedule",
        "Ftrl",
        {"beta": 0.1, "initial_accumulator_value": 0.125},
        EXACT_DECAY,
        "float64",
        "",
    ),
    ("ftrl-decay-clipvalue", "Ftrl", {"weight_decay": 0.1, "clipvalue": 0.5}, None, "float32", ""),
]
# Invalid constructor arguments: dendrite must raise what Keras raises.
BAD_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("Ftrl", {"initial_accumulator_value": -0.1}),
    ("Ftrl", {"learning_rate_power": 0.5}),
    ("Ftrl", {"l1_regularization_strength": -1.0}),
    ("Ftrl", {"l2_regularization_strength": -1.0}),
    ("Ftrl", {"l2_shrinkage_regularization_strength": -1.0}),
    ("Ftrl", {"learning_rate_power": None}),
    ("Ftrl", {"l1_regularization_strength": "0.1"}),
    ("Ftrl", {"clipnorm": 1.0, "clipvalue": 1.0}),
    ("Adafactor", {"clipnorm": 1.0, "global_clipnorm": 1.0}),
    ("Adafactor", {"learning_rate": "fast"}),
    ("Adafactor", {"unknown_argument": 1.0}),
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
    out = {}
    for case_id, cls, kwargs, schedule, dtype in spec["cases"]:
        data = np.load(root + "/" + case_id + ".npz", allow_pickle=False)
        n = len([k for k in data.files if k.startswith("w")])
        variables = [keras.Variable(data["w%d" % i], dtype=dtype) for i in range(n)]
        if schedule:
            kwargs["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(**schedule)
        optimizer = getattr(keras.optimizers, cls)(**kwargs)
        steps = len([k for k in data.files if k.startswith("g") and k.endswith("_0")])
        for s in range(steps):
            grads = [ops.convert_to_tensor(data["g%d_%d" % (s, i)]) for i in range(n)]
            optimizer.apply(grads, variables)
            for i, v in enumerate(variables):
                out["%s__w%d_%d" % (case_id, s, i)] = ops.convert_to_numpy(v)
        for j, v in enumerate(optimizer.variables):
            out["%s__opt%d" % (case_id, j)] = ops.convert_to_numpy(v)
    errors = []
    for cls, kwargs in spec["bad"]:
        try:
            getattr(keras.optimizers, cls)(**kwargs)
            errors.append(None)
        except Exception as error:
            errors.append(type(error).__name__)
    np.savez(root + "/keras.npz", **out)
    with open(root + "/errors.json", "w") as f:
        json.dump(errors, f)
    """
)


def _key(case_id: str) -> str:
    return case_id.replace("/", "_")


def _case_data(index: int, dtype: str, how: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + index)
    data = {}
    for i, shape in enumerate(SHAPES):
        w = rng.standard_normal(shape)
        data[f"w{i}"] = np.zeros(shape) if how == "zero-weights" else w
        for s in range(STEPS):
            g = rng.standard_normal(shape)
            # "zero": variable 1 never has a gradient, and no variable on step 2
            if how == "zero" and (i == 1 or s == 2):
                g = np.zeros(shape)
            data[f"g{s}_{i}"] = g
    return {k: np.asarray(v, dtype=dtype) for k, v in data.items()}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Keras' results: every case on the torch backend, the float64 cases also on the
    TensorFlow backend where it is installed (see ``_expected``)."""
    results: dict[str, Any] = {}
    backends = ["torch"] + (["tensorflow"] if importlib.util.find_spec("tensorflow") else [])
    for backend in backends:
        root = tmp_path_factory.mktemp(f"adafactor_ftrl_{backend}")
        cases = [c for c in CASES if backend == "torch" or c[4] == "float64"]
        for case_id, _, _, _, dtype, how in cases:
            data = _case_data(CASES.index(next(c for c in CASES if c[0] == case_id)), dtype, how)
            np.savez(root / f"{_key(case_id)}.npz", **data)
        spec = {
            "cases": [[_key(c[0]), c[1], c[2], c[3], c[4]] for c in cases],
            "bad": [list(bad) for bad in BAD_ARGUMENTS],
        }
        (root / "cases.json").write_text(json.dumps(spec))
        run_keras_side(KERAS_RULES, root, backend=backend)
        results[backend] = np.load(root / "keras.npz", allow_pickle=False)
        results[f"{backend}-root"] = root
        results[f"{backend}-errors"] = json.loads((root / "errors.json").read_text())
    return results


def _expected(results: dict[str, Any], dtype: str) -> tuple[Any, dict[str, float]]:
    """Keras' arrays and the tolerance to compare with.

    On the torch backend Keras computes some float64 scalars in float32 (its
    ``result_type(float64, float64)`` there is float32: Adafactor's ``rho``, ``alpha`` and
    clipping factor), so float64 is compared with the TensorFlow backend, which keeps
    float64 throughout, when it is installed.
    """
    if dtype == "float32":
        return results["torch"], {"rtol": 2e-5, "atol": 2e-6}
    if "tensorflow" in results:
        return results["tensorflow"], {"rtol": 1e-12, "atol": 1e-14}
    return results["torch"], {"rtol": 1e-5, "atol": 1e-7}


@needs_keras
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_steps_and_state_as_keras(case, keras_results) -> None:
    case_id, cls_name, kwargs, schedule, dtype, _ = case
    theirs, tolerance = _expected(keras_results, dtype)
    key = _key(case_id)
    with np.load(keras_results["torch-root"] / f"{key}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    variables = [Variable(arrays[f"w{i}"].copy(), name=f"v{i}") for i in range(len(SHAPES))]
    kwargs = dict(kwargs)
    if schedule:
        kwargs["learning_rate"] = schedules.ExponentialDecay(**schedule)
    optimizer = getattr(tf.optimizers, cls_name)(**kwargs)
    for s in range(STEPS):
        optimizer.apply([arrays[f"g{s}_{i}"] for i in range(len(SHAPES))], variables)
        for i, variable in enumerate(variables):
            expected = theirs[f"{key}__w{s}_{i}"]
            assert variable.data.dtype == np.dtype(dtype) == expected.dtype
            np.testing.assert_allclose(
                variable.data, expected, **tolerance, err_msg=f"step {s}, variable {i}"
            )
    state = keras_ordered(optimizer, variables)
    keras_state = [k for k in theirs.files if k.startswith(f"{key}__opt")]
    assert len(state) == len(keras_state)
    for j, variable in enumerate(state):
        expected = theirs[f"{key}__opt{j}"]
        assert variable.data.shape == expected.shape, (j, variable.name)
        assert variable.data.dtype.kind == expected.dtype.kind, (j, variable.name)
        if j == 1:  # the learning rate: float32 in Keras, float64 in dendrite
            np.testing.assert_allclose(variable.data, expected, rtol=1e-7)
        else:
            np.testing.assert_allclose(variable.data, expected, **tolerance, err_msg=variable.name)


@needs_keras
@pytest.mark.parametrize("index", range(len(BAD_ARGUMENTS)))
def test_bad_arguments_raise_what_keras_raises(index, keras_results) -> None:
    cls_name, kwargs = BAD_ARGUMENTS[index]
    keras_error = keras_results["torch-errors"][index]
    assert keras_error is not None
    with pytest.raises(Exception) as raised:  # noqa: PT011 - compared by type name below
        getattr(tf.keras.optimizers, cls_name)(**kwargs)
    assert type(raised.value).__name__ == keras_error


def test_adafactor_refuses_non_numbers_at_once() -> None:
    # Keras accepts them and fails with a TypeError inside the first update.
    for name in ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold"):
        with pytest.raises(TypeError, match=name):
            Adafactor(**{name: "1e-3"})
    with pytest.raises(TypeError, match="beta"):
        Ftrl(beta="0.1")


# --- .keras files: dendrite -> Keras -> dendrite ---------------------------------------------
KERAS_CONTINUES = textwrap.dedent(
    """
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
FILE_OPTIMIZERS = {
    "adafactor": lambda: Adafactor(learning_rate=0.05, clip_threshold=0.5),
    "ftrl": lambda: Ftrl(learning_rate=0.05, l1_regularization_strength=0.01, beta=0.2),
    "ftrl-schedule": lambda: Ftrl(learning_rate=schedules.ExponentialDecay(**DECAY)),
}


def _small_model() -> Any:
    """Kernels of rank 3 (Conv1D) and 2 (Dense), biases of rank 1."""
    return tf.keras.Sequential(
        [
            tf.keras.Input((6, 3)),
            tf.keras.layers.Conv1D(4, 3, activation="tanh"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(2),
        ]
    )


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@needs_keras
@pytest.mark.parametrize("make", FILE_OPTIMIZERS.values(), ids=FILE_OPTIMIZERS.keys())
def test_training_continues_across_keras_files(make, tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    tf.keras.utils.set_random_seed(0)
    model = _small_model()
    model.compile(optimizer=make(), loss="mse")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "dendrite.keras")
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    np.save(tmp_path / "y.npy", y, allow_pickle=False)
    run_keras_side(KERAS_CONTINUES, tmp_path)

    # Keras read dendrite's state in its own order
    mine = keras_ordered(model.optimizer, model.trainable_weights)
    theirs = _arrays(tmp_path / "keras_loaded_state.npz")
    assert [v.data.shape for v in mine] == [a.shape for a in theirs]
    for variable, array in zip(mine, theirs):
        np.testing.assert_allclose(variable.data, array, rtol=1e-7, err_msg=variable.name)
    # one step on each side from dendrite's file
    model.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), _arrays(tmp_path / "keras_step1.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # dendrite continues from Keras' file as Keras continues
    loaded = tf.keras.models.load_model(tmp_path / "keras.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert int(loaded.optimizer.iterations.data) == 4
    loaded.train_on_batch(x, y)
    model.train_on_batch(x, y)
    for a, b, c in zip(
        loaded.get_weights(), _arrays(tmp_path / "keras_step2.npz"), model.get_weights()
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


# --- dendrite only ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", FILE_OPTIMIZERS.values(), ids=FILE_OPTIMIZERS.keys())
def test_dendrite_files_round_trip_the_state(make, tmp_path: Path) -> None:
    tf.keras.utils.set_random_seed(0)
    model = _small_model()
    model.compile(optimizer=make(), loss="mse")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.dendrite")
    loaded = tf.keras.models.load_model(tmp_path / "m.dendrite")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.data.dtype == b.data.dtype
        np.testing.assert_array_equal(a.data, b.data)
    for _ in range(2):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "optimizer", [Adafactor(learning_rate=0.1), Ftrl(learning_rate=0.5)], ids=["adafactor", "ftrl"]
)
def test_fit_reduces_the_loss(optimizer) -> None:
    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ rng.standard_normal((4, 1)) + 0.5).astype("float32")
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(8, "tanh"), tf.keras.layers.Dense(1)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses


def test_adafactor_zero_gradients_leave_weights_and_stay_finite() -> None:
    """Past the base class' subnormal flush (every 64 steps): v stays at epsilon_1."""
    variables = [Variable(np.ones(shape, "float32")) for shape in SHAPES]
    optimizer = Adafactor(learning_rate=0.1)
    for _ in range(130):
        optimizer.apply([np.zeros(v.data.shape, "float32") for v in variables], variables)
    for variable in variables:
        np.testing.assert_array_equal(variable.data, 1.0)
    assert all(np.isfinite(v.data).all() for v in optimizer.variables)
    optimizer.apply([np.full(v.data.shape, 0.1, "float32") for v in variables], variables)
    assert all(np.isfinite(v.data).all() and (v.data < 1).all() for v in variables)


@pytest.mark.parametrize("cls", [Adafactor, Ftrl])
def test_float64_variables_keep_float64_state(cls) -> None:
    variables = [Variable(np.ones(shape, "float64")) for shape in SHAPES]
    optimizer = cls()
    optimizer.apply([np.full(v.data.shape, 0.1) for v in variables], variables)
    assert all(v.data.dtype == np.float64 for v in variables)
    slots = optimizer.variables[2:]
    assert all(v.data.dtype in (np.float64, np.int32) for v in slots)
    assert sum(v.data.dtype == np.float64 for v in slots) == (
        len(SHAPES) + 2 * sum(len(s) >= 2 for s in SHAPES) if cls is Adafactor else 2 * len(SHAPES)
    )


@pytest.mark.parametrize("cls", [Adafactor, Ftrl])
def test_config_round_trips_through_the_registry(cls) -> None:
    schedule = schedules.ExponentialDecay(**DECAY)
    optimizer = cls(learning_rate=schedule, clipnorm=2.0, name="custom")
    entry = tf.keras.optimizers.serialize(optimizer)
    clone = tf.keras.optimizers.deserialize(entry)
    assert type(clone) is cls and clone.get_config() == optimizer.get_config()
    assert type(tf.keras.optimizers.get(cls.__name__.lower())) is cls
    assert cls().name == cls.__name__.lower()
