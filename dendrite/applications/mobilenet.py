"""MobileNet (v1; Howard et al., "MobileNets: Efficient Convolutional Neural Networks
for Mobile Vision Applications", 2017), as ``keras.applications.mobilenet``.

Stem ``conv1`` (3x3/2, 32*alpha, no bias) -> ``conv1_bn`` -> ``conv1_relu`` (ReLU6). Then
13 depthwise separable blocks ``{i}`` = 1..13: ``conv_dw_{i}`` (3x3 depthwise, with
``depth_multiplier``; a stride-2 one is preceded by ``conv_pad_{i}``, zero padding on the
bottom and right only) -> ``conv_dw_{i}_bn`` -> ``conv_dw_{i}_relu`` -> ``conv_pw_{i}``
(1x1) -> ``conv_pw_{i}_bn`` -> ``conv_pw_{i}_relu``. Pointwise channels (times alpha,
truncated) and strides:

    64 | 128/2 128 | 256/2 256 | 512/2 512 512 512 512 512 | 1024/2 1024

The top is global average pooling (kept 4D) -> ``dropout`` -> ``conv_preds`` (1x1 conv
with bias, one channel per class) -> ``reshape_2`` -> ``predictions`` (the classifier
activation). Batch normalization keeps Keras' defaults (epsilon 1e-3, momentum 0.99).
Inputs: "tf" mode. Parameters (Keras 3, alpha 1, 1000 classes): 4,253,864.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

_SIZES = (128, 160, 192, 224)

# (pointwise filters, stride) of blocks 1..13
_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
    (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip


def _default_size(input_shape: Any) -> int:
    """Keras' choice: the given square size when it is one of 128..224, else 224 (only
    ``input_shape`` counts, as in Keras)."""
    if input_shape is None:
        return 224
    rows, cols = tuple(input_shape)[:2]
    return int(rows) if rows == cols and rows in _SIZES else 224


def _depthwise_block(
    x: Any, pointwise_filters: int, alpha: float, depth_multiplier: int, stride: int, block: int
) -> Any:
    if stride == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D(
        (3, 3), padding="same" if stride == 1 else "valid", depth_multiplier=depth_multiplier,
        strides=(stride, stride), use_bias=False, name=f"conv_dw_{block}",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=-1, name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    x = layers.Conv2D(
        int(pointwise_filters * alpha), (1, 1), padding="same", use_bias=False,
        name=f"conv_pw_{block}",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=-1, name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


def MobileNet(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    alpha: float = 1.0,
    depth_multiplier: int = 1,
    dropout: float = 1e-3,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str | None = None,
) -> Any:
    """MobileNet (v1); see the module docstring.

    ``alpha`` scales every layer's width, ``depth_multiplier`` the depthwise
    convolutions' outputs per channel; ``dropout`` is the rate before the classifier.
    ``weights``: None or a local file ("imagenet" raises: dendrite downloads nothing).
    The default name is ``mobilenet_{alpha:.2f}_{rows}`` as in Keras.
    """
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, "MobileNet")
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape,
        default_size=_default_size(input_shape),
        min_size=32,
        require_flatten=include_top,
        weights=weights,
        model_name=name or "MobileNet",
    )
    rows = input_shape[0]
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = layers.Conv2D(
        int(32 * alpha), (3, 3), padding="same", use_bias=False, strides=(2, 2), name="conv1"
    )(img_input)
    x = layers.BatchNormalization(axis=-1, name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block, (filters, stride) in enumerate(_BLOCKS, start=1):
        x = _depthwise_block(x, filters, alpha, depth_multiplier, stride, block)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool(x, pooling)
    if name is None:
        name = f"mobilenet_{alpha:0.2f}_{rows}"
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
