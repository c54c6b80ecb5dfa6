"""DenseNet121, DenseNet169 and DenseNet201 (Huang et al., "Densely Connected
Convolutional Networks", CVPR 2017), as ``keras.applications.densenet``.

Stem: zero padding (3) -> ``conv1_conv`` 7x7/2, 64, no bias -> ``conv1_bn`` ->
``conv1_relu`` -> zero padding (1) -> ``pool1`` 3x3/2 max. Then four dense blocks
``conv2`` .. ``conv5`` separated by transitions ``pool2`` .. ``pool4`` (BN, ReLU, 1x1
conv halving the channels, 2x2 average pooling). A dense block is a run of conv blocks
``conv{s}_block{i}``: BN -> ReLU -> 1x1 conv (128) -> BN -> ReLU -> 3x3 conv (32, the
growth rate), concatenated onto its input (``_concat``). Blocks per dense block:

    DenseNet121: 6, 12, 24, 16    DenseNet169: 6, 12, 32, 32    DenseNet201: 6, 12, 48, 32

Then ``bn`` -> ``relu``; the top is ``avg_pool`` -> ``predictions``. BatchNormalization
epsilon 1.001e-5. Inputs: "torch" mode. Parameters (Keras 3, 1000 classes):
DenseNet121 8,062,504; DenseNet169 14,307,880; DenseNet201 20,242,984.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

_EPS = 1.001e-5


def conv_block(x: Any, growth_rate: int, name: str) -> Any:
    """BN-ReLU-1x1 (4 x growth) - BN-ReLU-3x3 (growth), concatenated onto ``x``."""
    x1 = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(x)
    x1 = layers.Activation("relu", name=f"{name}_0_relu")(x1)
    x1 = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x1)
    x1 = layers.Activation("relu", name=f"{name}_1_relu")(x1)
    x1 = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return layers.Concatenate(axis=3, name=f"{name}_concat")([x, x1])


def dense_block(x: Any, blocks: int, name: str) -> Any:
    """``blocks`` conv blocks of growth rate 32."""
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x: Any, reduction: float, name: str) -> Any:
    """BN-ReLU-1x1 conv (``reduction`` x the channels) - 2x2 average pooling."""
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(  # noqa: N802 (Keras' name)
    blocks: list[int] | tuple[int, ...],
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "densenet",
) -> Any:
    """A DenseNet with ``blocks`` conv blocks in each of its four dense blocks."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=224, min_size=32,
    )  # fmt: skip
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = dense_block(x, blocks[0], name="conv2")
    x = transition_block(x, 0.5, name="pool2")
    x = dense_block(x, blocks[1], name="conv3")
    x = transition_block(x, 0.5, name="pool3")
    x = dense_block(x, blocks[2], name="conv4")
    x = transition_block(x, 0.5, name="pool4")
    x = dense_block(x, blocks[3], name="conv5")
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = imagenet_utils.average_top(
        x, include_top, pooling, classes, classifier_activation, weights, named_pooling=True
    )
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def DenseNet121(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "densenet121",
) -> Any:
    """DenseNet121 (6, 12, 24, 16). ``weights``: None or a local file ("imagenet"
    raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    return DenseNet(
        [6, 12, 24, 16], include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name=name,
    )  # fmt: skip


def DenseNet169(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "densenet169",
) -> Any:
    """DenseNet169 (6, 12, 32, 32); arguments as ``DenseNet121``."""
    return DenseNet(
        [6, 12, 32, 32], include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name=name,
    )  # fmt: skip


def DenseNet201(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "densenet201",
) -> Any:
    """DenseNet201 (6, 12, 48, 32); arguments as ``DenseNet121``."""
    return DenseNet(
        [6, 12, 48, 32], include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name=name,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "torch" preprocessing: ``x / 255`` then standardised with the ImageNet statistics."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
