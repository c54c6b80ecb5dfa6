"""ONNX export of a 3-D network (both data formats, 'same' and 'valid', transposed
convolution, upsampling): ONNX Runtime's outputs equal ``model.predict`` within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite import layers  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402


def test_3d_network_exports_and_matches_predict(tmp_path):
    K.utils.set_random_seed(2)
    inputs = K.Input((4, 6, 5, 2))
    x = layers.Conv3D(4, (2, 3, 3), strides=(1, 2, 1), padding="same", groups=2)(inputs)
    x = layers.MaxPooling3D((2, 1, 2), padding="same")(x)
    x = layers.Conv3DTranspose(3, 2, strides=2, output_padding=(1, 0, 1), activation="relu")(x)
    x = layers.Permute((4, 1, 2, 3))(x)  # to channels_first
    x = layers.Conv3D(2, 2, data_format="channels_first", dilation_rate=(1, 2, 1))(x)
    x = layers.UpSampling3D((1, 2, 1), data_format="channels_first")(x)
    x = layers.AveragePooling3D(2, strides=1, padding="same", data_format="channels_first")(x)
    x = layers.ZeroPadding3D(((1, 0), 1, (0, 1)), data_format="channels_first")(x)
    x = layers.Cropping3D((1, 0, 1), data_format="channels_first")(x)
    outputs = layers.GlobalAveragePooling3D(data_format="channels_first")(x)
    model = K.Model(inputs, outputs)
    path = tmp_path / "net3d.onnx"
    model.export(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    data = np.random.default_rng(0).standard_normal((3, 4, 6, 5, 2)).astype("float32")
    for batch in (1, 3):
        expected = model.predict(data[:batch], verbose=0)
        (got,) = run_onnx(path, [data[:batch]])
        assert max_relative_difference(got, expected) <= 1e-5
