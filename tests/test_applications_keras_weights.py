"""keras.applications with ``weights=<path>``: weights that real Keras 3 saved for its own
architecture (``model.save_weights("x.weights.h5")``) load into dendrite's, which then
predicts what Keras predicted; a Keras ``.keras`` file of a model with Keras' own
application layers (ConvNeXt's LayerScale) loads with ``load_model``. Keras runs once, in
its own process, for every case; skipped where it is not installed (CI installs it).

The Keras side makes the comparison sensitive: every weight Keras initializes to a
constant (biases, batch-normalization scales and offsets, LayerScale) is perturbed, and
the batch-normalization statistics are those of a random batch with the variance doubled,
so that activations neither die out (which hides early layers) nor grow (which amplifies
rounding). The predictions must then depend on the input far more than they may differ.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from dendrite import applications, saving

pytest.importorskip("h5py")
if importlib.util.find_spec("keras") is None:
    pytest.skip("real Keras 3 is not installed", allow_module_level=True)

KERAS_SIDE = r"""
import ast
import importlib
import sys
import numpy as np
import keras

cases, out = ast.literal_eval(sys.argv[1]), sys.argv[2]
for name, kwargs in cases.items():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    low, high = (0.0, 255.0) if kwargs.pop("raw_pixels", False) else (-1.0, 1.0)
    function = name.split("#")[0]
    if "." in function:  # a family's builder: keras.src.applications.<module>.<function>
        module, function = function.split(".")
        build = getattr(importlib.import_module("keras.src.applications." + module), function)
    else:
        build = getattr(keras.applications, function)
    model = build(weights=None, **kwargs)
    rng = np.random.default_rng(1)
    for weight in model.weights:
        value = keras.ops.convert_to_numpy(weight)
        if value.size and np.all(value == value.flat[0]):
            weight.assign(value + rng.uniform(-0.2, 0.2, weight.shape))
    shape = kwargs["input_shape"]
    inner = list(model._flatten_layers())
    norms = [layer for layer in inner if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in inner if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in drops]
    for layer in norms:
        layer.momentum = 0.0
    for layer in drops:
        layer.rate = 0.0
    batch = np.random.default_rng(5).uniform(low, high, (16, *shape)).astype("float32")
    model(batch, training=True)
    for layer in norms:
        layer.momentum = 0.99
        layer.moving_variance.assign(layer.moving_variance * 2.0)
    for layer, rate in zip(drops, rates):
        layer.rate = rate
    x = np.random.default_rng(2).uniform(low, high, (2, *shape)).astype("float32")
    model.save_weights(f"{out}/{name}.weights.h5")
    if name.startswith("convnext."):
        model.save(f"{out}/{name}.keras")
    np.save(f"{out}/{name}.x.npy", x)
    np.save(f"{out}/{name}.y.npy", keras.ops.convert_to_numpy(model(x, training=False)))
"""

_SMALL_CONVNEXT = {"depths": [1, 1, 2, 1], "projection_dims": [8, 16, 24, 32]}
_SMALL_NASNET = {"penultimate_filters": 96, "num_blocks": 1, "stem_block_filters": 8}
# "module.Function#label": a family's builder (label: a second case of it). ``raw_pixels``:
# the model preprocesses [0, 255] pixels itself (else the inputs are in [-1, 1]).
CASES: dict[str, dict] = {
    "MobileNetV2": {"input_shape": (32, 32, 3), "alpha": 0.35, "classes": 5},
    "EfficientNetB0": {
        "input_shape": (32, 32, 3), "include_top": False, "pooling": "avg", "raw_pixels": True
    },
    "ResNet50V2": {"input_shape": (32, 32, 3), "include_top": False, "pooling": "max"},
    "MobileNet": {
        "input_shape": (32, 32, 3), "alpha": 0.25, "depth_multiplier": 2, "classes": 5,
        "classifier_activation": None,
    },
    "InceptionV3": {"input_shape": (75, 75, 3), "include_top": False, "pooling": "avg"},
    "InceptionResNetV2": {"input_shape": (75, 75, 3), "include_top": False, "pooling": "max"},
    "EfficientNetV2B0": {
        "input_shape": (32, 32, 3), "classes": 5, "classifier_activation": None,
        "raw_pixels": True,
    },
    "convnext.ConvNeXt": {
        **_SMALL_CONVNEXT, "drop_path_rate": 0.1, "name": "convnext_small_test",
        "input_shape": (32, 32, 3), "classes": 5, "classifier_activation": None,
        "raw_pixels": True,
    },
    "nasnet.NASNet": {
        **_SMALL_NASNET, "skip_reduction": False, "input_shape": (32, 32, 3), "classes": 5,
        "classifier_activation": None, "default_size": 224,
    },
    "nasnet.NASNet#skip_reduction": {  # NASNetLarge's path
        **_SMALL_NASNET, "skip_reduction": True, "input_shape": (32, 32, 3),
        "include_top": False, "pooling": "avg", "default_size": 331,
    },
}  # fmt: skip


def _builder(name: str) -> Callable:
    name = name.split("#")[0]
    if "." in name:
        module, function = name.split(".")
        return getattr(getattr(applications, module), function)
    return getattr(applications, name)


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every case's weights, input and prediction, saved by one Keras process."""
    out = str(tmp_path_factory.mktemp("keras_applications"))
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"))
    done = subprocess.run(
        [sys.executable, "-c", KERAS_SIDE, repr(CASES), out],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.fail(f"Keras' side failed:\n{done.stderr[-3000:]}")
    return out


def _check(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    scale = float(np.abs(want).max())
    tolerance = 2e-5 * scale
    # The two images give clearly different outputs: a comparison of dead features (all
    # zero, or input-independent) would prove nothing.
    assert np.abs(want[0] - want[1]).max() > 5 * tolerance
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_saved_application_weights_load_by_path(name: str, keras_files: str) -> None:
    kwargs = {k: v for k, v in CASES[name].items() if k != "raw_pixels"}
    path = os.path.join(keras_files, name)
    model = _builder(name)(weights=path + ".weights.h5", **kwargs)
    x, want = np.load(path + ".x.npy"), np.load(path + ".y.npy")
    _check(np.asarray(model.predict(x, verbose=0)), want)


def test_keras_saved_model_file_with_application_layers_loads(keras_files: str) -> None:
    path = os.path.join(keras_files, "convnext.ConvNeXt")
    model = saving.load_model(path + ".keras")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"LayerScale", "StochasticDepth", "Sequential"} <= kinds
    assert isinstance(model.get_layer("convnext_small_test_stage_0_block_0_layer_scale"),
                      applications.convnext.LayerScale)  # fmt: skip
    x, want = np.load(path + ".x.npy"), np.load(path + ".y.npy")
    _check(np.asarray(model.predict(x, verbose=0)), want)
