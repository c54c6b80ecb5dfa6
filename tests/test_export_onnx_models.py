"""ONNX export of whole models, run in ONNX Runtime against ``predict`` (float32, within
1e-5 relative to the output's scale): the design document's model, the CNN and LSTM
examples at batch 1 and 1000, several inputs and outputs, shared layers, nested models,
ops recorded on symbolic tensors, Lambda, subclassed models, and the failures: a layer
that cannot be exported fails before anything is written, other formats are refused, and
a missing onnx package names the extra."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export import NotExportableError  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402

TOLERANCE = 1e-5
ROOT = Path(__file__).resolve().parent.parent


def _check(model, data, path, tolerance=TOLERANCE) -> float:
    expected = model.predict(data, verbose=0, batch_size=1000)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = run_onnx(path, data)
    assert len(got) == len(expected)
    worst = max(max_relative_difference(g, e) for g, e in zip(got, expected))
    assert worst <= tolerance
    return worst


def _batch_is_dynamic(path) -> None:
    proto = onnx.load(str(path))
    for value in list(proto.graph.input) + list(proto.graph.output):
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param and not first.dim_value, value.name


def test_document_model_batch_1_and_1000(tmp_path) -> None:
    from dendrite.cli import build_model

    model = build_model(128)
    path = tmp_path / "document.onnx"
    model.export(path)
    _batch_is_dynamic(path)
    x = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
    _check(model, x[:1], path)
    _check(model, x, path)


def test_cnn_example_batch_1_and_1000(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location(
        "fashion_mnist_cnn_export", ROOT / "examples" / "fashion_mnist_cnn.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model()
    path = tmp_path / "cnn.onnx"
    model.export(path)
    x = np.random.default_rng(0).random((1000, 28, 28, 1), dtype=np.float32)
    _check(model, x[:1], path)
    _check(model, x, path)


def test_lstm_example_batch_1_and_1000(tmp_path) -> None:
    model = K.Sequential(
        [K.Input(shape=(28, 28)), K.layers.LSTM(128), K.layers.Dense(10, activation="softmax")]
    )
    path = tmp_path / "lstm.onnx"
    model.export(path)
    x = np.random.default_rng(0).random((1000, 28, 28), dtype=np.float32)
    _check(model, x[:1], path)
    _check(model, x, path)


def test_several_inputs_and_outputs_keep_their_names(tmp_path) -> None:
    image = K.Input(shape=(6, 6, 2), name="image")
    extra = K.Input(shape=(3,), name="extra")
    h = K.layers.Conv2D(4, 3, activation="relu")(image)
    h = K.layers.GlobalAveragePooling2D()(h)
    joined = K.layers.Concatenate()([h, K.layers.Dense(4)(extra)])
    scores = K.layers.Dense(5, activation="softmax", name="scores")(joined)
    value = K.layers.Dense(1, name="value")(joined)
    model = K.Model([image, extra], [scores, value])
    path = tmp_path / "two.onnx"
    model.export(path)
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["image", "extra"]
    assert [o.name for o in proto.graph.output] == ["scores", "value"]
    rng = np.random.default_rng(2)
    for batch in (1, 7):
        data = [
            rng.standard_normal((batch, 6, 6, 2), dtype=np.float32),
            rng.standard_normal((batch, 3), dtype=np.float32),
        ]
        _check(model, data, path)


def test_shared_layers_and_nested_models(tmp_path) -> None:
    encoder = K.Sequential(
        [K.Input(shape=(5,)), K.layers.Dense(8, activation="tanh"), K.layers.BatchNormalization()],
        name="encoder",
    )
    inner_in = K.Input(shape=(8,))
    head = K.Model(inner_in, K.layers.Dense(3)(inner_in), name="head")
    a, b = K.Input(shape=(5,), name="a"), K.Input(shape=(5,), name="b")
    shared = K.layers.Dense(5, activation="relu", name="shared")
    ea, eb = encoder(shared(a)), encoder(shared(b))
    out = head(K.layers.Subtract()([ea, eb]))
    model = K.Model([a, b], out)
    path = tmp_path / "nested.onnx"
    model.export(path)
    rng = np.random.default_rng(3)
    for batch in (1, 7):
        _check(model, [rng.standard_normal((batch, 5), dtype=np.float32) for _ in range(2)], path)


def test_ops_on_symbolic_tensors_and_lambda(tmp_path) -> None:
    x = K.Input(shape=(4, 6), name="x")
    y = K.ops.mean(x, axis=-1, keepdims=True)
    z = (x - y) * 2.0
    z = K.ops.concatenate([z[:, :2], K.ops.tanh(z[:, 2:])], axis=1)
    z = K.ops.reshape(K.ops.transpose(z, (0, 2, 1)), (-1, 24))
    z = K.layers.Lambda(lambda t: K.ops.exp(-K.ops.abs(t)))(z)
    z = K.ops.maximum(z, 0.1) / K.ops.sum(z, axis=1, keepdims=True)
    model = K.Model(x, z)
    path = tmp_path / "ops.onnx"
    model.export(path)
    data = np.random.default_rng(4).standard_normal((7, 4, 6)).astype(np.float32)
    _check(model, data[:1], path)
    _check(model, data, path)


class TwoTowers(K.Model):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.left = K.layers.Dense(6, activation="relu")
        self.right = K.layers.Dense(6, activation="sigmoid")
        self.out = K.layers.Dense(2)

    def call(self, inputs):
        return self.out(K.ops.multiply(self.left(inputs), self.right(inputs)) + inputs[:, :1])


def test_subclassed_model_is_traced(tmp_path) -> None:
    model = TwoTowers()
    data = np.random.default_rng(5).standard_normal((7, 4)).astype(np.float32)
    model(data)
    path = tmp_path / "sub.onnx"
    model.export(path, input_signature=(None, 4))
    _check(model, data[:1], path)
    _check(model, data, path)
    model.export(tmp_path / "built.onnx")  # the shape it was built with
    _check(model, data, tmp_path / "built.onnx")


class NumpyInside(K.Model):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = K.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs) * float(np.asarray(inputs).mean())


def test_untraceable_subclassed_model_fails_clearly(tmp_path) -> None:
    model = NumpyInside()
    model(np.ones((2, 3), np.float32))
    path = tmp_path / "bad.onnx"
    with pytest.raises(NotExportableError, match="NumpyInside"):
        model.export(path, input_signature=(None, 3))
    assert not path.exists()


class Custom(K.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


def test_unexportable_layer_fails_before_anything_is_written(tmp_path) -> None:
    x = K.Input(shape=(3,))
    model = K.Model(x, K.layers.Dense(2)(Custom(name="doubler")(x)))
    path = tmp_path / "model.onnx"
    with pytest.raises(NotExportableError, match=r"'doubler' \(Custom\)"):
        model.export(path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")
    with pytest.raises(NotExportableError):
        model.export(path)
    assert path.read_bytes() == b"old"


def test_custom_activation_is_named(tmp_path) -> None:
    model = K.Sequential([K.Input(shape=(3,)), K.layers.Dense(2, activation=lambda t: t * 3.0)])
    with pytest.raises(NotExportableError, match="activation"):
        model.export(tmp_path / "m.onnx")


def test_other_formats_and_unknown_arguments_are_refused(tmp_path) -> None:
    model = K.Sequential([K.Input(shape=(3,)), K.layers.Dense(2)])
    with pytest.raises(ValueError, match="format='onnx'"):
        model.export(tmp_path / "m", format="tf_saved_model")
    with pytest.raises(TypeError, match="verbose"):
        model.export(tmp_path / "m.onnx", verbose=True)
    model.export(tmp_path / "m.onnx", opset_version=18)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 18
    x = np.ones((2, 3), np.float32)
    _check(model, x, tmp_path / "m.onnx")


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch) -> None:
    model = K.Sequential([K.Input(shape=(3,)), K.layers.Dense(2)])
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'dendrite\[onnx\]'"):
        model.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
