"""keras.applications with ``weights=<path>``: weights that real Keras 3 saved for its own
architecture (``model.save_weights("x.weights.h5")``) load into dendrite's, which then
predicts what Keras predicted. Keras runs in its own process; skipped where it is not
installed (CI installs it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from dendrite import applications

pytest.importorskip("h5py")
if importlib.util.find_spec("keras") is None:
    pytest.skip("real Keras 3 is not installed", allow_module_level=True)

KERAS_SIDE = r"""
import ast
import sys
import numpy as np
import keras

name, kwargs, out = sys.argv[1], ast.literal_eval(sys.argv[2]), sys.argv[3]
keras.utils.set_random_seed(0)
model = getattr(keras.applications, name)(weights=None, **kwargs)
# Non-trivial batch-normalization statistics, so that loading them is checked too.
for layer in model.layers:
    for weight in layer.weights:
        if "moving" in weight.path:
            weight.assign(np.random.default_rng(1).uniform(0.5, 1.5, weight.shape))
x = np.random.default_rng(2).uniform(0, 255, (2, *kwargs["input_shape"])).astype("float32")
model.save_weights(out + ".weights.h5")
np.save(out + ".x.npy", x)
np.save(out + ".y.npy", keras.ops.convert_to_numpy(model(x, training=False)))
"""

CASES = {
    "MobileNetV2": {"input_shape": (32, 32, 3), "alpha": 0.35, "classes": 5},
    "EfficientNetB0": {"input_shape": (32, 32, 3), "include_top": False, "pooling": "avg"},
    "ResNet50V2": {"input_shape": (32, 32, 3), "include_top": False, "pooling": "max"},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_saved_application_weights_load_by_path(name, tmp_path):
    kwargs = CASES[name]
    out = str(tmp_path / name)
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "torch"))
    done = subprocess.run(
        [sys.executable, "-c", KERAS_SIDE, name, repr(kwargs), out],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"Keras' side failed:\n{done.stderr[-3000:]}")
    model = getattr(applications, name)(weights=out + ".weights.h5", **kwargs)
    x, want = np.load(out + ".x.npy"), np.load(out + ".y.npy")
    got = model.predict(x, verbose=0)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)
