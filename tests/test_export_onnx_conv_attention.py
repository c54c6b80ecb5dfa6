"""ONNX export of convolution options and masked attention, against ``predict`` (float32,
within 1e-5 relative to the output's scale): strides, dilation, groups, padding
valid/same/causal, channels_first, transposed output_padding, pooling with 'same';
MultiHeadAttention, GroupQueryAttention (gated, windowed), Attention and Softmax fed by
Embedding(mask_zero) masks, causal
masks and attention scores as a second output."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402

TOLERANCE = 1e-5
L = K.layers


def _check(model, data, path) -> None:
    expected = model.predict(data, verbose=0)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = run_onnx(path, data)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert max_relative_difference(g, e) <= TOLERANCE


CONVS = [
    ((9, 9, 4), lambda: L.Conv2D(6, 3, strides=2, dilation_rate=1, groups=2, padding="same")),
    ((9, 9, 4), lambda: L.Conv2D(4, 3, dilation_rate=2, activation="relu")),
    ((4, 9, 9), lambda: L.Conv2D(5, (3, 2), data_format="channels_first", padding="same")),
    ((10, 4), lambda: L.Conv1D(4, 3, dilation_rate=2, padding="causal")),
    ((10, 4), lambda: L.Conv1D(6, 2, strides=3, groups=2)),
    ((5, 5, 3), lambda: L.Conv2DTranspose(4, 3, strides=2, output_padding=1)),
    ((5, 5, 3), lambda: L.Conv2DTranspose(2, 2, strides=3, padding="same")),
    ((7, 3), lambda: L.Conv1DTranspose(2, 4, strides=2, padding="same")),
    ((9, 9, 3), lambda: L.DepthwiseConv2D(3, strides=2, depth_multiplier=3, padding="same")),
    ((9, 9, 3), lambda: L.SeparableConv2D(4, 3, dilation_rate=2)),
    ((9, 9, 3), lambda: L.MaxPooling2D(3, strides=2, padding="same")),
    ((9, 9, 3), lambda: L.AveragePooling2D(2, strides=1, padding="same")),
    ((3, 9, 9), lambda: L.MaxPooling2D(2, data_format="channels_first")),
    ((4, 4, 3), lambda: L.UpSampling2D(2)),
]


@pytest.mark.parametrize("shape, layer", CONVS, ids=[str(k) for k in range(len(CONVS))])
def test_convolution_options(shape, layer, tmp_path) -> None:
    x = K.Input(shape=shape)
    model = K.Model(x, layer()(x))
    model.export(tmp_path / "conv.onnx")
    data = np.random.default_rng(0).standard_normal((7, *shape)).astype("float32")
    _check(model, data[:1], tmp_path / "conv.onnx")
    _check(model, data, tmp_path / "conv.onnx")


def _tokens(steps=6):
    tokens = np.random.default_rng(1).integers(1, 30, size=(7, steps)).astype("int64")
    tokens[0, 3:] = 0
    tokens[1, 1] = 0
    return tokens


def test_masked_multi_head_attention_with_scores(tmp_path) -> None:
    ids = K.Input(shape=(6,), dtype="int64")
    h = L.Embedding(30, 8, mask_zero=True)(ids)
    out, scores = L.MultiHeadAttention(num_heads=2, key_dim=4)(h, h, return_attention_scores=True)
    pooled = L.GlobalAveragePooling1D()(L.LayerNormalization()(out + h))
    model = K.Model(ids, [pooled, scores])
    model.export(tmp_path / "mha.onnx")
    _check(model, _tokens(), tmp_path / "mha.onnx")


def test_causal_multi_head_attention_cross(tmp_path) -> None:
    q, v = K.Input(shape=(5, 6), name="q"), K.Input(shape=(5, 4), name="v")
    out = L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=3)(q, v, use_causal_mask=True)
    model = K.Model([q, v], out)
    model.export(tmp_path / "causal.onnx")
    rng = np.random.default_rng(2)
    data = [
        rng.standard_normal((7, 5, 6)).astype("float32"),
        rng.standard_normal((7, 5, 4)).astype("float32"),
    ]
    _check(model, data, tmp_path / "causal.onnx")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_key_value_heads": 2},
        {"num_key_value_heads": 1, "use_gate": True, "sliding_window": 2},
        {"num_key_value_heads": 4, "use_bias": False},
    ],
)
def test_group_query_attention_masked_gated_windowed(kwargs, tmp_path) -> None:
    ids = K.Input(shape=(6,), dtype="int64")
    h = L.Embedding(30, 8, mask_zero=True)(ids)
    layer = L.GroupQueryAttention(head_dim=3, num_query_heads=4, **kwargs)
    out, scores = layer(h, h, use_causal_mask=True, return_attention_scores=True)
    model = K.Model(ids, [out, scores])
    model.export(tmp_path / "gqa.onnx")
    _check(model, _tokens(), tmp_path / "gqa.onnx")


@pytest.mark.parametrize("kwargs", [{}, {"use_scale": True, "score_mode": "concat"}])
def test_masked_attention(kwargs, tmp_path) -> None:
    ids = K.Input(shape=(6,), dtype="int64")
    h = L.Embedding(30, 4, mask_zero=True)(ids)
    out = L.Attention(**kwargs)([h, h], use_causal_mask=True)
    model = K.Model(ids, L.Softmax()(L.Dense(3)(out)))
    model.export(tmp_path / "att.onnx")
    _check(model, _tokens(), tmp_path / "att.onnx")


@pytest.mark.filterwarnings("ignore:LayerNormalization.*rms_scaling:UserWarning")
@pytest.mark.parametrize(
    "layer",
    [
        lambda: L.RMSNormalization(),
        lambda: L.RMSNormalization(axis=[1, 2], epsilon=1e-3),
        lambda: L.LayerNormalization(rms_scaling=True),
        lambda: L.LayerNormalization(axis=[1, 2]),
    ],
    ids=["rms", "rms_two_axes", "layer_rms_scaling", "layer"],
)
def test_normalizations(layer, tmp_path) -> None:
    """RMSNormalization, and LayerNormalization's rms_scaling as Keras computes it."""
    x = K.Input(shape=(5, 4))
    model = K.Model(x, layer()(x))
    rng = np.random.default_rng(2)
    model.set_weights(
        [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.export(tmp_path / "norm.onnx")
    _check(model, rng.standard_normal((7, 5, 4)).astype("float32") + 1, tmp_path / "norm.onnx")


def test_center_crop_and_colour_augmentation_export(tmp_path) -> None:
    """CenterCrop is a Slice; RandomContrast and RandomBrightness act only in training."""
    x = K.Input(shape=(7, 6, 3))
    y = L.RandomBrightness(0.2)(L.RandomContrast(0.3)(x))
    model = K.Model(x, L.CenterCrop(3, 4)(y))
    model.export(tmp_path / "crop.onnx")
    data = np.random.default_rng(3).uniform(0, 255, (5, 7, 6, 3)).astype("float32")
    _check(model, data, tmp_path / "crop.onnx")
    small = K.Model(x, L.CenterCrop(9, 4)(x))
    with pytest.raises(Exception, match="CenterCrop|center_crop"):
        small.export(tmp_path / "small.onnx")


@pytest.mark.parametrize(
    "equation, shape, bias_axes",
    [
        ("abc,cd->abd", (None, 4), "d"),
        ("...b,bc->...c", 4, None),
        ("abc,cde->abde", (None, 2, 3), "de"),
    ],
)
def test_einsum_dense(equation, shape, bias_axes, tmp_path) -> None:
    x = K.Input(shape=(3, 5))
    layer = L.EinsumDense(equation, shape, bias_axes=bias_axes, activation="tanh")
    model = K.Model(x, layer(x))
    model.export(tmp_path / "einsum.onnx")
    _check(
        model,
        np.random.default_rng(4).standard_normal((6, 3, 5)).astype("float32"),
        tmp_path / "einsum.onnx",
    )


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_and_category_encoding(mode, tmp_path) -> None:
    """Bins by comparison with the boundaries; encodings by OneHot and a reduction."""
    x = K.Input(shape=(4,))
    binned = L.Discretization(bin_boundaries=[-1.0, 0.0, 0.5], output_mode=mode)(x)
    model = K.Model(x, binned)
    model.export(tmp_path / "bins.onnx")
    data = np.random.default_rng(5).standard_normal((6, 4)).astype("float32")
    got = run_onnx(tmp_path / "bins.onnx", data)[0]
    np.testing.assert_array_equal(got, model.predict(data, verbose=0))
    if mode == "int":
        return
    ids = K.Input(shape=(3,), dtype="int64")
    encoded = K.Model(ids, L.CategoryEncoding(5, output_mode=mode)(ids))
    encoded.export(tmp_path / "encode.onnx")
    tokens = np.random.default_rng(6).integers(0, 5, (6, 3))
    np.testing.assert_array_equal(
        run_onnx(tmp_path / "encode.onnx", tokens)[0], encoded.predict(tokens, verbose=0)
    )


ADAPTIVE = [
    ((10, 3), lambda: L.AdaptiveAveragePooling1D(4)),
    ((7, 9, 2), lambda: L.AdaptiveMaxPooling2D((3, 4))),
    ((2, 7, 9), lambda: L.AdaptiveAveragePooling2D(5, data_format="channels_first")),
    ((5, 6, 7, 2), lambda: L.AdaptiveMaxPooling3D((2, 4, 3))),
]


@pytest.mark.parametrize("shape, layer", ADAPTIVE, ids=[str(k) for k in range(len(ADAPTIVE))])
def test_adaptive_pooling_uneven_windows(shape, layer, tmp_path) -> None:
    x = K.Input(shape=shape)
    model = K.Model(x, layer()(x))
    model.export(tmp_path / "adaptive.onnx")
    data = np.random.default_rng(3).standard_normal((4, *shape)).astype("float32")
    _check(model, data, tmp_path / "adaptive.onnx")


def test_spectral_normalization_exports_its_trained_kernel(tmp_path) -> None:
    model = K.Sequential([K.Input((6,)), L.SpectralNormalization(L.Dense(3)), L.Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((16, 6)).astype("float32"), rng.standard_normal((16, 1))
    model.fit(x, y.astype("float32"), epochs=2, verbose=0)
    model.export(tmp_path / "spectral.onnx")
    _check(model, x, tmp_path / "spectral.onnx")
