"""Symbolic tensors behave like tensors (issue #11): Python operators and ``keras.ops``
functions on ``KerasTensor``s inside a functional model are recorded as ``OpLayer`` nodes
that run, train, save and load with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.layers.op_layer import OpLayer
from dendrite.saving import ModelLoadError

RNG = np.random.default_rng(0)


def _model_and_reference():
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="h")(x)
    y = (h * 2 + 1) / 3 - 1.5
    y = y + (2 - h) * (h @ np.ones((3, 3), "float32")) - (-h) + abs(h) ** 2
    y = y + (h // 0.5) % 3 + 1.0 / (1.0 + ops.exp(-h))
    y = ops.concatenate([y, h[:, :1], h[..., -1:]], axis=-1)
    y = ops.mean(y, axis=-1, keepdims=True) + ops.sum(ops.square(y), axis=1)[:, None]
    return keras.Model(x, y)


def _reference(model, a):
    h = a @ model.get_layer("h").kernel.data + model.get_layer("h").bias.data
    y = (h * 2 + 1) / 3 - 1.5
    y = y + (2 - h) * (h @ np.ones((3, 3), "float32")) - (-h) + np.abs(h) ** 2
    y = y + (h // 0.5) % 3 + 1.0 / (1.0 + np.exp(-h))
    y = np.concatenate([y, h[:, :1], h[..., -1:]], axis=-1)
    return y.mean(axis=-1, keepdims=True) + (y**2).sum(axis=1)[:, None]


def test_operators_and_ops_are_recorded_and_run():
    model = _model_and_reference()
    assert any(isinstance(layer, OpLayer) for layer in model.layers)
    assert model.output_shape == (None, 1)
    a = RNG.standard_normal((6, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(a, verbose=0), _reference(model, a), rtol=1e-5)


def test_a_model_with_ops_saves_loads_and_clones(tmp_path):
    model = _model_and_reference()
    a = RNG.standard_normal((5, 4)).astype("float32")
    expected = model.predict(a, verbose=0)
    model.save(tmp_path / "ops.dendrite")
    loaded = keras.models.load_model(tmp_path / "ops.dendrite")
    np.testing.assert_array_equal(loaded.predict(a, verbose=0), expected)
    rebuilt = keras.models.model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(a, verbose=0), expected)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(a, verbose=0), expected)


def test_gradients_flow_through_recorded_ops():
    x = keras.Input((3,))
    h = keras.layers.Dense(2, name="d")(x)
    y = ops.sum(ops.tanh(h) * h, axis=-1, keepdims=True) - h[:, 1:]
    model = keras.Model(x, y)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = model.get_layer("d").kernel.data.copy()
    a = RNG.standard_normal((8, 3)).astype("float32")
    model.fit(a, np.ones((8, 1), "float32"), verbose=0)
    assert not np.array_equal(before, model.get_layer("d").kernel.data)
    # The same gradient as the eager computation through the tape.
    w = model.get_layer("d")
    with keras.GradientTape() as tape:
        out = model(a)
        loss = ops.mean(out)
    grad = tape.gradient(loss, [w.kernel])[0]
    with keras.GradientTape() as tape:
        h = w(a)
        loss2 = ops.mean(ops.sum(ops.tanh(h) * h, axis=-1, keepdims=True) - h[:, 1:])
    np.testing.assert_allclose(grad.data, tape.gradient(loss2, [w.kernel])[0].data, rtol=1e-6)


@pytest.mark.parametrize(
    "make, numpy_fn",
    [
        (lambda t: ops.reshape(t, (-1, 3, 2)), lambda a: a.reshape(-1, 3, 2)),
        (
            lambda t: ops.transpose(ops.reshape(t, (-1, 2, 3)), (0, 2, 1)),
            lambda a: a.reshape(-1, 2, 3).transpose(0, 2, 1),
        ),
        (lambda t: ops.expand_dims(t, 1), lambda a: a[:, None]),
        (lambda t: ops.max(t, axis=1), lambda a: a.max(axis=1)),
        (lambda t: ops.argmax(t, axis=-1), lambda a: a.argmax(axis=-1)),
        (lambda t: ops.clip(t, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5)),
        (lambda t: ops.where(t > 0, t, 0.0), lambda a: np.where(a > 0, a, 0.0)),
        (lambda t: ops.softmax(t), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
        (lambda t: ops.cast(t, "float64"), lambda a: a.astype("float64")),
        (lambda t: t.astype("int32"), lambda a: a.astype("int32")),
        (lambda t: ops.stack([t, t * 2], axis=1), lambda a: np.stack([a, a * 2], axis=1)),
        (lambda t: ops.square(t) >= 0.25, lambda a: np.square(a) >= 0.25),
        (lambda t: ~(t < 0), lambda a: ~(a < 0)),
        (lambda t: (t > 0) & (t < 1), lambda a: (a > 0) & (a < 1)),
        (lambda t: t[:, ::2], lambda a: a[:, ::2]),
        (lambda t: t[:, None, 1:4], lambda a: a[:, None, 1:4]),
        (lambda t: ops.pad(t, [[0, 0], [1, 2]]), lambda a: np.pad(a, [[0, 0], [1, 2]])),
        (lambda t: ops.ones_like(t) - t, lambda a: 1 - a),
        (lambda t: 2**t, lambda a: 2**a),
        (lambda t: 1 - t, lambda a: 1 - a),
        (lambda t: 3 // (ops.abs(t) + 1), lambda a: 3 // (np.abs(a) + 1)),
        (lambda t: 5.0 % (ops.abs(t) + 1), lambda a: 5.0 % (np.abs(a) + 1)),
    ],
)
def test_each_op_on_symbolic_tensors_matches_numpy(tmp_path, make, numpy_fn):
    x = keras.Input((6,))
    model = keras.Model(x, make(x))
    a = RNG.standard_normal((4, 6)).astype("float32")
    expected = numpy_fn(a)
    got = model.predict(a, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert model.output_shape[1:] == expected.shape[1:]
    model.save(tmp_path / "m.dendrite")
    again = keras.models.load_model(tmp_path / "m.dendrite").predict(a, verbose=0)
    np.testing.assert_array_equal(again, got)


def test_two_inputs_and_constant_arrays():
    a_in, b_in = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    weights = np.array([1.0, -2.0, 0.5], "float32")
    out = ops.maximum(a_in, b_in) * weights + ops.minimum(a_in, b_in)
    model = keras.Model([a_in, b_in], out)
    a, b = RNG.standard_normal((2, 4, 3)).astype("float32")
    expected = np.maximum(a, b) * weights + np.minimum(a, b)
    np.testing.assert_allclose(model.predict([a, b], verbose=0), expected, rtol=1e-6)
    # to_json spells the ops as Keras 3 does (its operation classes), and reads them back
    config = json.loads(model.to_json())
    layers = {(entry["class_name"], entry["module"]) for entry in config["config"]["layers"]}
    assert ("Maximum", "keras.src.ops.numpy") in layers
    rebuilt = keras.models.model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict([a, b], verbose=0), expected, rtol=1e-6)


def test_symbolic_tensor_attributes():
    x = keras.Input((5, 2), dtype="float64")
    assert x.shape == (None, 5, 2) and x.dtype == "float64" and x.ndim == 3
    assert ops.shape(x) == (None, 5, 2)
    assert (x == x) is True and (x == keras.Input((5, 2))) is False  # identity: graph keys
    assert len({x, x}) == 1
    emb = keras.layers.Embedding(10, 4, mask_zero=True)(keras.Input((7,), dtype="int32"))
    assert emb._keras_mask is not None and emb._keras_mask.shape == (None, 7)
    assert keras.layers.Dense(2)(keras.Input((3,)))._keras_mask is None
    with pytest.raises(TypeError, match="no value"):
        bool(x)


def test_unrecordable_arguments_and_hostile_op_names(tmp_path):
    x = keras.Input((3,))
    with pytest.raises(ValueError, match="only\\s+tensors, numbers"):
        ops.add(x, object())
    with pytest.raises(ValueError, match="not a dendrite op"):
        OpLayer("system", {"args": [], "kwargs": {}})
    model = keras.Model(x, x + 1)
    model.save(tmp_path / "ok.dendrite")
    import zipfile

    with zipfile.ZipFile(tmp_path / "ok.dendrite") as good:
        members = {n: good.read(n) for n in good.namelist()}
    text = members["config.json"].decode().replace('"op": "add"', '"op": "__import__"')
    assert '"__import__"' in text
    members["config.json"] = text.encode()
    with zipfile.ZipFile(tmp_path / "bad.dendrite", "w") as bad:
        for name, data in members.items():
            bad.writestr(name, data)
    with pytest.raises(ModelLoadError, match="not a dendrite op"):
        keras.models.load_model(tmp_path / "bad.dendrite")


def test_eager_ops_are_unchanged_by_the_symbolic_dispatch():
    a = keras.Tensor(np.array([1.0, -2.0], "float32"))
    assert ops.add.__wrapped__ is not ops.add
    np.testing.assert_array_equal(ops.add(a, 1).data, [2.0, -1.0])
    np.testing.assert_array_equal(ops.concatenate([a, a]).data, [1.0, -2.0, 1.0, -2.0])


def test_masks_flow_through_symbolic_graphs_as_in_keras():
    tokens = keras.Input((5,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    seq = keras.layers.LSTM(3, return_sequences=True)(emb)
    assert seq._keras_mask is not None and seq._keras_mask.shape == (None, 5)
    dense = keras.layers.Dense(2)(seq)  # Keras 3's Dense, Dropout, Activation pass masks
    assert dense._keras_mask is not None
    assert keras.layers.LSTM(3)(emb)._keras_mask is None  # the last step only: no mask
    model = keras.Model(tokens, dense)
    x = np.array([[3, 4, 0, 0, 0], [1, 2, 3, 0, 0]])
    out = model(x)
    np.testing.assert_array_equal(out._keras_mask.data, x != 0)
    # The loss ignores the padded steps: changing targets there changes nothing.
    y = RNG.standard_normal((2, 5, 2)).astype("float32")
    y_other = y.copy()
    y_other[x == 0] = 100.0
    model.compile("sgd", "mse")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y_other, verbose=0))


def test_a_fresh_process_loads_a_model_with_recorded_ops(tmp_path):
    """OpLayer is registered at import, not only once an op was recorded in the process."""
    import subprocess
    import sys

    x = keras.Input((3,))
    model = keras.Model(x, ops.mean(x * 2 + 1, axis=-1, keepdims=True))
    model.save(tmp_path / "m.dendrite")
    script = (
        "import numpy as np, dendrite as k; "
        f"m = k.models.load_model({str(tmp_path / 'm.dendrite')!r}); "
        "print(float(m.predict(np.ones((1, 3), 'float32'), verbose=0)[0, 0]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) == 3.0
