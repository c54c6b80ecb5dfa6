"""MobileNetV3Small and MobileNetV3Large (Howard et al., "Searching for MobileNetV3",
ICCV 2019), as ``keras.applications.mobilenet_v3``.

The model rescales its own input (``include_preprocessing``: ``x / 127.5 - 1``), so
``preprocess_input`` is the identity, as in Keras. Stem ``conv`` (3x3/2, 16, no bias) ->
``conv_bn`` -> hard-swish. Then inverted residual blocks ``expanded_conv_{i}_``:
``expand`` (1x1; absent in block 0) -> ``depthwise`` (3x3 or 5x5; ``depthwise_pad``
before a stride-2 one) -> optional squeeze-and-excite (``squeeze_excite_avg_pool`` ->
``_conv`` (ReLU) -> ``_conv_1`` -> hard sigmoid -> ``_mul``) -> ``project`` (1x1, linear),
each with BatchNormalization (epsilon 1e-3, momentum 0.999), and ``add`` when shapes
agree. Small has 11 blocks (16, 24, 24, 40 x3, 48 x2, 96 x3 channels), Large 15 (16,
24 x2, 40 x3, 80 x4, 112 x2, 160 x3). Head ``conv_1`` (1x1, 6x the channels) ->
``conv_1_bn`` -> activation; the top is global average pooling (keepdims) -> ``conv_2``
(1x1, 1024 Small / 1280 Large, with bias) -> activation -> dropout -> ``logits`` (1x1
conv) -> flatten -> ``predictions`` (the classifier activation). ``minimalistic`` uses
3x3 kernels, ReLU and no squeeze-and-excite.

dendrite has no "hard_swish" activation name (``ops.hard_swish`` exists, but
``layers.activations`` does not register it), so hard-swish is built as Keras 2 did,
``Multiply()([x, Activation("hard_sigmoid")(x)])``: the same function, no weights.
Parameters (Keras 3, 1000 classes): Small 2,554,968; Large 5,507,432.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite import layers
from dendrite.applications import imagenet_utils

Act = Callable[[Any], Any]


def _depth(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def relu(x: Any) -> Any:
    return layers.ReLU()(x)


def hard_sigmoid(x: Any) -> Any:
    """``relu6(x + 3) / 6`` (dendrite's and Keras 3's "hard_sigmoid")."""
    return layers.Activation("hard_sigmoid")(x)


def hard_swish(x: Any) -> Any:
    """``x * hard_sigmoid(x)``."""
    return layers.Multiply()([x, hard_sigmoid(x)])


def _bn(name: str) -> Any:
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)


def _se_block(inputs: Any, filters: int, se_ratio: float, prefix: str) -> Any:
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(
        inputs
    )
    x = layers.Conv2D(
        _depth(filters * se_ratio), kernel_size=1, padding="same",
        name=f"{prefix}squeeze_excite_conv",
    )(x)  # fmt: skip
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(
        filters, kernel_size=1, padding="same", name=f"{prefix}squeeze_excite_conv_1"
    )(x)
    x = hard_sigmoid(x)
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def _inverted_res_block(
    x: Any,
    expansion: float,
    filters: int,
    kernel_size: int,
    stride: int,
    se_ratio: float | None,
    activation: Act,
    block_id: int,
) -> Any:
    shortcut = x
    prefix = "expanded_conv_"
    infilters = x.shape[-1]
    if block_id:
        prefix = f"expanded_conv_{block_id}_"
        x = layers.Conv2D(
            _depth(infilters * expansion), kernel_size=1, padding="same", use_bias=False,
            name=f"{prefix}expand",
        )(x)  # fmt: skip
        x = _bn(f"{prefix}expand_bn")(x)
        x = activation(x)
    if stride == 2:
        x = layers.ZeroPadding2D(
            padding=imagenet_utils.correct_pad(x, kernel_size), name=f"{prefix}depthwise_pad"
        )(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=stride, padding="same" if stride == 1 else "valid",
        use_bias=False, name=f"{prefix}depthwise",
    )(x)  # fmt: skip
    x = _bn(f"{prefix}depthwise_bn")(x)
    x = activation(x)
    if se_ratio:
        x = _se_block(x, _depth(infilters * expansion), se_ratio, prefix)
    x = layers.Conv2D(
        filters, kernel_size=1, padding="same", use_bias=False, name=f"{prefix}project"
    )(x)
    x = _bn(f"{prefix}project_bn")(x)
    if stride == 1 and infilters == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def MobileNetV3(  # noqa: N802 (Keras' name)
    stack_fn: Callable[[Any, int, Act, float | None], Any],
    last_point_ch: int,
    input_shape: Any = None,
    alpha: float = 1.0,
    minimalistic: bool = False,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    classes: int = 1000,
    pooling: str | None = None,
    dropout_rate: float = 0.2,
    classifier_activation: Any = "softmax",
    include_preprocessing: bool = True,
    name: str | None = None,
) -> Any:
    """The shared MobileNetV3 builder (``stack_fn(x, kernel, activation, se_ratio)``
    makes the blocks)."""
    imagenet_utils.check_arguments(weights, include_top, classes, pooling, name or "MobileNetV3")
    imagenet_utils.check_tensor_matches_shape(input_tensor, input_shape, name or "MobileNetV3")
    if input_shape is None and input_tensor is not None and hasattr(input_tensor, "shape"):
        input_shape = tuple(input_tensor.shape)[1:3] + (3,)
    if input_shape is None:
        input_shape = (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"{name or 'MobileNetV3'}: `input_shape` must be a tuple of three integers. "
            f"Received: {input_shape!r}"
        )
    rows, cols = input_shape[0], input_shape[1]
    if rows and cols and (rows < 32 or cols < 32):
        raise ValueError(
            f"{name or 'MobileNetV3'}: Input size must be at least 32x32; Received "
            f"`input_shape={input_shape}`"
        )
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    if minimalistic:
        kernel, activation, se_ratio = 3, relu, None
    else:
        kernel, activation, se_ratio = 5, hard_swish, 0.25
    x = img_input
    if include_preprocessing:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x)
    x = layers.Conv2D(
        16, kernel_size=3, strides=(2, 2), padding="same", use_bias=False, name="conv"
    )(x)
    x = _bn("conv_bn")(x)
    x = activation(x)
    x = stack_fn(x, kernel, activation, se_ratio)
    last_conv_ch = _depth(x.shape[-1] * 6)
    if alpha > 1.0:
        last_point_ch = _depth(last_point_ch * alpha)
    x = layers.Conv2D(last_conv_ch, kernel_size=1, padding="same", use_bias=False, name="conv_1")(x)
    x = _bn("conv_1_bn")(x)
    x = activation(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Conv2D(
            last_point_ch, kernel_size=1, padding="same", use_bias=True, name="conv_2"
        )(x)
        x = activation(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate)(x)
        x = layers.Conv2D(classes, kernel_size=1, padding="same", name="logits")(x)
        x = layers.Flatten()(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Activation(activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool(x, pooling, named=True)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def MobileNetV3Small(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    alpha: float = 1.0,
    minimalistic: bool = False,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    classes: int = 1000,
    pooling: str | None = None,
    dropout_rate: float = 0.2,
    classifier_activation: Any = "softmax",
    include_preprocessing: bool = True,
    name: str = "MobileNetV3Small",
) -> Any:
    """MobileNetV3Small (11 blocks); see the module docstring. ``weights``: None or a
    local file ("imagenet" raises: dendrite downloads nothing). Any input size >= 32."""

    def stack_fn(x: Any, kernel: int, activation: Act, se_ratio: float | None) -> Any:
        def depth(d: float) -> int:
            return _depth(d * alpha)

        x = _inverted_res_block(x, 1, depth(16), 3, 2, se_ratio, relu, 0)
        x = _inverted_res_block(x, 72.0 / 16, depth(24), 3, 2, None, relu, 1)
        x = _inverted_res_block(x, 88.0 / 24, depth(24), 3, 1, None, relu, 2)
        x = _inverted_res_block(x, 4, depth(40), kernel, 2, se_ratio, activation, 3)
        x = _inverted_res_block(x, 6, depth(40), kernel, 1, se_ratio, activation, 4)
        x = _inverted_res_block(x, 6, depth(40), kernel, 1, se_ratio, activation, 5)
        x = _inverted_res_block(x, 3, depth(48), kernel, 1, se_ratio, activation, 6)
        x = _inverted_res_block(x, 3, depth(48), kernel, 1, se_ratio, activation, 7)
        x = _inverted_res_block(x, 6, depth(96), kernel, 2, se_ratio, activation, 8)
        x = _inverted_res_block(x, 6, depth(96), kernel, 1, se_ratio, activation, 9)
        return _inverted_res_block(x, 6, depth(96), kernel, 1, se_ratio, activation, 10)

    return MobileNetV3(
        stack_fn, 1024, input_shape, alpha, minimalistic, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name=name,
    )  # fmt: skip


def MobileNetV3Large(  # noqa: N802 (Keras' name)
    input_shape: Any = None,
    alpha: float = 1.0,
    minimalistic: bool = False,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    classes: int = 1000,
    pooling: str | None = None,
    dropout_rate: float = 0.2,
    classifier_activation: Any = "softmax",
    include_preprocessing: bool = True,
    name: str = "MobileNetV3Large",
) -> Any:
    """MobileNetV3Large (15 blocks); arguments as ``MobileNetV3Small``."""

    def stack_fn(x: Any, kernel: int, activation: Act, se_ratio: float | None) -> Any:
        def depth(d: float) -> int:
            return _depth(d * alpha)

        x = _inverted_res_block(x, 1, depth(16), 3, 1, None, relu, 0)
        x = _inverted_res_block(x, 4, depth(24), 3, 2, None, relu, 1)
        x = _inverted_res_block(x, 3, depth(24), 3, 1, None, relu, 2)
        x = _inverted_res_block(x, 3, depth(40), kernel, 2, se_ratio, relu, 3)
        x = _inverted_res_block(x, 3, depth(40), kernel, 1, se_ratio, relu, 4)
        x = _inverted_res_block(x, 3, depth(40), kernel, 1, se_ratio, relu, 5)
        x = _inverted_res_block(x, 6, depth(80), 3, 2, None, activation, 6)
        x = _inverted_res_block(x, 2.5, depth(80), 3, 1, None, activation, 7)
        x = _inverted_res_block(x, 2.3, depth(80), 3, 1, None, activation, 8)
        x = _inverted_res_block(x, 2.3, depth(80), 3, 1, None, activation, 9)
        x = _inverted_res_block(x, 6, depth(112), 3, 1, se_ratio, activation, 10)
        x = _inverted_res_block(x, 6, depth(112), 3, 1, se_ratio, activation, 11)
        x = _inverted_res_block(x, 6, depth(160), kernel, 2, se_ratio, activation, 12)
        x = _inverted_res_block(x, 6, depth(160), kernel, 1, se_ratio, activation, 13)
        return _inverted_res_block(x, 6, depth(160), kernel, 1, se_ratio, activation, 14)

    return MobileNetV3(
        stack_fn, 1280, input_shape, alpha, minimalistic, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name=name,
    )  # fmt: skip


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """The identity: MobileNetV3 rescales its input itself (``include_preprocessing``)."""
    return x


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
