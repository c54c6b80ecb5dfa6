"""NASNetMobile and NASNetLarge (Zoph et al., "Learning Transferable Architectures for
Scalable Image Recognition", CVPR 2018), as ``keras.applications.nasnet``.

Stem ``stem_conv1`` (3x3/2, valid, no bias) -> ``stem_bn1``, then two reduction cells
(``stem_1``, ``stem_2``), ``num_blocks`` normal cells (``0`` .. ``N-1``), a reduction cell
``reduce_N``, ``N`` normal cells, ``reduce_2N``, ``N`` normal cells, and a final ReLU;
the top is global average pooling -> ``predictions``. Each cell takes the two previous
cells' outputs: ``_adjust_block`` brings the older one (``p``) to the newer one's size
(``adjust_relu_1_``, two offset 1x1/2 average-pooled paths ``adjust_avg_pool_{1,2}_`` ->
``adjust_conv_{1,2}_``, concatenated, ``adjust_bn_``) or width (``adjust_conv_projection_``
-> ``adjust_bn_``). A normal cell: ReLU -> ``normal_conv_1_`` (1x1) -> ``normal_bn_1_``,
then five pairwise sums of separable-convolution blocks (ReLU -> ``separable_conv_1_`` ->
BN -> ReLU -> ``separable_conv_2_`` -> BN), 3x3 average poolings and identities
(``normal_add_{1..5}_``), concatenated with ``p`` (``normal_concat_``). A reduction cell
halves the size with strided separable blocks (5x5, 7x7) and 3x3/2 poolings
(``reduction_add_1_``, ``_add_2_``, ``_add3_``, ``_add4_``, ``reduction_concat_``).
Batch normalization uses momentum 0.9997, epsilon 1e-3; convolutions start He-normal.

    model   blocks  penultimate  stem  default  parameters (Keras 3, 1000 classes)
    Mobile  4       1056         32    224       5,326,716
    Large   6       4032         96    331      88,949,818

Inputs: "tf" mode. Keras' NASNetMobile without the top defaults to a 224x224x3 input
(not a free size), as here. Only channels_last.
"""

from __future__ import annotations

from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils


def _bn(name: str) -> Any:
    return layers.BatchNormalization(axis=-1, momentum=0.9997, epsilon=1e-3, name=name)


def _conv1x1(filters: int, name: str) -> Any:
    return layers.Conv2D(
        filters, (1, 1), strides=(1, 1), padding="same", use_bias=False, name=name,
        kernel_initializer="he_normal",
    )  # fmt: skip


def _separable_conv_block(
    ip: Any, filters: int, kernel_size: tuple = (3, 3), strides: tuple = (1, 1), block_id: str = ""
) -> Any:
    """ReLU -> separable convolution (strided: after TensorFlow-style padding) -> BN ->
    ReLU -> separable convolution -> BN."""
    x = layers.Activation("relu")(ip)
    if strides == (2, 2):
        x = layers.ZeroPadding2D(
            padding=imagenet_utils.correct_pad(x, kernel_size),
            name=f"separable_conv_1_pad_{block_id}",
        )(x)
        conv_pad = "valid"
    else:
        conv_pad = "same"
    x = layers.SeparableConv2D(
        filters, kernel_size, strides=strides, name=f"separable_conv_1_{block_id}",
        padding=conv_pad, use_bias=False,
    )(x)  # fmt: skip
    x = _bn(f"separable_conv_1_bn_{block_id}")(x)
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(
        filters, kernel_size, name=f"separable_conv_2_{block_id}", padding="same",
        use_bias=False,
    )(x)  # fmt: skip
    return _bn(f"separable_conv_2_bn_{block_id}")(x)


def _adjust_block(p: Any, ip: Any, filters: int, block_id: str) -> Any:
    """The previous cell's output ``p`` matched to ``ip``'s spatial size and ``filters``."""
    if p is None:
        return ip
    if p.shape[-2] != ip.shape[-2]:
        p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
        p1 = layers.AveragePooling2D(
            (1, 1), strides=(2, 2), padding="valid", name=f"adjust_avg_pool_1_{block_id}"
        )(p)
        p1 = layers.Conv2D(
            filters // 2, (1, 1), padding="same", use_bias=False,
            name=f"adjust_conv_1_{block_id}", kernel_initializer="he_normal",
        )(p1)  # fmt: skip
        p2 = layers.ZeroPadding2D(padding=((0, 1), (0, 1)))(p)
        p2 = layers.Cropping2D(cropping=((1, 0), (1, 0)))(p2)
        p2 = layers.AveragePooling2D(
            (1, 1), strides=(2, 2), padding="valid", name=f"adjust_avg_pool_2_{block_id}"
        )(p2)
        p2 = layers.Conv2D(
            filters // 2, (1, 1), padding="same", use_bias=False,
            name=f"adjust_conv_2_{block_id}", kernel_initializer="he_normal",
        )(p2)  # fmt: skip
        p = layers.Concatenate(axis=-1)([p1, p2])
        return _bn(f"adjust_bn_{block_id}")(p)
    if p.shape[-1] != filters:
        p = layers.Activation("relu")(p)
        p = _conv1x1(filters, f"adjust_conv_projection_{block_id}")(p)
        return _bn(f"adjust_bn_{block_id}")(p)
    return p


def _normal_a_cell(ip: Any, p: Any, filters: int, block_id: str) -> tuple[Any, Any]:
    p = _adjust_block(p, ip, filters, block_id)
    h = layers.Activation("relu")(ip)
    h = _conv1x1(filters, f"normal_conv_1_{block_id}")(h)
    h = _bn(f"normal_bn_1_{block_id}")(h)

    def avg3(x: Any, name: str) -> Any:
        return layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name=name)(x)

    x1_1 = _separable_conv_block(h, filters, (5, 5), block_id=f"normal_left1_{block_id}")
    x1_2 = _separable_conv_block(p, filters, block_id=f"normal_right1_{block_id}")
    x1 = layers.Add(name=f"normal_add_1_{block_id}")([x1_1, x1_2])
    x2_1 = _separable_conv_block(p, filters, (5, 5), block_id=f"normal_left2_{block_id}")
    x2_2 = _separable_conv_block(p, filters, (3, 3), block_id=f"normal_right2_{block_id}")
    x2 = layers.Add(name=f"normal_add_2_{block_id}")([x2_1, x2_2])
    x3 = avg3(h, f"normal_left3_{block_id}")
    x3 = layers.Add(name=f"normal_add_3_{block_id}")([x3, p])
    x4_1 = avg3(p, f"normal_left4_{block_id}")
    x4_2 = avg3(p, f"normal_right4_{block_id}")
    x4 = layers.Add(name=f"normal_add_4_{block_id}")([x4_1, x4_2])
    x5 = _separable_conv_block(h, filters, block_id=f"normal_left5_{block_id}")
    x5 = layers.Add(name=f"normal_add_5_{block_id}")([x5, h])
    x = layers.Concatenate(axis=-1, name=f"normal_concat_{block_id}")([p, x1, x2, x3, x4, x5])
    return x, ip


def _reduction_a_cell(ip: Any, p: Any, filters: int, block_id: str) -> tuple[Any, Any]:
    p = _adjust_block(p, ip, filters, block_id)
    h = layers.Activation("relu")(ip)
    h = _conv1x1(filters, f"reduction_conv_1_{block_id}")(h)
    h = _bn(f"reduction_bn_1_{block_id}")(h)
    h3 = layers.ZeroPadding2D(
        padding=imagenet_utils.correct_pad(h, 3), name=f"reduction_pad_1_{block_id}"
    )(h)
    s2 = (2, 2)

    x1_1 = _separable_conv_block(h, filters, (5, 5), s2, f"reduction_left1_{block_id}")
    x1_2 = _separable_conv_block(p, filters, (7, 7), s2, f"reduction_right1_{block_id}")
    x1 = layers.Add(name=f"reduction_add_1_{block_id}")([x1_1, x1_2])
    x2_1 = layers.MaxPooling2D(
        (3, 3), strides=s2, padding="valid", name=f"reduction_left2_{block_id}"
    )(h3)
    x2_2 = _separable_conv_block(p, filters, (7, 7), s2, f"reduction_right2_{block_id}")
    x2 = layers.Add(name=f"reduction_add_2_{block_id}")([x2_1, x2_2])
    x3_1 = layers.AveragePooling2D(
        (3, 3), strides=s2, padding="valid", name=f"reduction_left3_{block_id}"
    )(h3)
    x3_2 = _separable_conv_block(p, filters, (5, 5), s2, f"reduction_right3_{block_id}")
    x3 = layers.Add(name=f"reduction_add3_{block_id}")([x3_1, x3_2])
    x4 = layers.AveragePooling2D(
        (3, 3), strides=(1, 1), padding="same", name=f"reduction_left4_{block_id}"
    )(x1)
    x4 = layers.Add()([x2, x4])
    x5_1 = _separable_conv_block(x1, filters, (3, 3), block_id=f"reduction_left4_{block_id}")
    x5_2 = layers.MaxPooling2D(
        (3, 3), strides=s2, padding="valid", name=f"reduction_right5_{block_id}"
    )(h3)
    x5 = layers.Add(name=f"reduction_add4_{block_id}")([x5_1, x5_2])
    x = layers.Concatenate(axis=-1, name=f"reduction_concat_{block_id}")([x2, x3, x4, x5])
    return x, ip


def NASNet(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    penultimate_filters: int = 4032,
    num_blocks: int = 6,
    stem_block_filters: int = 96,
    skip_reduction: bool = True,
    filter_multiplier: int = 2,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    default_size: int | None = None,
    classifier_activation: Any = "softmax",
    name: str = "NASNet",
) -> Any:
    """The shared NASNet-A builder; see the module docstring. ``penultimate_filters``
    must be a multiple of ``24 * filter_multiplier ** 2``."""
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, name)
    if penultimate_filters % (24 * (filter_multiplier**2)) != 0:
        raise ValueError(
            "For NASNet-A models, the `penultimate_filters` must be a multiple of 24 * "
            f"(`filter_multiplier` ** 2). Current value: {penultimate_filters}"
        )
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size or 331, min_size=32,
        require_flatten=include_top, weights=weights, model_name=name,
    )  # fmt: skip
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    filters = penultimate_filters // 24
    x = layers.Conv2D(
        stem_block_filters, (3, 3), strides=(2, 2), padding="valid", use_bias=False,
        name="stem_conv1", kernel_initializer="he_normal",
    )(img_input)  # fmt: skip
    x = _bn("stem_bn1")(x)

    p = None
    x, p = _reduction_a_cell(x, p, filters // (filter_multiplier**2), block_id="stem_1")
    x, p = _reduction_a_cell(x, p, filters // filter_multiplier, block_id="stem_2")
    for stage in range(3):
        width = filters * filter_multiplier**stage
        if stage:
            x, p0 = _reduction_a_cell(x, p, width, block_id=f"reduce_{stage * num_blocks}")
            p = p if skip_reduction else p0
        for i in range(num_blocks):
            block_id = f"{stage * num_blocks + i + 1}" if stage else f"{i}"
            x, p = _normal_a_cell(x, p, width, block_id=block_id)
    x = layers.Activation("relu")(x)

    x = imagenet_utils.average_top(
        x, include_top, pooling, classes, classifier_activation, weights, gap_name=None
    )
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def NASNetMobile(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "nasnet_mobile",
) -> Any:
    """NASNet-A (4 @ 1056): 4 normal cells per stage, default input 224x224x3; see the
    module docstring. ``weights``: None or a local file ("imagenet" raises: dendrite
    downloads nothing)."""
    if not include_top and input_shape is None:
        input_shape = (224, 224, 3)
    return NASNet(
        input_shape, penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
        skip_reduction=False, filter_multiplier=2, include_top=include_top, weights=weights,
        input_tensor=input_tensor, pooling=pooling, classes=classes, default_size=224,
        classifier_activation=classifier_activation, name=name,
    )  # fmt: skip


def NASNetLarge(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "nasnet_large",
) -> Any:
    """NASNet-A (6 @ 4032): 6 normal cells per stage, default input 331x331x3; see the
    module docstring. ``weights``: None or a local file ("imagenet" raises: dendrite
    downloads nothing)."""
    return NASNet(
        input_shape, penultimate_filters=4032, num_blocks=6, stem_block_filters=96,
        skip_reduction=True, filter_multiplier=2, include_top=include_top, weights=weights,
        input_tensor=input_tensor, pooling=pooling, classes=classes, default_size=331,
        classifier_activation=classifier_activation, name=name,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """ "tf" preprocessing: scales pixels from [0, 255] to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
