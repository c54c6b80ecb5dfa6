"""keras.Function (a captured graph re-applied to new values) and keras.Operation (a
weightless computation to subclass), as Keras 3 documents them."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras

A = np.random.default_rng(0).standard_normal((4, 2, 3)).astype("float32")
B = np.random.default_rng(1).standard_normal((4, 2, 3)).astype("float32")


def test_a_function_of_bare_keras_tensors_reapplies_its_graph():
    """Keras' own example: two KerasTensor specs, their sum through a sigmoid."""
    x1 = keras.KerasTensor(shape=(None, 2, 3))
    x2 = keras.KerasTensor(shape=(None, 2, 3))
    output = keras.ops.sigmoid(x1 + x2)
    fn = keras.Function(inputs=[x1, x2], outputs=output)
    got = keras.ops.convert_to_numpy(fn([A, B]))
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(A + B))), rtol=1e-6)
    assert fn.inputs == [x1, x2] and fn.outputs == [output]
    assert fn.compute_output_shape([(5, 2, 3), (5, 2, 3)]) == (5, 2, 3)
    spec = fn.compute_output_spec([keras.KerasTensor((7, 2, 3)), keras.KerasTensor((7, 2, 3))])
    assert tuple(spec.shape) == (7, 2, 3) and spec.dtype == "float32"
    assert [type(op).__name__ for op in fn.operations][-1] == "OpLayer"


def test_a_function_of_layers_with_dict_outputs_and_symbolic_calls():
    inputs = keras.Input((3,), name="x")
    dense = keras.layers.Dense(2)
    hidden = dense(inputs)
    fn = keras.Function(inputs, {"h": hidden, "s": keras.ops.sum(hidden, axis=-1)})
    x = np.ones((5, 3), "float32")
    out = fn(x)
    np.testing.assert_allclose(out["h"].data, x @ dense.kernel.data + dense.bias.data, rtol=1e-6)
    np.testing.assert_allclose(out["s"].data, out["h"].data.sum(-1), rtol=1e-6)
    assert fn.compute_output_shape((8, 3)) == {"h": (8, 2), "s": (8,)}
    again = fn(keras.Input((3,)))  # on symbolic inputs the outputs stay symbolic
    assert isinstance(again["h"], keras.KerasTensor)


def test_a_function_refuses_a_wrong_input_count():
    x1, x2 = keras.KerasTensor(shape=(None, 3)), keras.KerasTensor(shape=(None, 3))
    fn = keras.Function([x1, x2], x1 * x2)
    with pytest.raises(ValueError):
        fn([np.ones((2, 3), "float32")])


def test_an_operation_subclass_runs_on_arrays_and_in_models():
    class Square(keras.Operation):
        def call(self, x):
            return keras.ops.square(x)

    np.testing.assert_allclose(Square()(np.array([2.0, -3.0])).data, [4.0, 9.0])
    inputs = keras.Input((3,))
    outputs = Square()(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, outputs)
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).min() >= 0


def test_input_adopts_a_bare_keras_tensor_and_refuses_others():
    bare = keras.KerasTensor(shape=(None, 4), dtype="float64")
    assert keras.Input(tensor=bare) is bare and bare.dtype == "float64"
    with pytest.raises(ValueError, match="already comes from a layer call"):
        keras.Input(tensor=keras.Input((2,)))
    with pytest.raises(ValueError, match="must be a KerasTensor"):
        keras.Input(tensor=np.ones((2, 4)))
