"""``dendrite.applications`` (keras.applications): parameter counts equal to Keras 3's,
Keras' layer names, the top / pooling / classes options, forward passes, preprocessing,
prediction decoding, local weights and the argument errors.

The reference counts below are Keras 3's (keras 3.15, ``weights=None``), measured with
``keras.applications.<Name>(weights=None).count_params()`` (with the top, default input
size, 1000 classes) and ``(weights=None, include_top=False, pooling="avg")`` (without it;
the same at any input size). CI needs no Keras: ``test_matches_real_keras`` compares
against it only where it is installed.

Building the large models at their default size with the top costs seconds each on two
cores, so the full-size counts are built for the smaller or headline models; every
architecture's count is checked without the top at a small input, and its full count
as that plus the top's exact parameter arithmetic. The four largest newer ones (ConvNeXt
Large and XLarge, EfficientNetV2 M and L: 50 to 350 million parameters, seconds each
even at 32x32) are marked ``slow``.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

import dendrite.applications as apps
from dendrite import layers, models
from dendrite.applications import imagenet_utils
from dendrite.core import Tensor

# Keras 3's parameter counts: (with the top at the default size, without the top).
KERAS_COUNTS = {
    "VGG16": (138_357_544, 14_714_688),
    "VGG19": (143_667_240, 20_024_384),
    "ResNet50": (25_636_712, 23_587_712),
    "ResNet101": (44_707_176, 42_658_176),
    "ResNet152": (60_419_944, 58_370_944),
    "ResNet50V2": (25_613_800, 23_564_800),
    "ResNet101V2": (44_675_560, 42_626_560),
    "ResNet152V2": (60_380_648, 58_331_648),
    "MobileNetV2": (3_538_984, 2_257_984),
    "MobileNetV3Small": (2_554_968, 939_120),
    "MobileNetV3Large": (5_507_432, 2_996_352),
    "DenseNet121": (8_062_504, 7_037_504),
    "DenseNet169": (14_307_880, 12_642_880),
    "DenseNet201": (20_242_984, 18_321_984),
    "Xception": (22_910_480, 20_861_480),
    "EfficientNetB0": (5_330_571, 4_049_571),
    "EfficientNetB1": (7_856_239, 6_575_239),
    "EfficientNetB2": (9_177_569, 7_768_569),
    "EfficientNetB3": (12_320_535, 10_783_535),
    "EfficientNetB4": (19_466_823, 17_673_823),
    "EfficientNetB5": (30_562_527, 28_513_527),
    "EfficientNetB6": (43_265_143, 40_960_143),
    "EfficientNetB7": (66_658_687, 64_097_687),
    "MobileNet": (4_253_864, 3_228_864),
    "InceptionV3": (23_851_784, 21_802_784),
    "InceptionResNetV2": (55_873_736, 54_336_736),
    "ConvNeXtTiny": (28_589_128, 27_820_128),
    "ConvNeXtSmall": (50_223_688, 49_454_688),
    "ConvNeXtBase": (88_591_464, 87_566_464),
    "ConvNeXtLarge": (197_767_336, 196_230_336),
    "ConvNeXtXLarge": (350_196_968, 348_147_968),
    "EfficientNetV2B0": (7_200_312, 5_919_312),
    "EfficientNetV2B1": (8_212_124, 6_931_124),
    "EfficientNetV2B2": (10_178_374, 8_769_374),
    "EfficientNetV2B3": (14_467_622, 12_930_622),
    "EfficientNetV2S": (21_612_360, 20_331_360),
    "EfficientNetV2M": (54_431_388, 53_150_388),
    "EfficientNetV2L": (119_027_848, 117_746_848),
    "NASNetMobile": (5_326_716, 4_269_716),
    "NASNetLarge": (88_949_818, 84_916_818),
}
# Seconds to build even at 32x32 (tens to hundreds of millions of parameters).
SLOW_TO_BUILD = ("ConvNeXtLarge", "ConvNeXtXLarge", "EfficientNetV2M", "EfficientNetV2L")
# Built with the top at the default size (one build each, shared by the tests).
FULL_SIZE = (
    "VGG16",
    "ResNet50",
    "ResNet50V2",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "DenseNet121",
    "Xception",
    "EfficientNetB0",
    "MobileNet",
    "EfficientNetV2B0",
    "NASNetMobile",
)
# Keras' default model names, where they are not the module's plain one.
KERAS_MODEL_NAMES = {
    "MobileNetV2": "mobilenetv2_1.00_224",
    "MobileNet": "mobilenet_1.00_224",
    "EfficientNetV2B0": "efficientnetv2-b0",
    "NASNetMobile": "nasnet_mobile",
}


def _top_params(name: str, channels: int, classes: int = 1000) -> int:
    """The parameters Keras' top adds to the ``channels`` features of the last block."""
    if name.startswith("VGG"):
        return (7 * 7 * 512 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * classes
    if name.startswith("MobileNetV3"):
        last_point = 1024 if name.endswith("Small") else 1280
        return (channels + 1) * last_point + (last_point + 1) * classes
    return (channels + 1) * classes


_MODELS: dict[str, object] = {}


def _full(name: str) -> object:
    """The model at its default size with the top, built once (VGG16's 138 M parameters,
    half a gigabyte, are dropped after its tests)."""
    if name not in _MODELS:
        _MODELS[name] = getattr(apps, name)(weights=None)
    return _MODELS[name]


@pytest.fixture(scope="module", autouse=True)
def _drop_models() -> Iterator[None]:
    yield
    _MODELS.clear()


# --- parameter counts and names ---------------------------------------------------------
@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_param_count_is_keras(name: str) -> None:
    model = _full(name)
    assert model.count_params() == KERAS_COUNTS[name][0]
    size = 299 if name == "Xception" else 224
    if name.startswith("MobileNetV3"):  # any size, as in Keras
        size = None
    assert tuple(model.input_shape) == (None, size, size, 3)
    assert tuple(model.output_shape) == (None, 1000)


KERAS_NAMES = {
    "VGG16": ["block1_conv1", "block3_conv3", "block5_pool", "flatten", "fc1", "fc2"],
    "ResNet50": ["conv1_pad", "conv1_conv", "conv1_bn", "pool1_pool", "conv2_block1_0_conv",
                 "conv2_block1_1_conv", "conv4_block6_3_bn", "conv5_block3_out", "avg_pool"],
    "ResNet50V2": ["conv2_block1_preact_bn", "conv3_block4_2_pad", "post_bn", "post_relu"],
    "MobileNetV2": ["Conv1", "bn_Conv1", "expanded_conv_depthwise", "block_1_pad",
                    "block_16_project_BN", "Conv_1", "Conv_1_bn", "out_relu"],
    "MobileNetV3Small": ["conv", "conv_bn", "expanded_conv_squeeze_excite_conv",
                         "expanded_conv_10_project_bn", "conv_1", "conv_2", "logits"],
    "MobileNetV3Large": ["expanded_conv_14_add", "expanded_conv_12_depthwise_pad"],
    "DenseNet121": ["conv1_conv", "pool1", "conv2_block6_concat", "pool4_pool",
                    "conv5_block16_2_conv", "bn", "relu"],
    "Xception": ["block1_conv1", "block2_sepconv1_bn", "block13_pool", "block14_sepconv2_act",
                 "conv2d", "conv2d_3", "batch_normalization_3"],
    "EfficientNetB0": ["rescaling", "normalization", "stem_conv_pad", "stem_conv",
                       "block1a_se_excite", "block2b_drop", "block7a_project_bn", "top_conv",
                       "top_dropout"],
    "MobileNet": ["conv1", "conv1_bn", "conv1_relu", "conv_dw_1", "conv_pw_1_bn", "conv_pad_2",
                  "conv_dw_13_relu", "conv_pw_13_relu", "dropout", "conv_preds", "reshape_2"],
    "EfficientNetV2B0": ["rescaling", "normalization", "stem_conv", "block1a_project_conv",
                         "block1a_project_activation", "block2a_expand_conv", "block2b_drop",
                         "block4a_dwconv2", "block4a_se_excite", "block6h_add", "top_conv",
                         "avg_pool", "top_dropout"],
    "NASNetMobile": ["stem_conv1", "stem_bn1", "reduction_conv_1_stem_1",
                     "separable_conv_1_pad_reduction_left1_stem_1", "adjust_avg_pool_2_stem_2",
                     "adjust_conv_2_0", "adjust_conv_1_5", "adjust_conv_projection_reduce_8",
                     "normal_concat_3", "reduction_add3_reduce_4",
                     "normal_add_5_12", "normal_concat_12"],
    # Checked without the top, at a small input (not built full size):
    "InceptionV3": ["conv2d", "batch_normalization", "activation", "max_pooling2d_1",
                    "average_pooling2d", "mixed0", "conv2d_93", "batch_normalization_93",
                    "mixed9_0", "concatenate_1", "mixed10"],
    "InceptionResNetV2": ["conv2d_3", "mixed_5b", "block35_1_mixed", "block35_1_conv",
                          "custom_scale_layer", "block35_10_ac", "mixed_6a", "block17_20_conv",
                          "block8_10_conv", "custom_scale_layer_39", "conv_7b", "conv_7b_bn",
                          "conv_7b_ac", "conv2d_202", "batch_normalization_202"],
    "ConvNeXtTiny": ["convnext_tiny_prestem_normalization", "convnext_tiny_stem",
                     "convnext_tiny_downsampling_block_2", "convnext_tiny_stage_0_block_0_"
                     "depthwise_conv", "convnext_tiny_stage_2_block_8_layer_scale",
                     "convnext_tiny_stage_3_block_2_identity", "layer_normalization"],
    "EfficientNetV2S": ["rescaling", "block1b_add", "block6o_se_excite", "top_activation"],
    "NASNetLarge": ["adjust_conv_1_7", "adjust_conv_projection_14", "normal_concat_5",
                    "reduction_concat_reduce_12", "normal_concat_18"],
}  # fmt: skip


@pytest.mark.parametrize("name", FULL_SIZE)
def test_layer_names_follow_keras(name: str) -> None:
    model = _full(name)
    names = {layer.name for layer in model.layers}
    assert set(KERAS_NAMES[name]) <= names
    assert model.get_layer("predictions") is not None
    assert model.name == KERAS_MODEL_NAMES.get(name, model.name)
    if name == "VGG16":
        del _MODELS[name]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_BUILD else name
        for name in sorted(KERAS_COUNTS)
    ],
)
def test_every_architecture_without_top_counts_as_keras(name: str) -> None:
    size = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}.get(name, 32)
    model = getattr(apps, name)(
        weights=None, include_top=False, input_shape=(size, size, 3), pooling="avg"
    )
    full, no_top = KERAS_COUNTS[name]
    assert model.count_params() == no_top
    if name not in FULL_SIZE:  # their names are checked on the full-size model
        assert set(KERAS_NAMES.get(name, ())) <= {layer.name for layer in model.layers}
    channels = model.output_shape[-1]
    assert tuple(model.output_shape) == (None, channels)
    assert model.count_params() + _top_params(name, channels) == full


# --- options ----------------------------------------------------------------------------------
def test_pooling_none_avg_max_give_the_keras_shapes() -> None:
    kw = {"weights": None, "include_top": False, "input_shape": (64, 64, 3)}
    assert tuple(apps.MobileNetV3Small(**kw).output_shape) == (None, 2, 2, 576)
    assert tuple(apps.MobileNetV3Small(pooling="max", **kw).output_shape) == (None, 576)
    assert tuple(apps.ResNet50(pooling="max", **kw).output_shape) == (None, 2048)
    assert tuple(apps.VGG16(**kw).output_shape) == (None, 2, 2, 512)
    free = apps.DenseNet121(weights=None, include_top=False)
    assert tuple(free.input_shape) == (None, None, None, 3)


def test_classes_and_classifier_activation() -> None:
    model = apps.MobileNetV2(weights=None, classes=10, classifier_activation=None)
    assert tuple(model.output_shape) == (None, 10)
    assert model.count_params() == 2_270_794  # Keras 3's, classes=10
    x = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    logits = np.asarray(model.predict(x, verbose=0))
    assert not np.allclose(logits.sum(axis=1), 1.0)
    small = apps.MobileNetV3Small(
        weights=None, input_shape=(64, 64, 3), classes=7, classifier_activation="sigmoid"
    )
    out = np.asarray(small.predict(x[:, :64, :64] * 127.5 + 127.5, verbose=0))
    assert out.shape == (2, 7) and np.all((out > 0) & (out < 1))


def test_forward_passes_on_small_inputs() -> None:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    v3 = apps.MobileNetV3Small(weights=None, input_shape=(64, 64, 3))
    probs = np.asarray(v3.predict(images, verbose=0))
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    eff = apps.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3))
    features = np.asarray(eff.predict(images, verbose=0))
    assert features.shape == (2, 2, 2, 1280) and np.all(np.isfinite(features))
    res = apps.ResNet50V2(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    out = np.asarray(res(Tensor(apps.resnet_v2.preprocess_input(images[:, :32, :32].copy()))))
    assert out.shape == (2, 2048) and np.all(np.isfinite(out))


def _small_convnext(**kwargs: object) -> object:
    return apps.convnext.ConvNeXt(
        [1, 1, 2, 1], [8, 16, 24, 32], weights=None, input_shape=(32, 32, 3), **kwargs
    )


def test_mobilenet_names_size_and_depth_multiplier_as_keras() -> None:
    model = apps.MobileNet(
        weights=None, alpha=0.25, depth_multiplier=2, include_top=False, input_shape=(160, 160, 3)
    )
    assert model.name == "mobilenet_0.25_160"
    assert tuple(model.get_layer("conv_dw_1").weights[0].shape) == (3, 3, 8, 2)
    assert tuple(model.get_layer("conv_pw_1").weights[0].shape) == (1, 1, 16, 16)
    assert tuple(model.output_shape) == (None, 5, 5, 256)
    odd = apps.MobileNet(weights=None, alpha=0.25, include_top=False, input_shape=(100, 100, 3))
    assert odd.name == "mobilenet_0.25_100"


def test_efficientnet_v2_preprocessing_follows_the_variant() -> None:
    stage = [
        {"kernel_size": 3, "num_repeat": 1, "input_filters": 8, "output_filters": 8,
         "expand_ratio": 1, "se_ratio": 0, "strides": 1, "conv_type": 1}
    ]  # fmt: skip
    kw = {"weights": None, "include_top": False, "input_shape": (32, 32, 3)}
    build = apps.efficientnet_v2.EfficientNetV2
    b = build(1.0, 1.0, 224, blocks_args=stage, name="efficientnetv2-b0", **kw)
    s = build(1.0, 1.0, 384, blocks_args=stage, name="efficientnetv2-s", **kw)
    plain = build(1.0, 1.0, 384, blocks_args=stage, name="x", include_preprocessing=False, **kw)
    names = [{layer.name for layer in m.layers} for m in (b, s, plain)]
    assert {"rescaling", "normalization"} <= names[0]
    assert "rescaling" in names[1] and "normalization" not in names[1]
    assert not {"rescaling", "normalization"} & names[2]
    x = np.full((1, 32, 32, 3), 64.0, dtype="float32")
    scaled = models.Model(s.inputs, s.get_layer("rescaling").output).predict(x, verbose=0)
    np.testing.assert_allclose(scaled, -0.5)  # x / 128 - 1
    normalized = models.Model(b.inputs, b.get_layer("normalization").output).predict(x, verbose=0)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(normalized[0, 0, 0], (64 / 255 - mean) / std, rtol=1e-5)


def test_convnext_preprocessing_layer_scale_and_stochastic_depth() -> None:
    model = _small_convnext(drop_path_rate=0.3, classes=4)
    names = {layer.name for layer in model.layers}
    assert "convnext_prestem_normalization" in names
    rates = [
        layer.drop_path_rate
        for layer in model.layers
        if isinstance(layer, apps.convnext.StochasticDepth)
    ]
    np.testing.assert_allclose(rates, [0.3 / 4, 0.3 * 2 / 4, 0.3 * 3 / 4, 0.3])  # 0 is identity
    assert "convnext_stage_0_block_0_identity" in names
    gamma = model.get_layer("convnext_stage_1_block_0_layer_scale").weights[0]
    np.testing.assert_allclose(np.asarray(gamma.numpy()), np.full(16, 1e-6, "float32"))
    probs = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)), verbose=0)
    np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, rtol=1e-5)
    raw = _small_convnext(include_top=False, include_preprocessing=False)
    assert not any("prestem" in layer.name for layer in raw.layers)
    assert raw.layers[-1].name == "layer_normalization"  # Keras' final norm without the top
    gray = apps.convnext.ConvNeXt(
        [1, 1, 1, 1], [8, 8, 8, 8], weights=None, include_top=False, input_shape=(32, 32, 1)
    )
    assert not any("prestem" in layer.name for layer in gray.layers)


def test_stochastic_depth_drops_whole_samples_in_training_only() -> None:
    layer = apps.convnext.StochasticDepth(0.5)
    x = np.ones((64, 3, 3, 2), dtype="float32")
    np.testing.assert_array_equal(np.asarray(layer(x).numpy()), x)
    out = np.asarray(layer(x, training=True).numpy())
    per_sample = out.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}  # kept samples scaled by 1 / keep
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    assert 0 < (per_sample[:, 0] == 0).sum() < 64
    config = layer.get_config()
    assert apps.convnext.StochasticDepth.from_config(config).drop_path_rate == 0.5


def test_inception_resnet_scale_layer() -> None:
    layer = apps.inception_resnet_v2.CustomScaleLayer(0.17)
    a = np.arange(6, dtype="float32").reshape(2, 3)
    b = np.full((2, 3), 2.0, dtype="float32")
    np.testing.assert_allclose(np.asarray(layer([a, b]).numpy()), a + 0.34, rtol=1e-6)
    assert layer.get_config()["scale"] == 0.17
    assert not layer.weights


def test_inception_automatic_names_continue_after_an_input_tensor_graph() -> None:
    image = layers.Input(shape=(75, 75, 3))
    stem = layers.Conv2D(3, 1, name="conv2d")(image)  # a name Inception's first unit wants
    model = apps.InceptionV3(weights=None, include_top=False, input_tensor=stem)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert names[:4] == [image.name, "conv2d", "conv2d_1", "batch_normalization"]
    assert "conv2d_94" in names and "conv2d_95" not in names


def test_nasnet_defaults_as_keras() -> None:
    small = apps.nasnet.NASNet(
        input_shape=(32, 32, 3), penultimate_filters=96, num_blocks=1, stem_block_filters=8,
        weights=None, classes=3,
    )  # fmt: skip
    out = np.asarray(small.predict(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3))))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    mobile = apps.NASNetMobile(weights=None, include_top=False, pooling="avg")
    assert tuple(mobile.input_shape) == (None, 224, 224, 3)  # not a free size, as Keras
    assert mobile.name == "nasnet_mobile"


def test_input_tensor_is_used_as_the_model_input() -> None:
    image = layers.Input(shape=(48, 48, 3))
    model = apps.DenseNet121(weights=None, include_top=False, input_tensor=image, pooling="avg")
    assert model.inputs[0] is image
    assert tuple(model.output_shape) == (None, 1024)
    with pytest.raises(ValueError, match="KerasTensor"):
        apps.VGG16(weights=None, input_tensor=np.zeros((1, 224, 224, 3)))


def test_local_weights_file_round_trips(tmp_path: object) -> None:
    kw = {"include_top": False, "input_shape": (32, 32, 3), "pooling": "avg"}
    first = apps.MobileNetV3Small(weights=None, **kw)
    path = os.path.join(str(tmp_path), "small.weights.h5")
    first.save_weights(path)
    second = apps.MobileNetV3Small(weights=path, **kw)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))
    other = apps.MobileNetV3Large(weights=None, **kw)
    other_path = os.path.join(str(tmp_path), "large.weights.h5")
    other.save_weights(other_path)
    with pytest.raises(ValueError, match="Keras' published application files"):
        apps.MobileNetV3Small(weights=other_path, **kw)


# --- errors -----------------------------------------------------------------------------------
def test_imagenet_weights_raise_clearly() -> None:
    for fn in (
        apps.VGG16, apps.ResNet50, apps.MobileNetV2, apps.EfficientNetB0, apps.MobileNet,
        apps.InceptionV3, apps.InceptionResNetV2, apps.ConvNeXtTiny, apps.EfficientNetV2S,
        apps.NASNetMobile, apps.NASNetLarge,
    ):  # fmt: skip
        with pytest.raises(ValueError, match="downloads nothing.*weights=None"):
            fn()


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (apps.VGG16, {"weights": "no/such/file.weights.h5"}, "local weights file"),
        (apps.ResNet50, {"weights": 3}, "local weights file"),
        (apps.VGG16, {"include_top": False, "pooling": "sum"}, "pooling"),
        (apps.VGG16, {"include_top": False, "input_shape": (16, 16, 3)}, "at least 32x32"),
        (apps.Xception, {"include_top": False, "input_shape": (70, 70, 3)}, "at least 71x71"),
        (apps.ResNet50, {"include_top": False, "input_shape": (64, 64)}, "three integers"),
        (apps.DenseNet121, {"input_shape": (None, None, 3)}, "static `input_shape`"),
        (apps.MobileNetV3Small, {"input_shape": (16, 16, 3)}, "at least 32x32"),
        (apps.VGG16, {"classes": 0}, "classes"),
        (apps.InceptionV3, {"include_top": False, "input_shape": (74, 74, 3)}, "at least 75x75"),
        (apps.InceptionResNetV2, {"input_shape": (None, None, 3)}, "static `input_shape`"),
        (apps.ConvNeXtTiny, {"include_top": False, "pooling": "mean"}, "pooling"),
        (apps.EfficientNetV2B0, {"weights": "missing.weights.h5"}, "local weights file"),
        (apps.nasnet.NASNet, {"penultimate_filters": 100}, "multiple of 24"),
        (
            functools.partial(apps.efficientnet_v2.EfficientNetV2, 1.0, 1.0, 224),
            {"name": "x"},
            "stage table",
        ),
    ],
)
def test_bad_arguments_raise(fn: object, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(**{"weights": None, **kwargs})


def test_odd_channel_count_warns_as_keras() -> None:
    with pytest.warns(UserWarning, match="1 or 3 input channels"):
        apps.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 5))


# --- preprocessing ----------------------------------------------------------------------------
def _image() -> np.ndarray:
    return np.arange(2 * 2 * 2 * 3, dtype="float32").reshape(2, 2, 2, 3) * 10.0


def test_preprocess_caffe() -> None:
    x = _image()
    expected = x[..., ::-1] - np.array([103.939, 116.779, 123.68], "float32")
    out = imagenet_utils.preprocess_input(x.copy(), mode="caffe")
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(apps.vgg16.preprocess_input(x.copy()), expected, rtol=1e-6)
    np.testing.assert_allclose(apps.resnet50.preprocess_input(x.copy()), expected, rtol=1e-6)
    first = np.moveaxis(x, -1, 1).copy()
    out_cf = imagenet_utils.preprocess_input(first, data_format="channels_first", mode="caffe")
    np.testing.assert_allclose(np.moveaxis(out_cf, 1, -1), expected, rtol=1e-6)
    one = imagenet_utils.preprocess_input(x[0].copy(), mode="caffe")  # a single 3D image
    np.testing.assert_allclose(one, expected[0], rtol=1e-6)


def test_preprocess_tf_scales_to_minus_one_one_in_place() -> None:
    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    out = apps.mobilenet_v2.preprocess_input(x)
    np.testing.assert_allclose(out, [[[[-1.0, 0.0, 1.0]]]])
    assert out is x  # a float array is preprocessed in place, as in Keras
    ints = np.full((1, 2, 2, 3), 255, dtype="uint8")
    out_int = apps.xception.preprocess_input(ints)
    assert out_int.dtype == np.float32 and np.all(out_int == 1.0)


def test_preprocess_torch() -> None:
    x = _image()
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    out = apps.densenet.preprocess_input(x.copy())
    np.testing.assert_allclose(out, (x / 255.0 - mean) / std, rtol=1e-5)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocess_tensor_matches_numpy(mode: str) -> None:
    x = _image()
    out = imagenet_utils.preprocess_input(Tensor(x.copy()), mode=mode)
    assert isinstance(out, Tensor)
    expected = imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(np.asarray(out.numpy()), expected, rtol=1e-5, atol=1e-5)


def test_preprocess_identity_for_self_normalizing_models() -> None:
    x = _image()
    assert apps.mobilenet_v3.preprocess_input(x) is x
    assert apps.efficientnet.preprocess_input(x) is x
    assert apps.efficientnet_v2.preprocess_input(x) is x
    assert apps.convnext.preprocess_input(x) is x


def test_preprocess_tf_mode_families() -> None:
    expected = _image() / 127.5 - 1.0
    for module in (apps.mobilenet, apps.inception_v3, apps.inception_resnet_v2, apps.nasnet):
        np.testing.assert_allclose(module.preprocess_input(_image()), expected, rtol=1e-6)


def test_preprocess_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        imagenet_utils.preprocess_input(_image(), mode="keras")
    with pytest.raises(ValueError, match="data_format"):
        imagenet_utils.preprocess_input(_image(), data_format="channels_middle")


# --- decoding ---------------------------------------------------------------------------------
@pytest.fixture
def class_index_file(tmp_path: object) -> str:
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = os.path.join(str(tmp_path), "imagenet_class_index.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(index, f)
    return path


@pytest.fixture(autouse=True)
def _fresh_class_index(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    monkeypatch.setenv("KERAS_HOME", os.path.join(str(tmp_path), "keras_home"))


def test_decode_predictions_format(class_index_file: str) -> None:
    preds = np.zeros((2, 1000), dtype="float32")
    preds[0, [3, 7, 9]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    decoded = apps.resnet50.decode_predictions(preds, top=3, class_index=class_index_file)
    assert len(decoded) == 2 and len(decoded[0]) == 3
    assert [d[:2] for d in decoded[0]] == [
        ("n00000003", "class_3"),
        ("n00000007", "class_7"),
        ("n00000009", "class_9"),
    ]
    assert decoded[0][0][2] == pytest.approx(0.5)
    assert decoded[1][0][:2] == ("n00000999", "class_999")
    # read once, then remembered (as Keras' CLASS_INDEX)
    assert len(imagenet_utils.decode_predictions(preds)[0]) == 5


def test_decode_predictions_reads_keras_cache(class_index_file: str) -> None:
    cache = os.path.join(os.environ["KERAS_HOME"], "models")
    os.makedirs(cache)
    os.replace(class_index_file, os.path.join(cache, "imagenet_class_index.json"))
    decoded = imagenet_utils.decode_predictions(np.eye(1000, dtype="float32")[:1], top=1)
    assert decoded[0][0][:2] == ("n00000000", "class_0")


def test_decode_predictions_errors(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="downloads nothing.*class_index"):
        imagenet_utils.decode_predictions(np.zeros((1, 1000)))
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        imagenet_utils.decode_predictions(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="'0' .. '999'"):
        imagenet_utils.decode_predictions(np.zeros((1, 1000)), class_index={"0": ["a", "b"]})


# --- the namespace ----------------------------------------------------------------------------
def test_keras_module_aliases() -> None:
    assert apps.vgg16.VGG16 is apps.VGG16 and apps.vgg19.VGG19 is apps.VGG19
    assert apps.resnet50.ResNet50 is apps.resnet.ResNet50 is apps.ResNet50
    assert apps.resnet_v2.ResNet152V2 is apps.ResNet152V2
    for module in (
        apps.vgg16, apps.vgg19, apps.resnet, apps.resnet50, apps.resnet_v2, apps.mobilenet_v2,
        apps.mobilenet_v3, apps.efficientnet, apps.densenet, apps.xception, apps.mobilenet,
        apps.inception_v3, apps.inception_resnet_v2, apps.convnext, apps.efficientnet_v2,
        apps.nasnet,
    ):  # fmt: skip
        assert callable(module.preprocess_input) and callable(module.decode_predictions)
    assert set(apps.__all__) >= set(KERAS_COUNTS)
    assert isinstance(_full("MobileNetV3Small"), models.Model)


# --- against real Keras, where it is installed ------------------------------------------------
# (tests/test_applications_keras_weights.py loads Keras-saved weights and compares predictions)
REAL_KERAS_CASES = [
    ("MobileNetV3Small", {}),
    ("ResNet50", {"include_top": False, "input_shape": (32, 32, 3)}),
    ("MobileNet", {"alpha": 0.5, "depth_multiplier": 2, "input_shape": (128, 128, 3)}),
    ("ConvNeXtTiny", {"include_top": False, "input_shape": (32, 32, 3)}),
    ("EfficientNetV2S", {"include_top": False, "input_shape": (32, 32, 3), "pooling": "max"}),
]


@pytest.mark.parametrize(("name", "kwargs"), REAL_KERAS_CASES, ids=[c[0] for c in REAL_KERAS_CASES])
def test_matches_real_keras(name: str, kwargs: dict) -> None:
    """Every weighted layer's name and weight shapes, and the model's name, equal Keras'."""
    keras = pytest.importorskip("keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.backend.clear_session()
        theirs = getattr(keras.applications, name)(weights=None, **kwargs)
        ours = getattr(apps, name)(weights=None, **kwargs)
    assert ours.count_params() == theirs.count_params()
    assert ours.name == theirs.name
    expected = {
        layer.name: [tuple(w.shape) for w in layer.weights]
        for layer in theirs.layers
        if layer.weights
    }
    got = {
        layer.name: [tuple(w.shape) for w in layer.weights]
        for layer in ours.layers
        if layer.weights
    }
    assert got == expected


# --- argument handling as Keras 3.15 (checked against keras.applications, weights=None) ------
def test_mobilenet_v2_v3_refuse_an_input_tensor_wider_than_input_shape() -> None:
    """Keras' MobileNetV2 / V3 raise when both are given and the widths differ."""
    image = layers.Input(shape=(32, 32, 3))
    for fn, kw, model in (
        (apps.MobileNetV2, {"alpha": 0.35}, "MobileNetV2"),
        (apps.MobileNetV3Small, {"alpha": 0.75}, "MobileNetV3Small"),
    ):
        with pytest.raises(
            ValueError, match=rf"{model}: .*width.*\(None, 32, 32, 3\).*\(40, 40, 3\)"
        ):
            fn(weights=None, include_top=False, input_tensor=image, input_shape=(40, 40, 3), **kw)
    # the same width (only the width is compared, as in Keras) builds on the tensor
    model = apps.MobileNetV2(
        weights=None, alpha=0.35, include_top=False, input_tensor=image, input_shape=(48, 32, 3)
    )
    assert model.inputs[0] is image


def test_preprocess_default_data_format_is_the_global_one() -> None:
    """``data_format=None`` means ``keras.config.image_data_format()``, as in Keras."""
    from dendrite import config

    rng = np.random.default_rng(0)
    first = rng.uniform(0, 255, (2, 3, 4, 5)).astype("float32")
    config.set_image_data_format("channels_first")
    try:
        for module in (apps.vgg16, apps.densenet):
            got = module.preprocess_input(first.copy())
            want = module.preprocess_input(first.copy(), data_format="channels_first")
            np.testing.assert_allclose(got, want)
        tensor = imagenet_utils.preprocess_input(Tensor(first.copy()), mode="caffe")
        np.testing.assert_allclose(
            np.asarray(tensor.numpy()),
            imagenet_utils.preprocess_input(first.copy(), "channels_first", mode="caffe"),
            rtol=1e-6,
        )
    finally:
        config.set_image_data_format("channels_last")


def test_applications_refuse_a_global_channels_first_layout() -> None:
    """dendrite builds channels_last only: a clear error instead of a broken model."""
    from dendrite import config

    config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="resnet50: .*channels_last.*'channels_first'"):
            apps.ResNet50(weights=None, include_top=False, input_shape=(3, 32, 32))
    finally:
        config.set_image_data_format("channels_last")


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (apps.VGG16, {"weights": "no/such/file.weights.h5"}, "vgg16: .*no/such/file"),
        (apps.DenseNet121, {"include_top": False, "pooling": "sum"}, "densenet121: .*'sum'"),
        (apps.ResNet50, {"classes": 0}, r"resnet50: .*classes=0"),
        (
            apps.InceptionV3,
            {"include_top": False, "input_shape": (74, 74, 3)},
            r"inception_v3: .*at least 75x75.*\(74, 74, 3\)",
        ),
        (apps.Xception, {"input_shape": (None, None, 3)}, r"xception: .*static.*\(None, None, 3\)"),
        (apps.MobileNet, {"input_shape": (32, 32)}, r"MobileNet: .*three integers.*\(32, 32\)"),
        (apps.MobileNetV3Small, {"input_shape": (16, 48, 3)}, r"MobileNetV3Small: .*32x32.*16, 48"),
    ],
)
def test_argument_errors_name_the_model(fn: object, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(**{"weights": None, **kwargs})


KERAS_ARGUMENT_CASES = [
    ("ResNet50", {"include_top": False, "input_shape": (16, 16, 3)}),
    ("VGG16", {"include_top": False, "input_shape": (31, 31, 3)}),
    ("Xception", {"include_top": False, "input_shape": (71, 70, 3)}),
    ("InceptionV3", {"include_top": False, "input_shape": (74, 74, 3)}),
    ("InceptionResNetV2", {"include_top": False, "input_shape": (74, 75, 3)}),
    ("NASNetLarge", {"include_top": False, "input_shape": (31, 31, 3)}),
    ("MobileNetV3Large", {"include_top": False, "input_shape": (31, 64, 3)}),
    ("DenseNet121", {"input_shape": (None, None, 3)}),
    ("EfficientNetB0", {"include_top": False, "input_shape": (64, 64)}),
]


@pytest.mark.parametrize(
    ("name", "kwargs"), KERAS_ARGUMENT_CASES, ids=[c[0] for c in KERAS_ARGUMENT_CASES]
)
def test_input_shape_errors_as_real_keras(name: str, kwargs: dict) -> None:
    """The same error type as Keras, carrying the sizes Keras' message carries."""
    keras = pytest.importorskip("keras")
    with pytest.raises(ValueError) as theirs:
        getattr(keras.applications, name)(weights=None, **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(apps, name)(weights=None, **kwargs)
    for fact in ("at least 32x32", "at least 71x71", "at least 75x75", "static `input_shape`"):
        assert (fact in str(theirs.value)) == (fact in str(ours.value))
    if "Received" in str(theirs.value):
        assert str(kwargs["input_shape"]) in str(ours.value)


@pytest.mark.parametrize("family", ["vgg16", "resnet_v2", "densenet", "efficientnet", "convnext"])
@pytest.mark.parametrize("data_format", [None, "channels_first"])
def test_preprocess_input_matches_real_keras(family: str, data_format: str | None) -> None:
    keras = pytest.importorskip("keras")
    shape = (2, 3, 5, 6) if data_format == "channels_first" else (2, 5, 6, 3)
    batch = np.random.default_rng(3).uniform(0, 255, shape).astype("float32")
    theirs = getattr(keras.applications, family).preprocess_input(batch.copy(), data_format)
    ours = getattr(apps, family).preprocess_input(batch.copy(), data_format)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6, atol=1e-5)


def test_preprocess_shifts_only_the_first_three_channels_of_an_rgba_array():
    """As Keras' NumPy path: caffe flips all four channels, then shifts the first three;
    torch scales the first three; on a tensor four channels are refused by name."""
    from dendrite.applications import imagenet_utils
    from dendrite.core import Tensor

    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 4)).astype("float32")
    caffe = imagenet_utils.preprocess_input(x.copy(), mode="caffe")
    expected = x[..., ::-1].copy()
    expected[..., :3] -= np.array([103.939, 116.779, 123.68], "float32")
    np.testing.assert_allclose(caffe, expected, rtol=1e-6)
    torch_mode = imagenet_utils.preprocess_input(x.copy(), mode="torch")
    scaled = x / 255.0
    scaled[..., :3] = (scaled[..., :3] - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(torch_mode, scaled, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expects 3 colour channels on axis -1.*\(2, 3, 3, 4\)"):
        imagenet_utils.preprocess_input(Tensor(x), mode="caffe")
