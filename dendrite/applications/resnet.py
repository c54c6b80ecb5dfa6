"""ResNet50, ResNet101 and ResNet152 (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016), as ``keras.applications.resnet`` (and ``resnet50``); the shared
builder ``ResNet`` also makes the v2 models of ``resnet_v2``.

Stem: ``conv1_pad`` (3) -> ``conv1_conv`` 7x7/2, 64 -> ``conv1_bn`` -> ``conv1_relu`` ->
``pool1_pad`` (1) -> ``pool1_pool`` 3x3/2 max. Then four stacks of bottleneck blocks
(filters 64, 128, 256, 512; the output has 4x as many channels):

    ResNet50: 3, 4, 6, 3 blocks    ResNet101: 3, 4, 23, 3    ResNet152: 3, 8, 36, 3

A v1 block ``conv{s}_block{b}`` is 1x1 (stride 2 in the first block of stacks 3-5) ->
3x3 -> 1x1 (x4) convolutions with biases, each followed by BatchNormalization (epsilon
1.001e-5) and ReLU except the last; the first block of a stack adds a projection shortcut
(``_0_conv``/``_0_bn``), the others the identity; ``_add`` then ``_out`` (ReLU).
The top is ``avg_pool`` (global average) -> ``predictions``. Inputs: "caffe" mode.
Parameters (Keras 3, 1000 classes): ResNet50 25,636,712; ResNet101 44,707,176;
ResNet152 60,419,944.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

_EPS = 1.001e-5


def ResNet(  # noqa: N802 (Keras' name)
    stack_fn: Callable[[Any], Any],
    preact: bool,
    use_bias: bool,
    name: str = "resnet",
    weights_name: str | None = None,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
) -> Any:
    """A ResNet from its stacks: ``stack_fn(x)`` builds the residual stacks; ``preact``
    selects v2 (pre-activation: no BN after the stem, ``post_bn``/``post_relu`` at the
    end); ``use_bias`` for the stem convolution."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=224, min_size=32,
    )  # fmt: skip
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    if not preact:
        x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:
        x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    x = imagenet_utils.average_top(
        x, include_top, pooling, classes, classifier_activation, weights, named_pooling=True
    )
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def residual_block_v1(
    x: Any,
    filters: int,
    kernel_size: int = 3,
    stride: int = 1,
    conv_shortcut: bool = True,
    name: str | None = None,
) -> Any:
    """A v1 bottleneck block (post-activation), Keras' layer names under ``name``."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_v1(
    x: Any, filters: int, blocks: int, stride1: int = 2, name: str | None = None
) -> Any:
    """``blocks`` v1 blocks; the first has the projection shortcut and stride ``stride1``."""
    x = residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def residual_block_v2(
    x: Any,
    filters: int,
    kernel_size: int = 3,
    stride: int = 1,
    conv_shortcut: bool = False,
    name: str | None = None,
) -> Any:
    """A v2 bottleneck block (pre-activation: BN + ReLU first, ``_preact_bn``), the stride
    on the 3x3 convolution and a max-pooled identity shortcut when strided."""
    preact = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_preact_bn")(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        shortcut = layers.MaxPooling2D(1, strides=stride)(x) if stride > 1 else x
    x = layers.Conv2D(filters, 1, strides=1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, kernel_size, strides=stride, use_bias=False, name=f"{name}_2_conv")(
        x
    )
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def stack_residual_blocks_v2(
    x: Any, filters: int, blocks: int, stride1: int = 2, name: str | None = None
) -> Any:
    """``blocks`` v2 blocks: projection shortcut first, stride ``stride1`` in the last."""
    x = residual_block_v2(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = residual_block_v2(x, filters, name=f"{name}_block{i}")
    return residual_block_v2(x, filters, stride=stride1, name=f"{name}_block{blocks}")


def _v1(blocks: tuple[int, int, int, int]) -> Callable[[Any], Any]:
    def stack_fn(x: Any) -> Any:
        x = stack_residual_blocks_v1(x, 64, blocks[0], stride1=1, name="conv2")
        x = stack_residual_blocks_v1(x, 128, blocks[1], name="conv3")
        x = stack_residual_blocks_v1(x, 256, blocks[2], name="conv4")
        return stack_residual_blocks_v1(x, 512, blocks[3], name="conv5")

    return stack_fn


def ResNet50(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet50",
) -> Any:
    """ResNet50 (3, 4, 6, 3 bottleneck blocks). ``weights``: None or a local file
    ("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    return ResNet(
        _v1((3, 4, 6, 3)), False, True, name=name, weights_name="resnet50",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def ResNet101(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet101",
) -> Any:
    """ResNet101 (3, 4, 23, 3 bottleneck blocks); arguments as ``ResNet50``."""
    return ResNet(
        _v1((3, 4, 23, 3)), False, True, name=name, weights_name="resnet101",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def ResNet152(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet152",
) -> Any:
    """ResNet152 (3, 8, 36, 3 bottleneck blocks); arguments as ``ResNet50``."""
    return ResNet(
        _v1((3, 8, 36, 3)), False, True, name=name, weights_name="resnet152",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "caffe" preprocessing: RGB -> BGR, minus the ImageNet channel means, no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
