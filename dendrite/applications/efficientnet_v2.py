"""EfficientNetV2B0 .. B3, S, M and L (Tan & Le, "EfficientNetV2: Smaller Models and
Faster Training", ICML 2021), as ``keras.applications.efficientnet_v2``.

The model preprocesses its own input (``include_preprocessing``): the B variants rescale
3-channel inputs by 1/255 (``rescaling``) and standardize them with the ImageNet mean and
variance (``normalization``, fixed statistics, no weights); S, M and L (and B inputs of
other channel counts) map [0, 255] to [-1, 1) (``rescaling``, ``x / 128 - 1``). So
``preprocess_input`` is the identity, as in Keras. Stem ``stem_conv`` (3x3/2, 'same') ->
``stem_bn`` -> ``stem_activation`` (swish). Then stages of blocks
``block{stage}{a,b,...}_``, either

- Fused-MBConv (the early stages): ``expand_conv`` (3x3, strided, ``expand_ratio`` x
  channels) -> ``expand_bn``/``expand_activation`` -> ``project_conv`` (1x1) ->
  ``project_bn``; with ratio 1 only ``project_conv`` (3x3, strided) -> ``project_bn`` ->
  ``project_activation``;
- MBConv: ``expand_conv`` (1x1) -> ``expand_bn``/``expand_activation`` -> ``dwconv2`` (3x3
  depthwise, 'same', strided) -> ``bn``/``activation`` -> squeeze-and-excite
  (``se_squeeze`` -> ``se_reshape`` -> ``se_reduce`` (swish) -> ``se_expand`` (sigmoid) ->
  ``se_excite``) -> ``project_conv`` (1x1) -> ``project_bn``;

with ``drop`` (per-sample dropout, the rate rising with depth to 0.2) and ``add`` when
shape and stride allow. Batch normalization uses momentum 0.9, epsilon 1e-3. Head
``top_conv`` (1x1, 1280 x width) -> ``top_bn`` -> ``top_activation``; the top is
``avg_pool`` -> ``top_dropout`` (0.2) -> ``predictions``.

    model  width depth size  parameters     model  width depth size  parameters
    B0     1.0   1.0   224    7,200,312     S      1.0   1.0   384   21,612,360
    B1     1.0   1.1   240    8,212,124     M      1.0   1.0   480   54,431,388
    B2     1.1   1.2   260   10,178,374     L      1.0   1.0   480  119,027,848
    B3     1.2   1.4   300   14,467,622

(Keras 3's counts, 1000 classes; the same here.) B0-B3 share one stage table, scaled by
width (channels, rounded to multiples of 8) and depth (repeats, ceil); S, M and L have
their own. Unlike Keras, which looks the stage table up by the model's ``name`` (so a
renamed model fails), the table here follows the variant.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils
from dendrite.layers import initializers

CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


def _stages(*rows: tuple) -> list[dict[str, Any]]:
    return [
        {"kernel_size": 3, "num_repeat": r, "input_filters": fi, "output_filters": fo,
         "expand_ratio": e, "se_ratio": se, "strides": s, "conv_type": t}
        for r, fi, fo, e, se, s, t in rows
    ]  # fmt: skip


_B = _stages(
    # repeats, in, out, expand, se, stride, conv_type (1: fused)
    (1, 32, 16, 1, 0, 1, 1), (2, 16, 32, 4, 0, 2, 1), (2, 32, 48, 4, 0, 2, 1),
    (3, 48, 96, 4, 0.25, 2, 0), (5, 96, 112, 6, 0.25, 1, 0), (8, 112, 192, 6, 0.25, 2, 0),
)  # fmt: skip
DEFAULT_BLOCKS_ARGS: dict[str, list[dict[str, Any]]] = {
    "efficientnetv2-s": _stages(
        (2, 24, 24, 1, 0, 1, 1), (4, 24, 48, 4, 0, 2, 1), (4, 48, 64, 4, 0, 2, 1),
        (6, 64, 128, 4, 0.25, 2, 0), (9, 128, 160, 6, 0.25, 1, 0),
        (15, 160, 256, 6, 0.25, 2, 0),
    ),
    "efficientnetv2-m": _stages(
        (3, 24, 24, 1, 0, 1, 1), (5, 24, 48, 4, 0, 2, 1), (5, 48, 80, 4, 0, 2, 1),
        (7, 80, 160, 4, 0.25, 2, 0), (14, 160, 176, 6, 0.25, 1, 0),
        (18, 176, 304, 6, 0.25, 2, 0), (5, 304, 512, 6, 0.25, 1, 0),
    ),
    "efficientnetv2-l": _stages(
        (4, 32, 32, 1, 0, 1, 1), (7, 32, 64, 4, 0, 2, 1), (7, 64, 96, 4, 0, 2, 1),
        (10, 96, 192, 4, 0.25, 2, 0), (19, 192, 224, 6, 0.25, 1, 0),
        (25, 224, 384, 6, 0.25, 2, 0), (7, 384, 640, 6, 0.25, 1, 0),
    ),
    "efficientnetv2-b0": _B,
    "efficientnetv2-b1": _B,
    "efficientnetv2-b2": _B,
    "efficientnetv2-b3": _B,
}  # fmt: skip


def round_filters(
    filters: float, width_coefficient: float, min_depth: int, depth_divisor: int
) -> int:
    """``filters`` times the width coefficient, rounded to a multiple of ``depth_divisor``
    (at least ``min_depth``)."""
    filters *= width_coefficient
    minimum_depth = min_depth or depth_divisor
    new_filters = max(
        minimum_depth, int(filters + depth_divisor / 2) // depth_divisor * depth_divisor
    )
    return int(new_filters)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """``repeats`` times the depth coefficient, rounded up."""
    return int(math.ceil(depth_coefficient * repeats))


def _bn(name: str, momentum: float) -> Any:
    return layers.BatchNormalization(axis=3, momentum=momentum, name=name)


def _conv(filters: int, kernel_size: int, strides: int, name: str) -> Any:
    return layers.Conv2D(
        filters, kernel_size, strides=strides, kernel_initializer=CONV_KERNEL_INITIALIZER,
        padding="same", use_bias=False, name=name,
    )  # fmt: skip


def _squeeze_excite(
    x: Any, filters: int, input_filters: int, se_ratio: float, activation: Any, name: str
) -> Any:
    filters_se = max(1, int(input_filters * se_ratio))
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
    return layers.Multiply(name=f"{name}se_excite")([x, se])


def _residual(x: Any, inputs: Any, survival_probability: float, name: str) -> Any:
    if survival_probability:
        x = layers.Dropout(survival_probability, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
    return layers.Add(name=f"{name}add")([x, inputs])


def mb_conv_block(
    inputs: Any,
    input_filters: int,
    output_filters: int,
    expand_ratio: int = 1,
    kernel_size: int = 3,
    strides: int = 1,
    se_ratio: float = 0.0,
    bn_momentum: float = 0.9,
    activation: Any = "swish",
    survival_probability: float = 0.8,
    name: str = "",
) -> Any:
    """MBConv: 1x1 expansion, depthwise convolution, squeeze-and-excite, 1x1 projection
    (Keras' ``MBConvBlock``, applied to ``inputs``)."""
    filters = input_filters * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = _conv(filters, 1, 1, f"{name}expand_conv")(x)
        x = _bn(f"{name}expand_bn", bn_momentum)(x)
        x = layers.Activation(activation, name=f"{name}expand_activation")(x)
    x = layers.DepthwiseConv2D(
        kernel_size=kernel_size, strides=strides, depthwise_initializer=CONV_KERNEL_INITIALIZER,
        padding="same", use_bias=False, name=f"{name}dwconv2",
    )(x)  # fmt: skip
    x = _bn(f"{name}bn", bn_momentum)(x)
    x = layers.Activation(activation, name=f"{name}activation")(x)
    if 0 < se_ratio <= 1:
        x = _squeeze_excite(x, filters, input_filters, se_ratio, activation, name)
    x = _conv(output_filters, 1, 1, f"{name}project_conv")(x)
    x = _bn(f"{name}project_bn", bn_momentum)(x)
    if strides == 1 and input_filters == output_filters:
        x = _residual(x, inputs, survival_probability, name)
    return x


def fused_mb_conv_block(
    inputs: Any,
    input_filters: int,
    output_filters: int,
    expand_ratio: int = 1,
    kernel_size: int = 3,
    strides: int = 1,
    se_ratio: float = 0.0,
    bn_momentum: float = 0.9,
    activation: Any = "swish",
    survival_probability: float = 0.8,
    name: str = "",
) -> Any:
    """Fused-MBConv: one full convolution instead of expansion + depthwise (Keras'
    ``FusedMBConvBlock``, applied to ``inputs``)."""
    filters = input_filters * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = _conv(filters, kernel_size, strides, f"{name}expand_conv")(x)
        x = _bn(f"{name}expand_bn", bn_momentum)(x)
        x = layers.Activation(activation, name=f"{name}expand_activation")(x)
    if 0 < se_ratio <= 1:
        x = _squeeze_excite(x, filters, input_filters, se_ratio, activation, name)
    fused = expand_ratio == 1
    x = _conv(
        output_filters, kernel_size if fused else 1, strides if fused else 1,
        f"{name}project_conv",
    )(x)  # fmt: skip
    x = _bn(f"{name}project_bn", bn_momentum)(x)
    if fused:
        x = layers.Activation(activation, name=f"{name}project_activation")(x)
    if strides == 1 and input_filters == output_filters:
        x = _residual(x, inputs, survival_probability, name)
    return x


def EfficientNetV2(  # noqa: N802 (Keras' name)
    width_coefficient: float,
    depth_coefficient: float,
    default_size: int,
    dropout_rate: float = 0.2,
    drop_connect_rate: float = 0.2,
    depth_divisor: int = 8,
    min_depth: int = 8,
    bn_momentum: float = 0.9,
    activation: Any = "swish",
    blocks_args: Any = "default",
    name: str = "efficientnetv2",
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    include_preprocessing: bool = True,
    weights_name: str | None = None,
) -> Any:
    """The shared EfficientNetV2 builder; see the module docstring. ``blocks_args``: a
    list of stage dicts, or "default" for the variant's table (``weights_name``, else
    ``name``, picks it: "b0" .. "b3", "-s", "-m", "-l")."""
    variant = f"efficientnetv2-{weights_name.lstrip('-')}" if weights_name else name
    if blocks_args == "default":
        if variant not in DEFAULT_BLOCKS_ARGS:
            raise ValueError(
                f"No default stage table for {variant!r}: pass blocks_args, or one of "
                f"{sorted(DEFAULT_BLOCKS_ARGS)} as the name."
            )
        blocks_args = DEFAULT_BLOCKS_ARGS[variant]
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=default_size, min_size=32,
    )  # fmt: skip

    x = img_input
    if include_preprocessing:
        if variant.split("-")[-1].startswith("b") and input_shape[2] == 3:
            x = layers.Rescaling(scale=1.0 / 255, name="rescaling")(x)
            x = layers.Normalization(
                mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2], axis=3,
                name="normalization",
            )(x)  # fmt: skip
        else:
            x = layers.Rescaling(scale=1.0 / 128.0, offset=-1, name="rescaling")(x)

    def filters_of(filters: float) -> int:
        return round_filters(filters, width_coefficient, min_depth, depth_divisor)

    x = _conv(filters_of(blocks_args[0]["input_filters"]), 3, 2, "stem_conv")(x)
    x = _bn("stem_bn", bn_momentum)(x)
    x = layers.Activation(activation, name="stem_activation")(x)

    blocks_args = copy.deepcopy(blocks_args)
    b = 0
    blocks = float(sum(args["num_repeat"] for args in blocks_args))
    for i, args in enumerate(blocks_args):
        if args["num_repeat"] <= 0:
            raise ValueError(
                "The number of repeats in `EfficientNetV2` must be > 0. "
                f"Received: num_repeat={args['num_repeat']}"
            )
        args["input_filters"] = filters_of(args["input_filters"])
        args["output_filters"] = filters_of(args["output_filters"])
        block = fused_mb_conv_block if args.pop("conv_type") else mb_conv_block
        for j in range(round_repeats(args.pop("num_repeat"), depth_coefficient)):
            if j > 0:
                args["strides"] = 1
                args["input_filters"] = args["output_filters"]
            x = block(
                x, activation=activation, bn_momentum=bn_momentum,
                survival_probability=drop_connect_rate * b / blocks,
                name=f"block{i + 1}{chr(j + 97)}_", **args,
            )  # fmt: skip
            b += 1

    x = _conv(filters_of(1280), 1, 1, "top_conv")(x)
    x = _bn("top_bn", bn_momentum)(x)
    x = layers.Activation(activation, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(
            classes, activation=classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER,
            bias_initializer=initializers.Constant(0.0), name="predictions",
        )(x)  # fmt: skip
    else:
        x = imagenet_utils.pool(x, pooling, named=True)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def _variant(width: float, depth: float, size: int, suffix: str) -> Any:
    default_name = f"efficientnetv2-{suffix.lstrip('-')}"

    def build(
        include_top: bool = True,
        weights: Any = "imagenet",
        input_tensor: Any = None,
        input_shape: Any = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: Any = "softmax",
        include_preprocessing: bool = True,
        name: str = default_name,
    ) -> Any:
        return EfficientNetV2(
            width, depth, size, name=name, include_top=include_top, weights=weights,
            input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
            classes=classes, classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, weights_name=suffix,
        )  # fmt: skip

    label = "EfficientNetV2" + suffix.lstrip("-").upper()
    build.__name__ = build.__qualname__ = label
    build.__doc__ = (
        f"{label} (width {width}, depth {depth}, default input {size}x{size}x3); see the "
        'module docstring. ``weights``: None or a local file ("imagenet" raises: dendrite '
        'downloads nothing); ``pooling``: None, "avg", "max".'
    )
    return build


EfficientNetV2B0 = _variant(1.0, 1.0, 224, "b0")
EfficientNetV2B1 = _variant(1.0, 1.1, 240, "b1")
EfficientNetV2B2 = _variant(1.1, 1.2, 260, "b2")
EfficientNetV2B3 = _variant(1.2, 1.4, 300, "b3")
EfficientNetV2S = _variant(1.0, 1.0, 384, "-s")
EfficientNetV2M = _variant(1.0, 1.0, 480, "-m")
EfficientNetV2L = _variant(1.0, 1.0, 480, "-l")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """The identity: EfficientNetV2 rescales (and normalizes) its input itself."""
    return x


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
