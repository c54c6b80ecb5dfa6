"""OrthogonalRegularizer against real Keras 3 (in a subprocess, KERAS_BACKEND=torch).

The penalty on the same matrices (rows and columns mode, float32 and float64, a zero row,
a row of norm 2e-5, a single row) and its gradient (torch's autograd in Keras) must agree:
``rtol=1e-5`` in float32; ``rtol=1e-6, atol=1e-8`` in float64, because Keras' torch
backend multiplies float64 matrices in float32 (``ops.matmul`` returns float32 there; its
TensorFlow backend cannot take float64 inputs at all: it multiplies them by a float32
``factor``). float64 exactness is checked against NumPy instead (``rtol=1e-13``), and the
gradient by finite differences in float64 (``dendrite.testing.gradcheck``). Then the
argument errors with Keras' messages, names, config and serialization, a ``Dense``
kernel's penalty in ``model.losses``, fit, and saved models (dendrite's files and a
``.keras`` file read by Keras).
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
from dendrite.layers import regularizers
from dendrite.layers.regularizers import OrthogonalRegularizer
from dendrite.testing.gradcheck import gradcheck
from dendrite.testing.keras_side import run_keras_side

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="needs Keras 3 (the keras package)"
)


def _matrix(kind: str, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, kind)))  # stable across processes
    if kind == "tall":
        x = rng.standard_normal((6, 3))
    elif kind == "wide":
        x = rng.standard_normal((3, 7))
    elif kind == "square-large":
        x = rng.standard_normal((5, 5)) * 30.0
    elif kind == "zero-row":  # stays 0 (the norm is floored at epsilon): abs(0) has a kink
        x = rng.standard_normal((4, 3))
        x[1] = 0.0
    elif kind == "tiny-row":
        # |row| = 2e-5: above Keras' floor (the norm at epsilon = 1e-7) but below the one
        # of a squared norm floored at epsilon (3e-4): still scaled to unit length
        x = rng.standard_normal((4, 3))
        x[2] = [1e-5, -1e-5, 1e-5]
        x[2] *= 2e-5 / np.linalg.norm(x[2])
    elif kind == "one-row":  # rows mode: no pair, 0 / 0 = NaN in both
        x = rng.standard_normal((1, 4))
    else:
        raise ValueError(kind)
    return x.astype(dtype)


# (id, matrix kind, dtype, factor, mode, compare gradients with Keras)
CASES: list[tuple[str, str, str, float, str, bool]] = [
    ("rows-tall", "tall", "float32", 0.01, "rows", True),
    ("columns-tall", "tall", "float32", 0.5, "columns", True),
    ("rows-wide", "wide", "float32", 2.0, "rows", True),
    ("columns-wide", "wide", "float32", 0.01, "columns", True),
    ("rows-large", "square-large", "float32", 0.1, "rows", True),
    ("rows-tiny-row", "tiny-row", "float32", 1.0, "rows", True),
    ("columns-tiny-row", "tiny-row", "float32", 1.0, "columns", True),
    # Keras 3.15.1's normalize takes min(rsqrt(0), 1 / epsilon): its gradient is NaN there
    ("rows-zero-row", "zero-row", "float32", 1.0, "rows", False),
    ("columns-one-row", "one-row", "float32", 1.0, "columns", True),
    ("rows-one-row", "one-row", "float32", 1.0, "rows", False),
    ("rows-float64", "tall", "float64", 0.25, "rows", True),
    ("columns-float64", "wide", "float64", 0.75, "columns", True),
    ("zero-factor", "tall", "float32", 0.0, "rows", True),
    ("int-factor", "wide", "float32", 3, "columns", True),
]
# Bad arguments and inputs: (constructor arguments, input shape or None)
BAD: list[tuple[dict[str, Any], list[int] | None]] = [
    ({"factor": -0.1}, None),
    ({"factor": "0.1"}, None),
    ({"factor": float("nan")}, None),
    ({"factor": float("inf")}, None),
    ({"factor": None}, None),
    ({"mode": "diagonal"}, None),
    ({"mode": "Rows"}, None),
    ({}, [2, 3, 4]),
    ({}, [5]),
]

KERAS_SIDE = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import torch
    import keras
    root = sys.argv[1]
    with open(root + "/cases.json") as f:
        spec = json.load(f)
    out, errors = {}, []
    for case_id, factor, mode in spec["cases"]:
        x = torch.tensor(np.load(root + "/" + case_id + ".npy"), requires_grad=True)
        penalty = keras.regularizers.OrthogonalRegularizer(factor=factor, mode=mode)(x)
        penalty.backward()
        out[case_id + "__penalty"] = penalty.detach().numpy()
        out[case_id + "__grad"] = x.grad.numpy()
    for kwargs, shape in spec["bad"]:
        try:
            regularizer = keras.regularizers.OrthogonalRegularizer(**kwargs)
            if shape is not None:
                regularizer(keras.ops.ones(shape))
            errors.append(None)
        except Exception as error:
            errors.append([type(error).__name__, str(error)])
    names = {}
    for name in ("orthogonal_regularizer", "OrthogonalRegularizer"):
        got = keras.regularizers.get(name)
        names[name] = [type(got).__name__, got.get_config()]
    entry = keras.regularizers.serialize(
        keras.regularizers.OrthogonalRegularizer(0.5, "columns"))
    np.savez(root + "/keras.npz", **out)
    with open(root + "/info.json", "w") as f:
        json.dump({"errors": errors, "names": names, "serialized": entry}, f)
    """
)


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("orthogonal")
    for case_id, kind, dtype, *_ in CASES:
        np.save(root / f"{case_id}.npy", _matrix(kind, dtype), allow_pickle=False)
    spec = {
        "cases": [[c[0], c[3], c[4]] for c in CASES],
        "bad": [[kwargs, shape] for kwargs, shape in BAD],
    }
    (root / "cases.json").write_text(json.dumps(spec, allow_nan=True))
    run_keras_side(KERAS_SIDE, root, backend="torch")
    return {
        "arrays": np.load(root / "keras.npz", allow_pickle=False),
        "info": json.loads((root / "info.json").read_text()),
    }


def _tolerance(dtype: str) -> dict[str, float]:
    # float64: Keras' torch backend multiplies the matrices in float32 (see above)
    return {"rtol": 1e-5, "atol": 1e-7} if dtype == "float32" else {"rtol": 1e-6, "atol": 1e-8}


@needs_keras
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_penalty_and_gradient_match_keras(case, keras_results) -> None:
    case_id, kind, dtype, factor, mode, compare_gradient = case
    theirs = keras_results["arrays"]
    x = tf.Variable(_matrix(kind, dtype))
    with tf.GradientTape() as tape:
        penalty = OrthogonalRegularizer(factor=factor, mode=mode)(x)
    assert penalty.data.dtype == np.dtype(dtype) and penalty.data.shape == ()
    expected = theirs[f"{case_id}__penalty"]
    np.testing.assert_allclose(penalty.data, expected, equal_nan=True, **_tolerance(dtype))
    if not np.isfinite(expected):
        return
    (grad,) = tape.gradient(penalty, [x])
    assert grad.data.dtype == np.dtype(dtype)
    if compare_gradient:
        np.testing.assert_allclose(grad.data, theirs[f"{case_id}__grad"], **_tolerance(dtype))
    else:  # the zero row: abs'(0) = 0, so no gradient in dendrite (Keras 3.15.1: NaN)
        assert np.all(np.isfinite(grad.data))
        np.testing.assert_array_equal(grad.data[1], 0.0)
        keras_grad = theirs[f"{case_id}__grad"]
        rows = [0, 2, 3]
        if np.all(np.isfinite(keras_grad[rows])):
            np.testing.assert_allclose(grad.data[rows], keras_grad[rows], **_tolerance(dtype))


@needs_keras
@pytest.mark.parametrize("index", range(len(BAD)))
def test_errors_match_keras(index, keras_results) -> None:
    kwargs, shape = BAD[index]
    keras_error = keras_results["info"]["errors"][index]
    assert keras_error is not None
    with pytest.raises(Exception) as raised:  # noqa: PT011 - compared below
        regularizer = OrthogonalRegularizer(**kwargs)
        if shape is not None:
            regularizer(np.ones(shape, "float32"))
    name, message = keras_error
    assert type(raised.value).__name__ == name
    if shape is not None:  # Keras prints a torch.Size; dendrite a tuple
        assert str(raised.value).split("inputs.shape=")[0] == message.split("inputs.shape=")[0]
        assert str(tuple(shape)) in str(raised.value)
    else:
        assert str(raised.value) == message


@needs_keras
def test_names_and_serialization_match_keras(keras_results) -> None:
    info = keras_results["info"]
    for name, (class_name, config) in info["names"].items():
        got = regularizers.get(name)
        assert type(got).__name__ == class_name and got.get_config()["mode"] == config["mode"]
        # Keras keeps the factor as a float32 tensor (0.009999999776...); dendrite, as given
        assert got.get_config()["factor"] == pytest.approx(config["factor"], rel=1e-7)
    entry = regularizers.serialize(OrthogonalRegularizer(0.5, "columns"))
    keras_entry = info["serialized"]
    assert entry["class_name"] == keras_entry["class_name"] == "OrthogonalRegularizer"
    assert entry["config"] == keras_entry["config"] == {"factor": 0.5, "mode": "columns"}
    assert entry["module"] == keras_entry["module"] == "keras.regularizers"
    clone = regularizers.deserialize(keras_entry)
    assert type(clone) is OrthogonalRegularizer and clone.get_config() == entry["config"]


# --- dendrite only ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rows", "columns"])
@pytest.mark.parametrize("kind", ["tall", "wide", "square-large", "tiny-row"])
def test_gradient_by_finite_differences(mode: str, kind: str) -> None:
    """(Not at a zero row: there every pair's cosine is 0, on the kink of abs.)"""
    regularizer = OrthogonalRegularizer(factor=0.3, mode=mode)
    x = _matrix(kind, "float64")
    eps = 1e-7
    if kind == "tiny-row":  # |row| = 2e-4, still below 3e-4; steps well inside it
        x[2] *= 10.0
        eps = 1e-8
    gradcheck(regularizer, x, mode="elementwise", eps=eps, atol=1e-8, rtol=1e-6)
    gradcheck(regularizer, x * 3.0, mode="directional", eps=eps, seed=1)


def test_penalty_is_the_mean_absolute_cosine_over_pairs() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cosines = unit @ unit.T
    pairs = np.abs(cosines[np.triu_indices(5, k=1)])
    penalty = OrthogonalRegularizer(factor=2.0)(x)
    np.testing.assert_allclose(penalty.data, 2.0 * pairs.mean(), rtol=1e-13)
    # orthonormal rows cost nothing, in either mode for a square orthogonal matrix
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    for mode in ("rows", "columns"):
        assert abs(float(OrthogonalRegularizer(mode=mode)(q * 7.0).data)) < 1e-15
    # the rows of x are the columns of x.T
    np.testing.assert_allclose(
        OrthogonalRegularizer(mode="columns")(x.T).data,
        OrthogonalRegularizer(mode="rows")(x).data,
        rtol=1e-14,
    )


def test_names_config_and_defaults() -> None:
    assert regularizers.orthogonal_regularizer is OrthogonalRegularizer
    assert tf.regularizers.OrthogonalRegularizer is OrthogonalRegularizer
    assert tf.keras.regularizers.orthogonal_regularizer is OrthogonalRegularizer
    regularizer = OrthogonalRegularizer()
    assert regularizer.get_config() == {"factor": 0.01, "mode": "rows"}
    for name in ("orthogonal_regularizer", "OrthogonalRegularizer", "ORTHOGONAL_REGULARIZER"):
        assert type(regularizers.get(name)) is OrthogonalRegularizer
    config = OrthogonalRegularizer(np.float32(0.5), "columns").get_config()
    clone = OrthogonalRegularizer.from_config(config)
    assert clone.get_config() == {"factor": 0.5, "mode": "columns"}
    assert isinstance(clone.get_config()["factor"], float)
    entry = json.loads(json.dumps(regularizers.serialize(clone)))
    assert regularizers.deserialize(entry).get_config() == clone.get_config()
    assert regularizers.get(entry).get_config() == clone.get_config()


def _model(regularizer: Any) -> Any:
    return tf.keras.Sequential(
        [
            tf.keras.Input((6,)),
            tf.keras.layers.Dense(4, kernel_regularizer=regularizer, name="features"),
            tf.keras.layers.Dense(1, name="head"),
        ]
    )


def test_a_dense_kernel_penalty_is_in_model_losses_and_fit_applies_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = (x @ rng.standard_normal((6, 1))).astype("float32")
    penalty = OrthogonalRegularizer(factor=1.0, mode="columns")
    final = []
    for regularizer in (penalty, None):
        tf.keras.utils.set_random_seed(0)
        model = _model(regularizer)
        kernel = model.get_layer("features").kernel
        if regularizer is not None:
            (loss,) = model.losses
            np.testing.assert_allclose(loss.data, penalty(kernel).data, rtol=1e-6)
        model.compile(optimizer=tf.optimizers.SGD(0.05), loss="mse")
        history = model.fit(x, y, batch_size=16, epochs=20, verbose=0)
        assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
        final.append(float(penalty(kernel).data))
    # the same training without the regularizer leaves the columns far less orthogonal
    assert final[0] < 0.25 * final[1], final


def test_saved_models_keep_the_regularizer(tmp_path: Path) -> None:
    tf.keras.utils.set_random_seed(1)
    model = _model(OrthogonalRegularizer(factor=0.2, mode="columns"))
    model.save(tmp_path / "m.dendrite")
    loaded = tf.keras.models.load_model(tmp_path / "m.dendrite")
    regularizer = loaded.get_layer("features").kernel_regularizer
    assert type(regularizer) is OrthogonalRegularizer
    assert regularizer.get_config() == {"factor": 0.2, "mode": "columns"}
    np.testing.assert_array_equal(loaded.losses[0].data, model.losses[0].data)


KERAS_READS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    root = sys.argv[1]
    model = keras.models.load_model(root + "/model.keras")
    regularizer = model.get_layer("features").kernel_regularizer
    assert type(regularizer).__name__ == "OrthogonalRegularizer", regularizer
    config = regularizer.get_config()  # Keras rounds the factor to float32
    assert config["mode"] == "columns" and abs(config["factor"] - 0.2) < 1e-7, config
    np.save(root + "/losses.npy", np.array([float(loss) for loss in model.losses]))
    """
)


@needs_keras
def test_keras_reads_the_regularizer_from_a_keras_file(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    tf.keras.utils.set_random_seed(2)
    model = _model(OrthogonalRegularizer(factor=0.2, mode="columns"))
    model.save(tmp_path / "model.keras")
    run_keras_side(KERAS_READS, tmp_path)
    theirs = np.load(tmp_path / "losses.npy")
    np.testing.assert_allclose(theirs, [float(model.losses[0].data)], rtol=1e-6)
    loaded = tf.keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.get_layer("features").kernel_regularizer) is OrthogonalRegularizer
