"""Muon and ScheduleFreeAdamW against real Keras 3 (in a subprocess, KERAS_BACKEND=torch).

The same variables (0-D to 3-D; a tall, a wide, an "embedding" and an "output" matrix, so
that Muon's rules send some to Newton-Schulz and some to AdamW) take the same gradient
sequences in both, for every option that changes the rule; the weights after every step
and the optimizer's state (matched by name) must agree. Tolerances: float32 ``rtol=2e-5``,
``atol=2e-6`` for ScheduleFreeAdamW, and ``atol=1e-5`` for Muon, whose Newton-Schulz
matrix products sum in a different order in NumPy and torch (its updates are of size
``lr``, so this is ``1e-4`` of a step); float64 against Keras' TensorFlow backend, which
keeps float64 throughout, when it is installed (``rtol=1e-12``), else torch at float32's
tolerance. Then: fit lowers the loss, config round trips, dendrite's own files resume
identically, ``.keras`` files continue in Keras, argument errors.
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
from dendrite.optimizers import Muon, ScheduleFreeAdamW, schedules
from dendrite.optimizers._utils import variable_label
from dendrite.saving.keras_format.optimizer_map import keras_ordered
from dendrite.testing.keras_side import run_keras_side

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="needs Keras 3 (the keras package)"
)
# (name, shape): Keras variable names cannot hold "/", and Muon matches on the path.
VARIABLES = [
    ("hidden_kernel", (4, 3)),  # tall: Newton-Schulz on its transpose
    ("wide_kernel", (3, 5)),
    ("bias", (5,)),  # 1-D: AdamW
    ("conv_kernel", (2, 3, 4)),  # 3-D: AdamW
    ("embedding_table", (6, 4)),  # AdamW while exclude_embeddings
    ("output_dense_kernel", (5, 2)),  # AdamW with exclude_layers=["output"]
    ("scale", ()),
]
STEPS = 6
DECAY = {"initial_learning_rate": 0.05, "decay_steps": 2, "decay_rate": 0.5}
EXACT_DECAY = {
    "initial_learning_rate": 0.25,
    "decay_steps": 2,
    "decay_rate": 0.5,
    "staircase": True,
}
# (id, class, constructor arguments, schedule, dtype, data, exclude_from_weight_decay names)
CASES: list[tuple[str, str, dict[str, Any], dict | None, str, str, list[str]]] = [
    ("muon-default", "Muon", {}, None, "float32", "", []),
    ("muon-lr", "Muon", {"learning_rate": 0.05}, None, "float32", "", []),
    (
        "muon-no-nesterov-no-rms",
        "Muon",
        {"learning_rate": 0.05, "nesterov": False, "rms_rate": None},
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-exclusions",
        "Muon",
        {
            "learning_rate": 0.02,
            "exclude_layers": ["output", "^wide"],
            "exclude_embeddings": False,
            "adam_lr_ratio": 0.1,
        },
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-options",
        "Muon",
        {
            "learning_rate": 0.03,
            "momentum": 0.8,
            "ns_steps": 3,
            "adam_beta_1": 0.8,
            "adam_beta_2": 0.99,
            "epsilon": 1e-4,
            "muon_a": 2.0,
            "muon_b": -1.5,
            "muon_c": 0.5,
            "rms_rate": 0.5,
        },
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-weight-decay",
        "Muon",
        {"learning_rate": 0.05, "weight_decay": 0.1, "adam_weight_decay": None},
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-adam-decay-only",
        "Muon",
        {"learning_rate": 0.05, "weight_decay": None, "adam_weight_decay": 0.2},
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-decay-exclusions",
        "Muon",
        {"learning_rate": 0.05, "weight_decay": 0.3, "adam_weight_decay": 0.2},
        None,
        "float32",
        "",
        ["bias", "hidden"],
    ),
    ("muon-schedule", "Muon", {}, DECAY, "float32", "", []),
    (
        "muon-accumulation",
        "Muon",
        {"learning_rate": 0.05, "gradient_accumulation_steps": 2},
        None,
        "float32",
        "",
        [],
    ),
    (
        "muon-clip-ema",
        "Muon",
        {"learning_rate": 0.05, "global_clipnorm": 1.0, "use_ema": True},
        None,
        "float32",
        "",
        [],
    ),
    ("muon-zero-gradients", "Muon", {"learning_rate": 0.05}, None, "float32", "zero", []),
    ("muon-float64", "Muon", {"learning_rate": 0.25}, None, "float64", "", []),
    ("muon-float64-schedule", "Muon", {}, EXACT_DECAY, "float64", "", []),
    ("sf-default", "ScheduleFreeAdamW", {}, None, "float32", "", []),
    ("sf-lr", "ScheduleFreeAdamW", {"learning_rate": 0.1}, None, "float32", "", []),
    (
        "sf-warmup",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1, "warmup_steps": 4},
        None,
        "float32",
        "",
        [],
    ),
    (
        "sf-options",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
        None,
        "float32",
        "",
        [],
    ),
    (
        "sf-weight-decay",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1, "weight_decay": 0.1},
        None,
        "float32",
        "",
        ["bias"],
    ),
    ("sf-schedule", "ScheduleFreeAdamW", {}, DECAY, "float32", "", []),
    (
        "sf-accumulation",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1, "gradient_accumulation_steps": 3},
        None,
        "float32",
        "",
        [],
    ),
    (
        "sf-clipvalue-ema",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1, "clipvalue": 0.5, "use_ema": True, "ema_momentum": 0.5},
        None,
        "float32",
        "",
        [],
    ),
    (
        "sf-zero-gradients",
        "ScheduleFreeAdamW",
        {"learning_rate": 0.1},
        None,
        "float32",
        "zero",
        [],
    ),
    # Keras on TensorFlow converts Python floats through float32 (its beta_2 = 0.999 is
    # 0.9990000128...), and on torch computes the warmup factor in float32: float64 cases
    # use values float32 holds exactly (dendrite keeps the float64 values given).
    (
        "sf-float64",
        "ScheduleFreeAdamW",
        {
            "learning_rate": 0.25,
            "warmup_steps": 3,
            "beta_1": 0.75,
            "beta_2": 1 - 2**-10,
            "epsilon": 2**-27,
        },
        None,
        "float64",
        "",
        [],
    ),
]
# Invalid constructor arguments Keras refuses: dendrite must raise the same type.
BAD_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("Muon", {"clipnorm": 1.0, "clipvalue": 1.0}),
    ("Muon", {"learning_rate": "fast"}),
    ("Muon", {"unknown_argument": 1.0}),
    ("ScheduleFreeAdamW", {"clipnorm": 1.0, "global_clipnorm": 1.0}),
    ("ScheduleFreeAdamW", {"gradient_accumulation_steps": 1}),
    ("ScheduleFreeAdamW", {"unknown_argument": 1.0}),
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
    names = {}
    for case_id, cls, kwargs, schedule, dtype, exclude in spec["cases"]:
        data = np.load(root + "/" + case_id + ".npz", allow_pickle=False)
        variables = [
            keras.Variable(data["w_" + name], dtype=dtype, name=name)
            for name in spec["names"]
        ]
        if schedule:
            kwargs["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(**schedule)
        optimizer = getattr(keras.optimizers, cls)(**kwargs)
        if exclude:
            optimizer.exclude_from_weight_decay(var_names=exclude)
        for s in range(spec["steps"]):
            grads = [ops.convert_to_tensor(data["g%d_%s" % (s, n)]) for n in spec["names"]]
            optimizer.apply(grads, variables)
            for v, name in zip(variables, spec["names"]):
                out["%s__w%d_%s" % (case_id, s, name)] = ops.convert_to_numpy(v)
        names[case_id] = [v.name for v in optimizer.variables]
        for j, v in enumerate(optimizer.variables):
            out["%s__opt%d" % (case_id, j)] = ops.convert_to_numpy(v)
        names[case_id + "/config"] = optimizer.get_config() if not schedule else None
    errors = []
    for cls, kwargs in spec["bad"]:
        try:
            getattr(keras.optimizers, cls)(**kwargs)
            errors.append(None)
        except Exception as error:
            errors.append(type(error).__name__)
    np.savez(root + "/keras.npz", **out)
    with open(root + "/names.json", "w") as f:
        json.dump({"names": names, "errors": errors}, f)
    """
)


def _case_data(index: int, dtype: str, how: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(200 + index)
    data = {}
    for i, (name, shape) in enumerate(VARIABLES):
        data[f"w_{name}"] = rng.standard_normal(shape)
        for s in range(STEPS):
            g = rng.standard_normal(shape)
            # "zero": one matrix never has a gradient, and no variable on step 2
            if how == "zero" and (i == 1 or s == 2):
                g = np.zeros(shape)
            data[f"g{s}_{name}"] = g
    return {k: np.asarray(v, dtype=dtype) for k, v in data.items()}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Keras' results: every case on the torch backend, ScheduleFreeAdamW's float64 cases
    also on the TensorFlow backend where it is installed (see ``_expected``). Keras' Muon
    cannot update float64 variables on TensorFlow (it multiplies them by a float32
    ``sqrt``), so Muon's float64 cases are compared with torch only."""
    results: dict[str, Any] = {}
    backends = ["torch"] + (["tensorflow"] if importlib.util.find_spec("tensorflow") else [])
    for backend in backends:
        root = tmp_path_factory.mktemp(f"muon_sf_{backend}")
        cases = [c for c in CASES if backend == "torch" or (c[4] == "float64" and c[1] != "Muon")]
        for case in cases:
            np.savez(root / f"{case[0]}.npz", **_case_data(CASES.index(case), case[4], case[5]))
        spec = {
            "cases": [[c[0], c[1], c[2], c[3], c[4], c[6]] for c in cases],
            "names": [name for name, _ in VARIABLES],
            "steps": STEPS,
            "bad": [list(bad) for bad in BAD_ARGUMENTS],
        }
        (root / "cases.json").write_text(json.dumps(spec))
        run_keras_side(KERAS_RULES, root, backend=backend)
        results[backend] = np.load(root / "keras.npz", allow_pickle=False)
        results[f"{backend}-root"] = root
        results[f"{backend}-names"] = json.loads((root / "names.json").read_text())
    return results


def _expected(results: dict[str, Any], cls_name: str, dtype: str) -> tuple[Any, dict, dict]:
    """Keras' arrays, their names, and the tolerance to compare with."""
    if dtype == "float64" and cls_name != "Muon" and "tensorflow" in results:
        return results["tensorflow"], results["tensorflow-names"], {"rtol": 1e-12, "atol": 1e-13}
    if cls_name == "Muon":
        return results["torch"], results["torch-names"], {"rtol": 2e-5, "atol": 1e-5}
    return results["torch"], results["torch-names"], {"rtol": 2e-5, "atol": 2e-6}


def _keras_order(optimizer: Any) -> list[str]:
    """The names of the optimizer's state in Keras' order: Muon keeps Keras' order itself
    (per variable: momentum, then velocity for an AdamW one); Keras interleaves
    ScheduleFreeAdamW's momentum and velocity variable by variable, where dendrite keeps
    one block per kind."""
    names = [v.name for v in optimizer.variables]
    if isinstance(optimizer, Muon):
        return names
    base = [n for n in names if not n.endswith(("_momentum", "_velocity"))]
    labels = [variable_label(v).replace("/", "_") for v in optimizer._trainable_variables]
    return base + [f"{label}_{kind}" for label in labels for kind in ("momentum", "velocity")]


def _make(cls_name: str, kwargs: dict[str, Any], schedule: dict | None) -> Any:
    kwargs = dict(kwargs)
    if schedule:
        kwargs["learning_rate"] = schedules.ExponentialDecay(**schedule)
    return getattr(tf.optimizers, cls_name)(**kwargs)


@needs_keras
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_steps_and_state_as_keras(case, keras_results) -> None:
    case_id, cls_name, kwargs, schedule, dtype, _, exclude = case
    theirs, names, tolerance = _expected(keras_results, cls_name, dtype)
    with np.load(keras_results["torch-root"] / f"{case_id}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    variables = [Variable(arrays[f"w_{name}"].copy(), name=name) for name, _ in VARIABLES]
    optimizer = _make(cls_name, kwargs, schedule)
    if exclude:
        optimizer.exclude_from_weight_decay(var_names=exclude)
    for s in range(STEPS):
        optimizer.apply([arrays[f"g{s}_{name}"] for name, _ in VARIABLES], variables)
        for variable, (name, _) in zip(variables, VARIABLES):
            expected = theirs[f"{case_id}__w{s}_{name}"]
            assert variable.data.dtype == np.dtype(dtype) == expected.dtype
            np.testing.assert_allclose(
                variable.data, expected, **tolerance, err_msg=f"step {s}, {name}"
            )
    # the state, matched by name (dendrite keeps ScheduleFreeAdamW's slots kind by kind)
    keras_names = names["names"][case_id]
    mine = {v.name: v for v in optimizer.variables}
    assert sorted(mine) == sorted(keras_names)
    assert _keras_order(optimizer) == keras_names
    for j, name in enumerate(keras_names):
        expected, variable = theirs[f"{case_id}__opt{j}"], mine[name]
        assert variable.data.shape == expected.shape, name
        assert variable.data.dtype.kind == expected.dtype.kind, name
        if name == "learning_rate":  # float32 in Keras, float64 in dendrite
            np.testing.assert_allclose(variable.data, expected, rtol=1e-7)
        else:
            np.testing.assert_allclose(variable.data, expected, **tolerance, err_msg=name)
    keras_config = names["names"].get(f"{case_id}/config")
    if keras_config is not None:
        config = optimizer.get_config()
        assert sorted(config) == sorted(keras_config)
        for key, value in keras_config.items():
            if key == "learning_rate":
                assert config[key] == pytest.approx(value, rel=1e-7)
            elif key != "name":  # Keras numbers a second instance's name ("muon_1")
                assert config[key] == value, key


@needs_keras
@pytest.mark.parametrize("index", range(len(BAD_ARGUMENTS)))
def test_bad_arguments_raise_what_keras_raises(index, keras_results) -> None:
    cls_name, kwargs = BAD_ARGUMENTS[index]
    keras_error = keras_results["torch-names"]["errors"][index]
    assert keras_error is not None
    with pytest.raises(Exception) as raised:  # noqa: PT011 - compared by type name below
        getattr(tf.keras.optimizers, cls_name)(**kwargs)
    assert type(raised.value).__name__ == keras_error


# --- dendrite only ----------------------------------------------------------------------------
def test_keras_defaults_and_signature() -> None:
    muon = Muon().get_config()
    expected = {
        "name": "muon",
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "adam_beta_1": 0.9,
        "adam_beta_2": 0.999,
        "adam_weight_decay": 0.004,
        "epsilon": 1e-7,
        "exclude_layers": [],
        "exclude_embeddings": True,
        "muon_a": 3.4445,
        "muon_b": -4.775,
        "muon_c": 2.0315,
        "adam_lr_ratio": 1,
        "momentum": 0.95,
        "ns_steps": 5,
        "nesterov": True,
        "rms_rate": 0.2,
    }
    assert {k: muon[k] for k in expected} == expected
    sf = ScheduleFreeAdamW().get_config()
    assert sf["name"] == "schedule_free_adam_w" and sf["learning_rate"] == 0.0025
    assert (sf["beta_1"], sf["beta_2"], sf["epsilon"], sf["warmup_steps"]) == (
        0.9,
        0.999,
        1e-8,
        0,
    )
    assert sf["weight_decay"] is None


def test_argument_checks_keras_leaves_to_the_first_update() -> None:
    with pytest.raises(TypeError, match="momentum"):
        Muon(momentum="0.9")
    with pytest.raises(ValueError, match="ns_steps"):
        Muon(ns_steps=2.5)
    with pytest.raises(TypeError, match="exclude_layers"):
        Muon(exclude_layers="output")
    with pytest.raises(ValueError, match="beta_1"):
        ScheduleFreeAdamW(beta_1=0.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        ScheduleFreeAdamW(warmup_steps=-1)


def test_muon_chooses_the_rule_by_shape_and_path() -> None:
    model = tf.keras.Sequential(
        [
            tf.keras.Input((3,)),
            tf.keras.layers.Embedding(10, 4, name="embedding"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(5, name="hidden"),
            tf.keras.layers.Dense(2, name="output_dense"),
        ]
    )
    weights = model.trainable_weights
    adamw = {w.path for w in weights if Muon()._should_use_adamw(w)}
    assert adamw == {"embedding/embeddings", "hidden/bias", "output_dense/bias"}
    optimizer = Muon(exclude_layers=["output_dense"], exclude_embeddings=False)
    adamw = {w.path for w in weights if optimizer._should_use_adamw(w)}
    assert adamw == {"hidden/bias", "output_dense/kernel", "output_dense/bias"}
    optimizer.build(weights)
    assert [v.name for v in optimizer.variables].count("output_dense_kernel_velocity") == 1
    assert "hidden_kernel_velocity" not in [v.name for v in optimizer.variables]


def test_newton_schulz_orthogonalises() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    optimizer = Muon()
    out = optimizer.zeropower_via_newtonschulz5(x, 10)
    singular = np.linalg.svd(out, compute_uv=False)
    # Muon's quintic goes to singular values near 1 (about 0.7 to 1.2), not exactly 1
    assert out.shape == x.shape and np.all((singular > 0.5) & (singular < 1.3)), singular
    # an odd polynomial of X = U S V^T is U p(S) V^T: same singular vectors
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    inner = u.T @ out @ vt.T
    np.testing.assert_allclose(inner, np.diag(np.diag(inner)), atol=1e-12)
    np.testing.assert_allclose(np.sort(np.diag(inner)), np.sort(singular), rtol=1e-12)
    np.testing.assert_allclose(optimizer.zeropower_via_newtonschulz5(x.T, 10), out.T, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        optimizer.zeropower_via_newtonschulz5(np.ones(3), 5)
    assert optimizer.lr_adjust(np.ones((4, 9))).max() == pytest.approx(3 * 0.2)


def test_schedule_free_starts_z_at_the_weights_and_beta_1_cancels() -> None:
    """Keras' arithmetic (the updated z recovers x) reduces to y <- (1 - 1/t) y + z / t."""
    rng = np.random.default_rng(1)
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(4)]
    results = []
    for beta_1 in (0.9, 0.3):
        variable = Variable(start.copy())
        optimizer = ScheduleFreeAdamW(learning_rate=0.1, beta_1=beta_1)
        optimizer.build([variable])
        np.testing.assert_array_equal(optimizer.variables[2].data, start)
        for grad in grads:
            optimizer.apply([grad], [variable])
        results.append(variable.data.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-14)


def _regression_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ rng.standard_normal((4, 1)) + 0.5).astype("float32")
    return x, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: Muon(learning_rate=0.02),
        lambda: Muon(learning_rate=0.02, exclude_layers=["output"], nesterov=False),
        lambda: ScheduleFreeAdamW(learning_rate=0.02),
        lambda: ScheduleFreeAdamW(learning_rate=0.02, warmup_steps=10, weight_decay=0.01),
    ],
    ids=["muon", "muon-options", "schedule-free", "schedule-free-warmup"],
)
def test_fit_reduces_the_loss(make) -> None:
    tf.keras.utils.set_random_seed(3)
    x, y = _regression_data(3)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(8, "tanh", name="hidden"),
            tf.keras.layers.Dense(1, name="output"),
        ]
    )
    model.compile(optimizer=make(), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("cls", [Muon, ScheduleFreeAdamW])
def test_config_round_trips_through_the_registry(cls) -> None:
    schedule = schedules.ExponentialDecay(**DECAY)
    extra = (
        {"exclude_layers": ["out"], "rms_rate": None, "adam_weight_decay": None}
        if cls is Muon
        else {"warmup_steps": 5, "beta_1": 0.8}
    )
    optimizer = cls(learning_rate=schedule, clipnorm=2.0, name="custom", **extra)
    entry = tf.keras.optimizers.serialize(optimizer)
    clone = tf.keras.optimizers.deserialize(json.loads(json.dumps(entry)))
    assert type(clone) is cls and clone.get_config() == optimizer.get_config()
    assert type(tf.keras.optimizers.get(cls.__name__.lower())) is cls
    assert cls.from_config(optimizer.get_config()).get_config() == optimizer.get_config()


def _small_model() -> Any:
    """A Conv1D kernel (3-D: AdamW), Dense kernels (Muon) and biases (AdamW)."""
    return tf.keras.Sequential(
        [
            tf.keras.Input((6, 3)),
            tf.keras.layers.Conv1D(4, 3, activation="tanh"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(5, activation="tanh", name="hidden"),
            tf.keras.layers.Dense(2, name="output_dense"),
        ]
    )


FILE_OPTIMIZERS = {
    "muon": lambda: Muon(learning_rate=0.02, exclude_layers=["output"]),
    "muon-schedule": lambda: Muon(learning_rate=schedules.ExponentialDecay(**DECAY)),
    "schedule-free": lambda: ScheduleFreeAdamW(learning_rate=0.02, warmup_steps=2),
}


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
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.name == b.name and a.data.dtype == b.data.dtype
        np.testing.assert_array_equal(a.data, b.data)
    for _ in range(2):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_resumes_the_same_trajectory() -> None:
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    for cls in (Muon, ScheduleFreeAdamW):
        variables = [Variable(rng.standard_normal(s), name=f"v{i}") for i, s in enumerate(shapes)]
        grads = [rng.standard_normal(s) for s in shapes]
        optimizer = cls(learning_rate=0.05)
        for _ in range(3):
            optimizer.apply(grads, variables)
        state, saved = optimizer.get_weights(), [v.data.copy() for v in variables]
        for _ in range(2):
            optimizer.apply([g * 0.5 for g in grads], variables)
        fresh_vars = [Variable(d, name=v.name) for d, v in zip(saved, variables)]
        fresh = cls.from_config(optimizer.get_config())
        fresh.build(fresh_vars)
        fresh.set_weights(state)
        for _ in range(2):
            fresh.apply([g * 0.5 for g in grads], fresh_vars)
        for got, want in zip(fresh_vars, variables):
            np.testing.assert_array_equal(got.data, want.data)


# --- .keras files: dendrite -> Keras -> dendrite ---------------------------------------------
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
    with open(root + "/keras_names.json", "w") as f:
        json.dump([v.name for v in model.optimizer.variables], f)
    np.savez(root + "/keras_loaded_state.npz",
             *[ops.convert_to_numpy(v) for v in model.optimizer.variables])
    model.train_on_batch(x, y)
    np.savez(root + "/keras_step1.npz", *[np.asarray(w) for w in model.get_weights()])
    model.save(root + "/keras.keras")
    model.train_on_batch(x, y)
    np.savez(root + "/keras_step2.npz", *[np.asarray(w) for w in model.get_weights()])
    """
)


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _keras_layout(optimizer: Any, trainable: list) -> list:
    """dendrite's ``.keras`` order of the optimizer's state, checked against Keras' names
    (Muon: ragged slots, no velocity for its Newton-Schulz variables)."""
    mine = keras_ordered(optimizer, trainable)
    assert [v.name for v in mine] == _keras_order(optimizer)
    return mine


@needs_keras
@pytest.mark.parametrize(
    "make", [FILE_OPTIMIZERS["muon"], FILE_OPTIMIZERS["schedule-free"]], ids=["muon", "sf"]
)
def test_training_continues_in_keras(make, tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    tf.keras.utils.set_random_seed(0)
    model = _small_model()
    model.compile(optimizer=make(), loss="mse")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    for _ in range(3):
        model.train_on_batch(x, y)
    mine = _keras_layout(model.optimizer, model.trainable_weights)
    model.save(tmp_path / "dendrite.keras")
    np.save(tmp_path / "x.npy", x, allow_pickle=False)
    np.save(tmp_path / "y.npy", y, allow_pickle=False)
    run_keras_side(KERAS_CONTINUES, tmp_path)
    keras_names = json.loads((tmp_path / "keras_names.json").read_text())
    assert len(keras_names) == len(mine)
    for variable, array in zip(mine, _arrays(tmp_path / "keras_loaded_state.npz")):
        np.testing.assert_allclose(variable.data, array, rtol=1e-7, err_msg=variable.name)
    model.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), _arrays(tmp_path / "keras_step1.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
    # and dendrite continues from Keras' file as Keras continues
    loaded = tf.keras.models.load_model(tmp_path / "keras.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    config, expected = loaded.optimizer.get_config(), model.optimizer.get_config()
    assert config.pop("learning_rate") == pytest.approx(expected.pop("learning_rate"), rel=1e-7)
    assert config == expected  # the rest; Keras wrote the rate in float32
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        assert a.name == b.name
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=2e-6, err_msg=a.name)
    loaded.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), _arrays(tmp_path / "keras_step2.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
