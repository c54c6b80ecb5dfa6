"""InceptionResNetV2 (Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", AAAI 2017), as
``keras.applications.inception_resnet_v2``. Default input 299x299x3, at least 75x75.

Convolution units are Conv2D (no bias) -> BatchNormalization (``scale=False``) -> ReLU.
Stem: 3x3/2 (32, valid), 3x3 (32, valid), 3x3 (64), 3x3/2 max pooling, 1x1 (80, valid),
3x3 (192, valid), 3x3/2 max pooling, then ``mixed_5b`` (1x1 96 | 1x1 48 -> 5x5 64 | 1x1
64 -> 3x3 96 -> 3x3 96 | average pooling -> 1x1 64). Then residual Inception blocks
``{type}_{i}``: parallel branches concatenated as ``_mixed``, a 1x1 convolution with bias
back to the input width (``_conv``), added to the input scaled by ``scale``
(``CustomScaleLayer``: ``x + up * scale``), and ReLU (``_ac``):

- 10 x ``block35`` (scale 0.17): 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 32 -> 3x3 48 -> 3x3 64;
- ``mixed_6a``: 3x3/2 384 | 1x1 256 -> 3x3 256 -> 3x3/2 384 | 3x3/2 max pooling;
- 20 x ``block17`` (scale 0.1): 1x1 192 | 1x1 128 -> 1x7 160 -> 7x1 192;
- ``mixed_7a``: three 1x1 256 -> 3x3/2 branches (384; 288; 3x3 288 -> 320) | max pooling;
- 10 x ``block8`` (scale 0.2; the last one scale 1 without ReLU): 1x1 192 | 1x1 192 ->
  1x3 224 -> 3x1 256;

then ``conv_7b`` (1x1, 1536, with ``_bn``, ``_ac``). The top is ``avg_pool`` ->
``predictions``. Inputs: "tf" mode.

The stem, branch units, poolings and scale layers are unnamed in Keras; here they get the
names a fresh Keras session gives them (``conv2d``, ``batch_normalization``,
``activation``, ``max_pooling2d``, ``average_pooling2d``, ``custom_scale_layer``, each
numbered ``_1``, ``_2``, ... in building order), so that every layer is named as in Keras.
``CustomScaleLayer`` is a registered serializable object (package "keras_applications"),
so Keras' ``.keras`` files, which name it by its bare class name, load. Parameters (Keras
3, 1000 classes): 55,873,736.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import layers
from dendrite.applications import imagenet_utils
from dendrite.registry.custom_objects import register_keras_serializable


@register_keras_serializable(package="keras_applications")
class CustomScaleLayer(layers.Layer):
    """``inputs[0] + inputs[1] * scale``: the scaled residual of an Inception-ResNet
    block (Keras' class of the same name; no weights)."""

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs: Any) -> Any:
        x, up = inputs
        return x + up * np.asarray(self.scale, dtype=up.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[0])

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


class _Builder:
    """The network's layers, named as Keras names them in a fresh session."""

    def __init__(self, img_input: Any) -> None:
        self.names = imagenet_utils.KerasNames(imagenet_utils.upstream_names(img_input))

    def conv(
        self,
        x: Any,
        filters: int,
        kernel_size: Any,
        strides: int = 1,
        padding: str = "same",
        activation: str | None = "relu",
        use_bias: bool = False,
        name: str | None = None,
    ) -> Any:
        """Conv2D, then (without bias) BatchNormalization with no scale, then the
        activation; Keras' ``conv2d_bn``."""
        x = layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
            name=name or self.names("conv2d"),
        )(x)  # fmt: skip
        if not use_bias:
            bn_name = f"{name}_bn" if name else self.names("batch_normalization")
            x = layers.BatchNormalization(axis=3, scale=False, name=bn_name)(x)
        if activation is not None:
            ac_name = f"{name}_ac" if name else self.names("activation")
            x = layers.Activation(activation, name=ac_name)(x)
        return x

    def max_pool(self, x: Any) -> Any:
        return layers.MaxPooling2D(3, strides=2, name=self.names("max_pooling2d"))(x)

    def avg_pool(self, x: Any) -> Any:
        return layers.AveragePooling2D(
            3, strides=1, padding="same", name=self.names("average_pooling2d")
        )(x)

    def residual_block(
        self, x: Any, scale: float, block_type: str, block_idx: int, activation: Any = "relu"
    ) -> Any:
        """One Inception-ResNet block (Keras' ``inception_resnet_block``)."""
        if block_type == "block35":
            branch_0 = self.conv(x, 32, 1)
            branch_1 = self.conv(self.conv(x, 32, 1), 32, 3)
            branch_2 = self.conv(self.conv(self.conv(x, 32, 1), 48, 3), 64, 3)
            branches = [branch_0, branch_1, branch_2]
        elif block_type == "block17":
            branch_0 = self.conv(x, 192, 1)
            branch_1 = self.conv(self.conv(self.conv(x, 128, 1), 160, [1, 7]), 192, [7, 1])
            branches = [branch_0, branch_1]
        elif block_type == "block8":
            branch_0 = self.conv(x, 192, 1)
            branch_1 = self.conv(self.conv(self.conv(x, 192, 1), 224, [1, 3]), 256, [3, 1])
            branches = [branch_0, branch_1]
        else:
            raise ValueError(
                'Unknown Inception-ResNet block type. Expects "block35", "block17" or '
                f'"block8", but got: {block_type}'
            )
        block_name = f"{block_type}_{block_idx}"
        mixed = layers.Concatenate(axis=3, name=f"{block_name}_mixed")(branches)
        up = self.conv(
            mixed, x.shape[3], 1, activation=None, use_bias=True, name=f"{block_name}_conv"
        )
        x = CustomScaleLayer(scale, name=self.names("custom_scale_layer"))([x, up])
        if activation is not None:
            x = layers.Activation(activation, name=f"{block_name}_ac")(x)
        return x


def InceptionResNetV2(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "inception_resnet_v2",
) -> Any:
    """InceptionResNetV2; see the module docstring. ``weights``: None or a local file
    ("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=299, min_size=75,
    )  # fmt: skip
    b = _Builder(img_input)
    x = b.conv(img_input, 32, 3, strides=2, padding="valid")
    x = b.conv(x, 32, 3, padding="valid")
    x = b.conv(x, 64, 3)
    x = b.max_pool(x)
    x = b.conv(x, 80, 1, padding="valid")
    x = b.conv(x, 192, 3, padding="valid")
    x = b.max_pool(x)

    branch_0 = b.conv(x, 96, 1)
    branch_1 = b.conv(b.conv(x, 48, 1), 64, 5)
    branch_2 = b.conv(b.conv(b.conv(x, 64, 1), 96, 3), 96, 3)
    branch_pool = b.conv(b.avg_pool(x), 64, 1)
    x = layers.Concatenate(axis=3, name="mixed_5b")([branch_0, branch_1, branch_2, branch_pool])
    for block_idx in range(1, 11):
        x = b.residual_block(x, scale=0.17, block_type="block35", block_idx=block_idx)

    branch_0 = b.conv(x, 384, 3, strides=2, padding="valid")
    branch_1 = b.conv(b.conv(b.conv(x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid")
    branch_pool = b.max_pool(x)
    x = layers.Concatenate(axis=3, name="mixed_6a")([branch_0, branch_1, branch_pool])
    for block_idx in range(1, 21):
        x = b.residual_block(x, scale=0.1, block_type="block17", block_idx=block_idx)

    branch_0 = b.conv(b.conv(x, 256, 1), 384, 3, strides=2, padding="valid")
    branch_1 = b.conv(b.conv(x, 256, 1), 288, 3, strides=2, padding="valid")
    branch_2 = b.conv(b.conv(b.conv(x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid")
    branch_pool = b.max_pool(x)
    x = layers.Concatenate(axis=3, name="mixed_7a")([branch_0, branch_1, branch_2, branch_pool])
    for block_idx in range(1, 10):
        x = b.residual_block(x, scale=0.2, block_type="block8", block_idx=block_idx)
    x = b.residual_block(x, scale=1.0, activation=None, block_type="block8", block_idx=10)
    x = b.conv(x, 1536, 1, name="conv_7b")

    x = imagenet_utils.average_top(x, include_top, pooling, classes, classifier_activation, weights)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
