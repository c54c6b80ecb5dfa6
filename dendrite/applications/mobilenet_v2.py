"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018), as ``keras.applications.mobilenet_v2``.

Stem ``Conv1`` (3x3/2, 32*alpha, no bias) -> ``bn_Conv1`` -> ``Conv1_relu`` (ReLU6). Then
17 inverted residual blocks: ``block_{i}_expand`` (1x1 to 6x the input channels, BN,
ReLU6; absent in the first block, named ``expanded_conv_``) -> ``_depthwise`` (3x3; a
stride-2 one is preceded by ``_pad``, TensorFlow's 'same' padding) -> BN, ReLU6 ->
``_project`` (1x1, linear) -> BN, plus ``_add`` (identity shortcut) when the shape is
unchanged. Output channels (times alpha, rounded to multiples of 8) and strides:

    16/1 | 24/2 24 | 32/2 32 32 | 64/2 64 64 64 | 96 96 96 | 160/2 160 160 | 320

Head ``Conv_1`` (1x1, 1280, or 1280*alpha for alpha > 1) -> ``Conv_1_bn`` ->
``out_relu``; the top is global average pooling -> ``predictions``. Batch normalization
uses epsilon 1e-3, momentum 0.999. Inputs: "tf" mode. Parameters (Keras 3, alpha 1,
1000 classes): 3,538,984.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

_SIZES = (96, 128, 160, 192, 224)


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """``v`` rounded to a multiple of ``divisor``, never more than 10% below it."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _default_size(input_shape: Any, input_tensor: Any) -> int:
    """Keras' choice: the given square size when it is one of 96..224, else 224."""
    shape = None
    if input_shape is not None:
        shape = tuple(input_shape)[:2]
    elif input_tensor is not None and hasattr(input_tensor, "shape"):
        shape = tuple(input_tensor.shape)[1:3]
    if shape is not None and len(shape) == 2 and shape[0] == shape[1] and shape[0] in _SIZES:
        return int(shape[0])
    return 224


def _bn(name: str) -> Any:
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)


def _inverted_res_block(
    inputs: Any, expansion: int, stride: int, alpha: float, filters: int, block_id: int
) -> Any:
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(
            expansion * in_channels, kernel_size=1, padding="same", use_bias=False,
            activation=None, name=f"{prefix}expand",
        )(x)  # fmt: skip
        x = _bn(f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(
        kernel_size=3, strides=stride, activation=None, use_bias=False,
        padding="same" if stride == 1 else "valid", name=f"{prefix}depthwise",
    )(x)  # fmt: skip
    x = _bn(f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(
        pointwise_filters, kernel_size=1, padding="same", use_bias=False, activation=None,
        name=f"{prefix}project",
    )(x)  # fmt: skip
    x = _bn(f"{prefix}project_BN")(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


# (filters, stride, expansion) of blocks 0..16
_BLOCKS = (
    (16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6),
    (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6),
    (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6),
)  # fmt: skip


def MobileNetV2(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    alpha: float = 1.0,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str | None = None,
) -> Any:
    """MobileNetV2; see the module docstring.

    ``alpha`` scales every layer's width. ``weights``: None or a local file ("imagenet"
    raises: dendrite downloads nothing). The default name is
    ``mobilenetv2_{alpha:.2f}_{rows}`` as in Keras.
    """
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, "MobileNetV2")
    imagenet_utils.check_tensor_matches_shape(input_tensor, input_shape, name or "MobileNetV2")
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape,
        default_size=_default_size(input_shape, input_tensor),
        min_size=32,
        require_flatten=include_top,
        weights=weights,
        model_name=name or "MobileNetV2",
    )
    rows = input_shape[0]
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = layers.Conv2D(
        _make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2), padding="same",
        use_bias=False, name="Conv1",
    )(img_input)  # fmt: skip
    x = _bn("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, expansion, stride, alpha, filters, block_id)
    last_block_filters = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_block_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = _bn("Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    x = imagenet_utils.average_top(
        x, include_top, pooling, classes, classifier_activation, weights, gap_name=None
    )
    if name is None:
        name = f"mobilenetv2_{alpha:0.2f}_{rows}"
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
