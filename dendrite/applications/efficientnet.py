"""EfficientNetB0 .. B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", ICML 2019), as ``keras.applications.efficientnet``.

The model preprocesses its own input: ``rescaling`` (1/255) then ``normalization``
(per-channel mean and variance, unadapted: 0 and 1 until weights are loaded; both are
named as in a fresh Keras session), so
``preprocess_input`` is the identity, as in Keras. Stem ``stem_conv_pad`` ->
``stem_conv`` (3x3/2, 32 x width) -> ``stem_bn`` -> ``stem_activation`` (swish). Then
seven stages of MBConv blocks ``block{stage}{a,b,...}_``: ``expand_conv`` (1x1 to
``expand_ratio`` x channels; absent when the ratio is 1) -> ``bn``/``activation`` ->
``dwconv`` (3x3 or 5x5 depthwise; ``dwconv_pad`` before a stride-2 one) -> squeeze-and-
excite (``se_squeeze`` global average -> ``se_reshape`` -> ``se_reduce`` (swish) ->
``se_expand`` (sigmoid) -> ``se_excite`` multiply) -> ``project_conv`` (1x1) ->
``project_bn``, with ``drop`` (stochastic depth, per sample) and ``add`` when the shape is
unchanged. Stage (kernel, repeats, output channels, stride) before scaling:

    (3,1,16,1) (3,2,24,2) (5,2,40,2) (3,3,80,2) (5,3,112,1) (5,4,192,2) (3,1,320,1)

Width scales channels (rounded to multiples of 8), depth scales repeats (ceil); head
``top_conv`` (1x1, 1280 x width) -> ``top_bn`` -> ``top_activation``; the top is
``avg_pool`` -> ``top_dropout`` -> ``predictions``.

    model  width depth size dropout     model  width depth size dropout
    B0     1.0   1.0   224  0.2         B4     1.4   1.8   380  0.4
    B1     1.0   1.1   240  0.2         B5     1.6   2.2   456  0.4
    B2     1.1   1.2   260  0.3         B6     1.8   2.6   528  0.5
    B3     1.2   1.4   300  0.3         B7     2.0   3.1   600  0.5

Parameters (Keras 3, 1000 classes): B0 5,330,571; B1 7,856,239; B2 9,177,569;
B3 12,320,535; B4 19,466,823; B5 30,562,527; B6 43,265,143; B7 66,658,687, and the same
in dendrite (its ``Normalization`` keeps Keras' scalar ``count`` beside the mean and
variance, which are shaped (1, 1, 1, 3) where Keras' are (3,): Keras' files map them).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

DEFAULT_BLOCKS_ARGS: list[dict[str, Any]] = [
    {"kernel_size": k, "repeats": r, "filters_in": fi, "filters_out": fo, "expand_ratio": e,
     "id_skip": True, "strides": s, "se_ratio": 0.25}
    for k, r, fi, fo, e, s in (
        (3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2),
        (3, 3, 40, 80, 6, 2), (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2),
        (3, 1, 192, 320, 6, 1),
    )
]  # fmt: skip

CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


def block(
    inputs: Any,
    activation: Any = "swish",
    drop_rate: float = 0.0,
    name: str = "",
    filters_in: int = 32,
    filters_out: int = 16,
    kernel_size: int = 3,
    strides: int = 1,
    expand_ratio: int = 1,
    se_ratio: float = 0.0,
    id_skip: bool = True,
) -> Any:
    """One MBConv block (inverted residual with squeeze-and-excite), Keras' names."""
    filters = filters_in * expand_ratio
    if expand_ratio != 1:
        x = layers.Conv2D(
            filters, 1, padding="same", use_bias=False,
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}expand_conv",
        )(inputs)  # fmt: skip
        x = layers.BatchNormalization(axis=3, name=f"{name}expand_bn")(x)
        x = layers.Activation(activation, name=f"{name}expand_activation")(x)
    else:
        x = inputs
    if strides == 2:
        x = layers.ZeroPadding2D(
            padding=imagenet_utils.correct_pad(x, kernel_size), name=f"{name}dwconv_pad"
        )(x)
        conv_pad = "valid"
    else:
        conv_pad = "same"
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=conv_pad, use_bias=False,
        depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}dwconv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=f"{name}bn")(x)
    x = layers.Activation(activation, name=f"{name}activation")(x)
    if 0 < se_ratio <= 1:
        filters_se = max(1, int(filters_in * se_ratio))
        se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
        se = layers.Reshape((1, 1, filters), name=f"{name}se_reshape")(se)
        se = layers.Conv2D(
            filters_se, 1, padding="same", activation=activation,
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}se_reduce",
        )(se)  # fmt: skip
        se = layers.Conv2D(
            filters, 1, padding="same", activation="sigmoid",
            kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}se_expand",
        )(se)  # fmt: skip
        x = layers.Multiply(name=f"{name}se_excite")([x, se])
    x = layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}project_conv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=f"{name}project_bn")(x)
    if id_skip and strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.Add(name=f"{name}add")([x, inputs])
    return x


def EfficientNet(  # noqa: N802 (Keras' name)
    width_coefficient: float,
    depth_coefficient: float,
    default_size: int,
    dropout_rate: float = 0.2,
    drop_connect_rate: float = 0.2,
    depth_divisor: int = 8,
    activation: Any = "swish",
    blocks_args: Any = "default",
    name: str = "efficientnet",
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    weights_name: str | None = None,
) -> Any:
    """The shared EfficientNet builder: width and depth coefficients scale the B0
    stages (``blocks_args``); see the module docstring."""
    if blocks_args == "default":
        blocks_args = DEFAULT_BLOCKS_ARGS
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=default_size, min_size=32,
    )  # fmt: skip

    def round_filters(filters: float, divisor: int = depth_divisor) -> int:
        filters *= width_coefficient
        new_filters = max(divisor, int(filters + divisor / 2) // divisor * divisor)
        if new_filters < 0.9 * filters:
            new_filters += divisor
        return int(new_filters)

    def round_repeats(repeats: int) -> int:
        return int(math.ceil(depth_coefficient * repeats))

    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(img_input)
    x = layers.Normalization(axis=3, name="normalization")(x)
    x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(
        round_filters(32), 3, strides=2, padding="valid", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="stem_conv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_activation")(x)

    blocks_args = copy.deepcopy(blocks_args)
    b = 0
    blocks = float(sum(round_repeats(args["repeats"]) for args in blocks_args))
    for i, args in enumerate(blocks_args):
        if args["repeats"] <= 0:
            raise ValueError(
                "The number of repeats in `EfficientNet` must be > 0. "
                f"Received: repeats={args['repeats']}"
            )
        args["filters_in"] = round_filters(args["filters_in"])
        args["filters_out"] = round_filters(args["filters_out"])
        for j in range(round_repeats(args.pop("repeats"))):
            if j > 0:
                args["strides"] = 1
                args["filters_in"] = args["filters_out"]
            x = block(
                x, activation, drop_connect_rate * b / blocks, name=f"block{i + 1}{chr(j + 97)}_",
                **args,
            )  # fmt: skip
            b += 1

    x = layers.Conv2D(
        round_filters(1280), 1, padding="same", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="top_conv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name="top_bn")(x)
    x = layers.Activation(activation, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(
            classes, activation=classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER, name="predictions",
        )(x)  # fmt: skip
    else:
        x = imagenet_utils.pool(x, pooling, named=True)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def _variant(width: float, depth: float, size: int, dropout: float, default_name: str) -> Any:
    def build(
        include_top: bool = True,
        weights: Any = "imagenet",
        input_tensor: Any = None,
        input_shape: Any = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: Any = "softmax",
        name: str = default_name,
    ) -> Any:
        return EfficientNet(
            width, depth, size, dropout, name=name, include_top=include_top,
            weights=weights, input_tensor=input_tensor, input_shape=input_shape,
            pooling=pooling, classes=classes, classifier_activation=classifier_activation,
            weights_name=default_name[-2:],
        )  # fmt: skip

    label = default_name.replace("efficientnetb", "EfficientNetB")
    build.__name__ = build.__qualname__ = label
    build.__doc__ = (
        f"{label} (width {width}, depth {depth}, default input {size}x{size}x3, dropout "
        f"{dropout}); see the module docstring. ``weights``: None or a local file "
        '("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max".'
    )
    return build


EfficientNetB0 = _variant(1.0, 1.0, 224, 0.2, "efficientnetb0")
EfficientNetB1 = _variant(1.0, 1.1, 240, 0.2, "efficientnetb1")
EfficientNetB2 = _variant(1.1, 1.2, 260, 0.3, "efficientnetb2")
EfficientNetB3 = _variant(1.2, 1.4, 300, 0.3, "efficientnetb3")
EfficientNetB4 = _variant(1.4, 1.8, 380, 0.4, "efficientnetb4")
EfficientNetB5 = _variant(1.6, 2.2, 456, 0.4, "efficientnetb5")
EfficientNetB6 = _variant(1.8, 2.6, 528, 0.5, "efficientnetb6")
EfficientNetB7 = _variant(2.0, 3.1, 600, 0.5, "efficientnetb7")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """The identity: EfficientNet rescales and normalizes its input itself."""
    return x


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
