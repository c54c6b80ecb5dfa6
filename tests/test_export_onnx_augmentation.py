"""ONNX export of the training-only augmentation layers: at inference each is the identity,
and those Keras casts to float in both modes turn an integer image into float32, in ONNX
Runtime as in ``predict``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export.verify import run_onnx  # noqa: E402

RNG = np.random.default_rng(0)
CASTING = ["Solarization", "RandomSharpness", "RandomShear", "CutMix", "RandAugment", "AugMix"]
KEEPING = ["RandomPosterization", "Equalization", "RandomHue", "MixUp"]


@pytest.mark.parametrize("name", CASTING + KEEPING)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_inference_form_matches_predict(name, dtype, tmp_path) -> None:
    given = {"RandomHue": 0.2, "RandomSharpness": 0.2, "RandomShear": 0.2}
    kwargs = (
        {"x_factor" if name == "RandomShear" else "factor": given[name]} if name in given else {}
    )
    if name == "RandomPosterization":
        kwargs = {"factor": (4, 4)}
    images = K.Input((8, 8, 3), dtype=dtype)
    model = K.Model(images, getattr(K.layers, name)(**kwargs)(images))
    data = RNG.integers(0, 256, (2, 8, 8, 3)).astype(dtype)
    expected = model.predict(data, verbose=0)
    model.export(tmp_path / "m")
    got = run_onnx(tmp_path / "m", data)[0]
    assert got.dtype == expected.dtype == (np.float32 if name in CASTING else np.dtype(dtype))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, data)
