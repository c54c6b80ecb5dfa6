"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
CVPR 2017), as ``keras.applications.xception``. Default input 299x299x3, at least 71x71.

Entry flow: ``block1_conv1`` (3x3/2, 32, valid) and ``block1_conv2`` (3x3, 64), each with
BN and ReLU; then blocks 2-4 (128, 256, 728 channels): two 3x3 separable convolutions
(``block{b}_sepconv{1,2}`` with ``_bn``, ReLU before each except the very first), a 3x3/2
max pooling ``block{b}_pool``, plus a strided 1x1 convolution + BN on the residual path.
Middle flow: blocks 5-12, each three ReLU-separable conv (728)-BN steps with an identity
shortcut. Exit flow: block 13 (separable 728 then 1024, pooling, 1x1/2 residual), then
``block14_sepconv1`` (1536) and ``block14_sepconv2`` (2048), each with BN and ReLU. The
top is ``avg_pool`` -> ``predictions``. Inputs: "tf" mode.

Keras leaves the four residual convolutions and their batch normalizations unnamed, so
their names are Keras' automatic ones and depend on what was built before; here they are
fixed to what a fresh Keras session gives them: ``conv2d``, ``conv2d_1``, ``conv2d_2``,
``conv2d_3`` and ``batch_normalization`` .. ``batch_normalization_3``.
Parameters (Keras 3, 1000 classes): 22,910,480.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils


def _sep(x: Any, filters: int, name: str, act: bool = True) -> Any:
    if act:
        x = layers.Activation("relu", name=f"{name}_act")(x)
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=-1, name=f"{name}_bn")(x)


def _residual(x: Any, filters: int, index: int) -> Any:
    suffix = f"_{index}" if index else ""
    r = layers.Conv2D(
        filters, (1, 1), strides=(2, 2), padding="same", use_bias=False, name=f"conv2d{suffix}"
    )(x)
    return layers.BatchNormalization(axis=-1, name=f"batch_normalization{suffix}")(r)


def Xception(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "xception",
) -> Any:
    """Xception; see the module docstring. ``weights``: None or a local file
    ("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=299, min_size=71,
    )  # fmt: skip
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=-1, name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)

    for index, (block, filters) in enumerate(((2, 128), (3, 256), (4, 728))):
        residual = _residual(x, filters, index)
        x = _sep(x, filters, f"block{block}_sepconv1", act=block != 2)
        x = _sep(x, filters, f"block{block}_sepconv2")
        x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(
            x
        )
        x = layers.add([x, residual])

    for i in range(8):
        residual = x
        prefix = f"block{i + 5}"
        x = _sep(x, 728, f"{prefix}_sepconv1")
        x = _sep(x, 728, f"{prefix}_sepconv2")
        x = _sep(x, 728, f"{prefix}_sepconv3")
        x = layers.add([x, residual])

    residual = _residual(x, 1024, 3)
    x = _sep(x, 728, "block13_sepconv1")
    x = _sep(x, 1024, "block13_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name="block13_pool")(x)
    x = layers.add([x, residual])

    x = layers.SeparableConv2D(
        1536, (3, 3), padding="same", use_bias=False, name="block14_sepconv1"
    )(x)
    x = layers.BatchNormalization(axis=-1, name="block14_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = layers.SeparableConv2D(
        2048, (3, 3), padding="same", use_bias=False, name="block14_sepconv2"
    )(x)
    x = layers.BatchNormalization(axis=-1, name="block14_sepconv2_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)

    x = imagenet_utils.average_top(x, include_top, pooling, classes, classifier_activation, weights)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
