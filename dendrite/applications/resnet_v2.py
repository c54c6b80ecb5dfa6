"""ResNet50V2, ResNet101V2 and ResNet152V2 (He et al., "Identity Mappings in Deep
Residual Networks", ECCV 2016), as ``keras.applications.resnet_v2``.

The stem of ``resnet`` without its BatchNormalization and ReLU (``conv1_conv`` has a
bias), then four stacks of pre-activation bottleneck blocks (filters 64, 128, 256, 512):

    ResNet50V2: 3, 4, 6, 3 blocks    ResNet101V2: 3, 4, 23, 3    ResNet152V2: 3, 8, 36, 3

Each block ``conv{s}_block{b}`` starts with ``_preact_bn`` -> ``_preact_relu``; its 1x1
and 3x3 convolutions have no bias, the last 1x1 (x4) has one; the first block of a stack
has a projection shortcut (``_0_conv``), the last one downsamples (3x3 stride 2, the
identity max-pooled 1x1/2) except in conv5; ``_out`` adds. After the stacks,
``post_bn`` -> ``post_relu``, then ``avg_pool`` -> ``predictions``. Inputs: "tf" mode.
Parameters (Keras 3, 1000 classes): ResNet50V2 25,613,800; ResNet101V2 44,675,560;
ResNet152V2 60,380,648.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite.applications import imagenet_utils
from dendrite.applications.resnet import ResNet, stack_residual_blocks_v2


def _v2(blocks: tuple[int, int, int, int]) -> Callable[[Any], Any]:
    def stack_fn(x: Any) -> Any:
        x = stack_residual_blocks_v2(x, 64, blocks[0], name="conv2")
        x = stack_residual_blocks_v2(x, 128, blocks[1], name="conv3")
        x = stack_residual_blocks_v2(x, 256, blocks[2], name="conv4")
        return stack_residual_blocks_v2(x, 512, blocks[3], stride1=1, name="conv5")

    return stack_fn


def ResNet50V2(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet50v2",
) -> Any:
    """ResNet50V2 (3, 4, 6, 3 pre-activation blocks). ``weights``: None or a local file
    ("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    return ResNet(
        _v2((3, 4, 6, 3)), True, True, name=name, weights_name="resnet50v2",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def ResNet101V2(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet101v2",
) -> Any:
    """ResNet101V2 (3, 4, 23, 3 pre-activation blocks); arguments as ``ResNet50V2``."""
    return ResNet(
        _v2((3, 4, 23, 3)), True, True, name=name, weights_name="resnet101v2",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def ResNet152V2(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet152v2",
) -> Any:
    """ResNet152V2 (3, 8, 36, 3 pre-activation blocks); arguments as ``ResNet50V2``."""
    return ResNet(
        _v2((3, 8, 36, 3)), True, True, name=name, weights_name="resnet152v2",
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
