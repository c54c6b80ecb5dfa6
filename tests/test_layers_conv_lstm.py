"""ConvLSTM1D/2D/3D, StackedRNNCells, SpectralNormalization, Wrapper and the adaptive pools
against real Keras 3 (same weights), plus gradients, training and file round trips."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import dendrite as keras
from dendrite.core import Tensor
from dendrite.layers.rnn_stacked import StackedRNNCells
from dendrite.testing.gradcheck import gradcheck
from dendrite.testing.keras_side import run_keras_side

L = keras.layers


def _weights(shapes: list, seed: int = 0) -> list[np.ndarray]:
    """Deterministic weights both sides can make: a scaled sine over each array."""
    out = []
    for i, shape in enumerate(shapes):
        size = int(np.prod(shape)) if shape else 1
        out.append((0.4 * np.sin(np.arange(size) * 0.37 + i + seed)).reshape(shape))
    return [w.astype("float32") for w in out]


# name -> (constructor source on both sides, input shape)
CASES = {
    "clstm2d_same": (
        "L.ConvLSTM2D(3, (3, 3), padding='same', return_sequences=True, return_state=True)",
        (2, 4, 5, 5, 2),
    ),
    "clstm2d_strided": ("L.ConvLSTM2D(2, 3, strides=2, go_backwards=True)", (1, 3, 7, 6, 2)),
    "clstm2d_first": (
        "L.ConvLSTM2D(2, 2, data_format='channels_first', return_sequences=True)",
        (2, 3, 2, 4, 5),
    ),
    "clstm1d": ("L.ConvLSTM1D(3, 2, padding='same', unit_forget_bias=False)", (2, 4, 6, 2)),
    "clstm3d": ("L.ConvLSTM3D(2, 2, return_sequences=True)", (2, 2, 3, 4, 3, 1)),
    "stacked": (
        "L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), return_sequences=True, "
        "return_state=True)",
        (2, 5, 4),
    ),
    "stacked_list": ("L.RNN([L.SimpleRNNCell(3), L.LSTMCell(2)], go_backwards=True)", (3, 4, 2)),
    "aap1d": ("L.AdaptiveAveragePooling1D(3)", (2, 7, 3)),
    "amp1d": ("L.AdaptiveMaxPooling1D(4)", (2, 10, 3)),
    "aap2d": ("L.AdaptiveAveragePooling2D((2, 3))", (2, 5, 7, 2)),
    "amp2d": ("L.AdaptiveMaxPooling2D((3, 4), data_format='channels_first')", (2, 2, 7, 9)),
    "aap3d": ("L.AdaptiveAveragePooling3D((2, 3, 2))", (1, 5, 7, 3, 2)),
    "amp3d": ("L.AdaptiveMaxPooling3D(2)", (2, 3, 5, 4, 2)),
}
TRAINING_CASES = {
    "spectral_dense": ("L.SpectralNormalization(L.Dense(3), power_iterations=2)", (4, 5)),
    "spectral_conv": ("L.SpectralNormalization(L.Conv2D(3, 2))", (2, 4, 4, 2)),
}

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    L = keras.layers
    root = sys.argv[1]
    spec = json.loads(open(root + "/cases.json").read())

    def weights(shapes, seed=0):
        out = []
        for i, shape in enumerate(shapes):
            size = int(np.prod(shape)) if shape else 1
            out.append((0.4 * np.sin(np.arange(size) * 0.37 + i + seed)).reshape(shape))
        return [w.astype("float32") for w in out]

    results, shapes = {}, {}
    for name, (source, shape, training) in spec.items():
        layer = eval(source)  # the test's own constructor strings
        x = np.load(root + f"/{name}.x.npy")
        layer(x)
        shapes[name] = [list(w.shape) for w in layer.get_weights()]
        layer.set_weights(weights([w.shape for w in layer.get_weights()]))
        out = layer(x, training=True) if training else layer(x)
        flat = keras.tree.flatten(out)
        for i, o in enumerate(flat):
            results[f"{name}.{i}"] = keras.ops.convert_to_numpy(o)
        if training:
            for i, w in enumerate(layer.get_weights()):
                results[f"{name}.w{i}"] = w
    np.savez(root + "/keras.npz", **results)
    open(root + "/shapes.json", "w").write(json.dumps(shapes))

    # A model file written by Keras, for dendrite to load.
    inputs = keras.Input((3, 5, 5, 2))
    h = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, name="clstm")(inputs)
    h = L.ConvLSTM2D(2, 2, name="clstm_2")(h)
    h = L.Flatten()(h)
    s = L.Reshape((5, 10))(inputs[:, 0, :, :, :])
    s = L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]))(s)
    a = L.AdaptiveAveragePooling2D(2)(inputs[:, 0])
    a = L.Flatten()(L.SpectralNormalization(L.Dense(2))(a))
    outputs = L.Dense(1)(L.Concatenate()([h, s, a]))
    model = keras.Model(inputs, outputs)
    model.save(root + "/keras_model.keras")
    x = np.load(root + "/model.x.npy")
    np.save(root + "/keras_model.y.npy", keras.ops.convert_to_numpy(model(x)))
    """
)


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    root = tmp_path_factory.mktemp("keras_side")
    rng = np.random.default_rng(0)
    spec = {}
    for name, (source, shape) in {**CASES, **TRAINING_CASES}.items():
        np.save(root / f"{name}.x.npy", rng.standard_normal(shape).astype("float32"))
        spec[name] = (source, shape, name in TRAINING_CASES)
    (root / "cases.json").write_text(json.dumps(spec))
    np.save(root / "model.x.npy", rng.standard_normal((2, 3, 5, 5, 2)).astype("float32"))
    run_keras_side(KERAS_SIDE, root)
    results = dict(np.load(root / "keras.npz"))
    return root, results, json.loads((root / "shapes.json").read_text())


def _flat(out: object) -> list:
    if isinstance(out, (list, tuple)):
        return [leaf for item in out for leaf in _flat(item)]
    return [np.asarray(out.data if isinstance(out, Tensor) else out)]


@pytest.mark.parametrize("name", sorted({**CASES, **TRAINING_CASES}))
def test_matches_keras_with_the_same_weights(keras_results: tuple, name: str) -> None:
    root, results, shapes = keras_results
    source, _ = {**CASES, **TRAINING_CASES}[name]
    training = name in TRAINING_CASES
    layer = eval(source)  # the constructor strings above (Keras' spelling on both sides)
    x = np.load(root / f"{name}.x.npy")
    layer(x)
    assert [list(w.shape) for w in layer.get_weights()] == shapes[name]
    layer.set_weights(_weights([w.shape for w in layer.get_weights()]))
    got = _flat(layer(x, training=True) if training else layer(x))
    expected = [results[f"{name}.{i}"] for i in range(len(got))]
    assert f"{name}.{len(got)}" not in results
    for g, e in zip(got, expected):
        assert g.shape == e.shape, name
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6, err_msg=name)
    if training:
        for i, w in enumerate(layer.get_weights()):
            np.testing.assert_allclose(w, results[f"{name}.w{i}"], rtol=1e-5, atol=1e-6)
    shape = layer.compute_output_shape(x.shape)
    assert [tuple(s) for s in _flat_shapes(shape)] == [g.shape for g in got]


def _flat_shapes(shape: object) -> list:
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [leaf for item in shape for leaf in _flat_shapes(item)]
    return [shape]


def test_keras_written_model_file_loads_with_equal_predictions(
    keras_results: tuple, tmp_path: object
) -> None:
    root, *_ = keras_results
    model = keras.saving.load_model(str(root / "keras_model.keras"))
    x = np.load(root / "model.x.npy")
    expected = np.load(root / "keras_model.y.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    for suffix in (".keras", ".dendrite"):
        path = str(tmp_path / f"again{suffix}")
        model.save(path)
        again = keras.saving.load_model(path)
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


# --- gradients, training, errors ------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": "same", "return_sequences": True},
        {"strides": 2, "go_backwards": True, "data_format": "channels_first"},
    ],
)
def test_conv_lstm2d_gradients_float64(kwargs: dict) -> None:
    layer = L.ConvLSTM2D(2, 2, dtype="float64", **kwargs)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 2, 5, 5) if "data_format" in kwargs else (1, 3, 5, 5, 2))
    layer(x)
    kernel, recurrent, bias = layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias

    def fn(xt: Tensor, k: Tensor, u: Tensor, b: Tensor) -> Tensor:
        kernel.data, recurrent.data, bias.data = k.data, u.data, b.data
        cell = layer.cell
        cell.kernel, cell.recurrent_kernel, cell.bias = k, u, b
        try:
            return layer(xt)
        finally:
            cell.kernel, cell.recurrent_kernel, cell.bias = kernel, recurrent, bias

    gradcheck(fn, x, kernel.data.copy(), recurrent.data.copy(), bias.data.copy(), name="ConvLSTM2D")


def test_batch_of_one_and_masks_and_initial_state() -> None:
    layer = L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, return_state=True)
    x = np.random.default_rng(2).standard_normal((1, 4, 4, 4, 1)).astype("float32")
    seq, h, c = layer(x)
    assert seq.shape == (1, 4, 4, 4, 2) and h.shape == c.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(seq.data[:, -1], h.data)
    mask = np.array([[True, True, False, False]])
    seq_m, h_m, _ = layer(x, mask=mask)
    seq_2, h_2, _ = layer(x[:, :2])
    np.testing.assert_allclose(h_m.data, h_2.data, rtol=1e-6)
    # continuing from the state of the first two steps equals running all four
    _, h_4, _ = layer(x[:, 2:], initial_state=[h_2, layer(x[:, :2])[2]])
    np.testing.assert_allclose(h_4.data, h.data, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=layer.name):
        layer(x, initial_state=[h.data[:, :2], c.data])


def test_stateful_conv_lstm_carries_states() -> None:
    layer = L.ConvLSTM1D(2, 2, padding="same", stateful=True)
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 1)).astype("float32")
    whole = L.ConvLSTM1D(2, 2, padding="same")
    whole(x)
    layer(x[:, :2])
    layer.set_weights(whole.get_weights())
    layer.reset_states()
    layer(x[:, :2])
    np.testing.assert_allclose(layer(x[:, 2:]).data, whole(x).data, rtol=1e-5, atol=1e-6)


def test_errors_name_the_layer_and_the_value() -> None:
    with pytest.raises(ValueError, match="ndim=5|expected ndim"):
        L.ConvLSTM2D(2, 2)(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="filters"):
        L.ConvLSTM2D(0, 2)
    with pytest.raises(ValueError, match="dilation_rate"):
        L.ConvLSTM2D(2, 2, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="power_iterations"):
        L.SpectralNormalization(L.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="kernel' nor 'embeddings"):
        L.SpectralNormalization(L.Flatten())(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Wrapper"):
        L.Wrapper("dense")
    with pytest.raises(ValueError, match="call"):
        StackedRNNCells([object()])
    with pytest.raises(TypeError, match="output_size"):
        L.AdaptiveAveragePooling2D((2, 2, 2))
    with pytest.raises(ValueError, match="output_size"):
        L.AdaptiveMaxPooling1D(0)


def test_small_fit_loss_falls_and_round_trips(tmp_path: object) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 3, 4, 4, 1)).astype("float32")
    y = x.mean(axis=(1, 2, 3, 4))[:, None] * 3
    model = keras.Sequential(
        [
            keras.Input((3, 4, 4, 1)),
            L.ConvLSTM2D(2, 2, padding="same"),
            L.AdaptiveAveragePooling2D(2),
            L.Flatten(),
            L.SpectralNormalization(L.Dense(1)),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    for suffix in (".keras", ".dendrite"):
        path = str(tmp_path / f"m{suffix}")
        model.save(path)
        again = keras.saving.load_model(path)
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_wrapper_subclass_and_config() -> None:
    class Doubling(L.Wrapper):
        def call(self, inputs: Tensor) -> Tensor:
            return self.layer(inputs) * 2.0

    dense = L.Dense(2)
    layer = Doubling(dense)
    x = np.ones((1, 3), dtype="float32")
    np.testing.assert_allclose(layer(x).data, 2 * dense(x).data)
    assert layer.get_weights()[0].shape == (3, 2)
    assert isinstance(L.TimeDistributed(L.Dense(2)), L.Wrapper)
    assert isinstance(L.Bidirectional(L.LSTM(2)), L.Wrapper)
    config = L.Wrapper(L.Dense(4)).get_config()
    assert config["layer"]["class_name"] == "Dense"
    clone = L.Wrapper.from_config(json.loads(json.dumps(config)))
    assert clone.layer.units == 4


def test_stacked_cells_nested_states_float64() -> None:
    cells = [L.LSTMCell(3, dtype="float64"), L.GRUCell(2, dtype="float64")]
    layer = L.RNN(StackedRNNCells(cells), return_state=True, dtype="float64")
    x = np.random.default_rng(5).standard_normal((1, 4, 3))
    out, (h1, c1), h2 = layer(x)
    assert out.shape == (1, 2) and h1.shape == c1.shape == (1, 3) and h2.shape == (1, 2)
    np.testing.assert_array_equal(out.data, h2.data)
    again = layer(x, initial_state=[[h1, c1], h2])
    flat = layer(x, initial_state=[h1, c1, h2])
    np.testing.assert_array_equal(again[0].data, flat[0].data)
    gradcheck(lambda t: layer(t)[0], x, name="RNN(StackedRNNCells)")
