"""InceptionV3 (Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016), as ``keras.applications.inception_v3``. Default input 299x299x3, at
least 75x75.

Every convolution is a unit of Conv2D (no bias) -> BatchNormalization (no scale,
``scale=False``) -> ReLU. Stem: 3x3/2 (32, valid), 3x3 (32, valid), 3x3 (64), 3x3/2 max
pooling, 1x1 (80, valid), 3x3 (192, valid), 3x3/2 max pooling. Then the mixed blocks,
each a concatenation of parallel branches (named ``mixed0`` .. ``mixed10``):

- ``mixed0``-``mixed2`` (35x35): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | 3x3 average
  pooling -> 1x1 (32 channels in ``mixed0``, 64 after);
- ``mixed3``: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pooling;
- ``mixed4``-``mixed7`` (17x17): factorized 7x7 branches (1x7 and 7x1 convolutions,
  128, 160, 160 and 192 wide);
- ``mixed8``: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | 3x3/2 max pooling;
- ``mixed9``, ``mixed10`` (8x8): 1x1 | 1x1 -> (1x3, 3x1) concatenated as ``mixed9_{i}`` |
  1x1 -> 3x3 -> (1x3, 3x1) concatenated | average pooling -> 1x1.

The top is ``avg_pool`` -> ``predictions``. Inputs: "tf" mode.

Keras leaves the convolution units, the poolings and one concatenation per ``mixed9``
block unnamed, so their names are Keras' automatic ones; here they are fixed to what a
fresh Keras session gives them (``conv2d`` .. ``conv2d_93``, ``batch_normalization`` ..
``batch_normalization_93``, ``activation`` .. ``activation_93``, ``max_pooling2d``,
``average_pooling2d``, ``concatenate`` ...): every layer is named as in Keras (after an
``input_tensor``'s layers the numbering continues past their names, as in Keras).
Parameters (Keras 3, 1000 classes): 23,851,784.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils


class _Builder:
    """The network's layers, named as Keras names them in a fresh session."""

    def __init__(self, img_input: Any) -> None:
        self.names = imagenet_utils.KerasNames(imagenet_utils.upstream_names(img_input))

    def conv(
        self, x: Any, filters: int, rows: int, cols: int, padding: str = "same", strides: int = 1
    ) -> Any:
        """Conv2D (no bias) -> BatchNormalization (no scale) -> ReLU."""
        x = layers.Conv2D(
            filters, (rows, cols), strides=(strides, strides), padding=padding,
            use_bias=False, name=self.names("conv2d"),
        )(x)  # fmt: skip
        x = layers.BatchNormalization(axis=3, scale=False, name=self.names("batch_normalization"))(
            x
        )
        return layers.Activation("relu", name=self.names("activation"))(x)

    def max_pool(self, x: Any) -> Any:
        return layers.MaxPooling2D((3, 3), strides=(2, 2), name=self.names("max_pooling2d"))(x)

    def avg_pool(self, x: Any) -> Any:
        return layers.AveragePooling2D(
            (3, 3), strides=(1, 1), padding="same", name=self.names("average_pooling2d")
        )(x)

    def concat(self, branches: list, name: str | None = None) -> Any:
        return layers.Concatenate(axis=3, name=name or self.names("concatenate"))(branches)


def _block_35(b: _Builder, x: Any, pool_filters: int, name: str) -> Any:
    branch1x1 = b.conv(x, 64, 1, 1)
    branch5x5 = b.conv(x, 48, 1, 1)
    branch5x5 = b.conv(branch5x5, 64, 5, 5)
    branch3x3dbl = b.conv(x, 64, 1, 1)
    branch3x3dbl = b.conv(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = b.conv(branch3x3dbl, 96, 3, 3)
    branch_pool = b.conv(b.avg_pool(x), pool_filters, 1, 1)
    return b.concat([branch1x1, branch5x5, branch3x3dbl, branch_pool], name)


def _block_17(b: _Builder, x: Any, width: int, name: str) -> Any:
    branch1x1 = b.conv(x, 192, 1, 1)
    branch7x7 = b.conv(x, width, 1, 1)
    branch7x7 = b.conv(branch7x7, width, 1, 7)
    branch7x7 = b.conv(branch7x7, 192, 7, 1)
    branch7x7dbl = b.conv(x, width, 1, 1)
    branch7x7dbl = b.conv(branch7x7dbl, width, 7, 1)
    branch7x7dbl = b.conv(branch7x7dbl, width, 1, 7)
    branch7x7dbl = b.conv(branch7x7dbl, width, 7, 1)
    branch7x7dbl = b.conv(branch7x7dbl, 192, 1, 7)
    branch_pool = b.conv(b.avg_pool(x), 192, 1, 1)
    return b.concat([branch1x1, branch7x7, branch7x7dbl, branch_pool], name)


def _block_8(b: _Builder, x: Any, index: int) -> Any:
    branch1x1 = b.conv(x, 320, 1, 1)
    branch3x3 = b.conv(x, 384, 1, 1)
    branch3x3 = b.concat(
        [b.conv(branch3x3, 384, 1, 3), b.conv(branch3x3, 384, 3, 1)], f"mixed9_{index}"
    )
    branch3x3dbl = b.conv(x, 448, 1, 1)
    branch3x3dbl = b.conv(branch3x3dbl, 384, 3, 3)
    branch3x3dbl = b.concat([b.conv(branch3x3dbl, 384, 1, 3), b.conv(branch3x3dbl, 384, 3, 1)])
    branch_pool = b.conv(b.avg_pool(x), 192, 1, 1)
    return b.concat([branch1x1, branch3x3, branch3x3dbl, branch_pool], f"mixed{9 + index}")


def InceptionV3(  # noqa: N802 (Keras' name)
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "inception_v3",
) -> Any:
    """InceptionV3; see the module docstring. ``weights``: None or a local file
    ("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max"."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=299, min_size=75,
    )  # fmt: skip
    b = _Builder(img_input)
    x = b.conv(img_input, 32, 3, 3, strides=2, padding="valid")
    x = b.conv(x, 32, 3, 3, padding="valid")
    x = b.conv(x, 64, 3, 3)
    x = b.max_pool(x)
    x = b.conv(x, 80, 1, 1, padding="valid")
    x = b.conv(x, 192, 3, 3, padding="valid")
    x = b.max_pool(x)

    for index, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(b, x, pool_filters, f"mixed{index}")

    branch3x3 = b.conv(x, 384, 3, 3, strides=2, padding="valid")
    branch3x3dbl = b.conv(x, 64, 1, 1)
    branch3x3dbl = b.conv(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = b.conv(branch3x3dbl, 96, 3, 3, strides=2, padding="valid")
    x = b.concat([branch3x3, branch3x3dbl, b.max_pool(x)], "mixed3")

    for index, width in enumerate((128, 160, 160, 192)):
        x = _block_17(b, x, width, f"mixed{4 + index}")

    branch3x3 = b.conv(x, 192, 1, 1)
    branch3x3 = b.conv(branch3x3, 320, 3, 3, strides=2, padding="valid")
    branch7x7x3 = b.conv(x, 192, 1, 1)
    branch7x7x3 = b.conv(branch7x7x3, 192, 1, 7)
    branch7x7x3 = b.conv(branch7x7x3, 192, 7, 1)
    branch7x7x3 = b.conv(branch7x7x3, 192, 3, 3, strides=2, padding="valid")
    x = b.concat([branch3x3, branch7x7x3, b.max_pool(x)], "mixed8")

    for index in range(2):
        x = _block_8(b, x, index)

    x = imagenet_utils.average_top(x, include_top, pooling, classes, classifier_activation, weights)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
