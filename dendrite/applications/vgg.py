"""VGG16 and VGG19 (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015), as ``keras.applications.vgg16`` / ``vgg19``.

Five blocks of 3x3 'same' ReLU convolutions, each closed by a 2x2 max pooling of stride 2:

    block1: 2 x conv 64    block2: 2 x conv 128    block3: 3 (VGG19: 4) x conv 256
    block4: 3 (4) x conv 512                       block5: 3 (4) x conv 512

Layers are named as in Keras (``block{b}_conv{i}``, ``block{b}_pool``). The top is
``flatten`` -> ``fc1`` (4096, ReLU) -> ``fc2`` (4096, ReLU) -> ``predictions``; it needs
the 224x224x3 input. Inputs are preprocessed in "caffe" mode (``preprocess_input``).
Parameters (Keras 3, 1000 classes): VGG16 138,357,544; VGG19 143,667,240.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils


def _vgg(
    convs_per_block: tuple[int, ...],
    include_top: bool,
    weights: Any,
    input_tensor: Any,
    input_shape: Any,
    pooling: str | None,
    classes: int,
    classifier_activation: Any,
    name: str,
) -> Any:
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=224, min_size=32,
    )  # fmt: skip
    x = img_input
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}"
            )(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool(x, pooling)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def VGG16(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "vgg16",
) -> Any:
    """The VGG16 model (13 convolutions + 3 dense layers); see the module docstring.

    ``weights``: None (random initialization) or a local weights file; "imagenet" raises
    (dendrite downloads nothing). ``input_shape`` only without the top (at least 32x32).
    ``pooling``: None, "avg" or "max" when ``include_top=False``.
    """
    return _vgg(
        (2, 2, 3, 3, 3), include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name,
    )  # fmt: skip


def VGG19(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "vgg19",
) -> Any:
    """The VGG19 model (16 convolutions + 3 dense layers); see the module docstring and
    ``VGG16`` for the arguments."""
    return _vgg(
        (2, 2, 4, 4, 4), include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "caffe" preprocessing: RGB -> BGR, minus the ImageNet channel means, no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
