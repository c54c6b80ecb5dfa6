"""ConvNeXtTiny, Small, Base, Large and XLarge (Liu et al., "A ConvNet for the 2020s",
CVPR 2022), as ``keras.applications.convnext``.

The model normalizes its own input (``include_preprocessing``, on 3-channel inputs):
``{name}_prestem_normalization``, per-channel ImageNet mean and variance for pixels in
[0, 255] (fixed statistics, no weights), so ``preprocess_input`` is the identity, as in
Keras. Stem ``{name}_stem`` (a nested Sequential: ``_stem_conv`` 4x4/4 ->
``_stem_layernorm``); three ``{name}_downsampling_block_{i}`` (Sequential:
``_downsampling_layernorm_{i}`` -> ``_downsampling_conv_{i}`` 2x2/2) lead into stages 1-3.
Each block ``{name}_stage_{s}_block_{j}``: ``_depthwise_conv`` (7x7, one group per
channel, with bias) -> ``_layernorm`` -> ``_pointwise_conv_1`` (Dense, 4x wide) ->
``_gelu`` -> ``_pointwise_conv_2`` (Dense) -> ``_layer_scale`` (``LayerScale``: a
learned per-channel factor, initially 1e-6) -> ``_stochastic_depth`` (``StochasticDepth``,
when the block's drop-path rate is above 0; else ``_identity``, a linear activation),
added to the block's input. Layer normalizations use epsilon 1e-6. The top is
``{name}_head_gap`` -> ``{name}_head_layernorm`` -> ``{name}_head_dense``; without it the
output (pooled or not) passes a final ``layer_normalization``, as in Keras.

    model   depths         widths                  parameters (1000 classes)
    Tiny    3, 3, 9, 3     96, 192, 384, 768        28,589,128
    Small   3, 3, 27, 3    96, 192, 384, 768        50,223,688
    Base    3, 3, 27, 3    128, 256, 512, 1024      88,591,464
    Large   3, 3, 27, 3    192, 384, 768, 1536     197,767,336
    XLarge  3, 3, 27, 3    256, 512, 1024, 2048    350,196,968

(Keras 3's counts; the same here.) Default input 224x224x3, at least 32x32.

``LayerScale`` and ``StochasticDepth`` are registered serializable objects (package
"keras_applications"), so model files naming them load: Keras' own ``.keras`` files name
them by their bare class names, which find these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, layers
from dendrite.applications import imagenet_utils
from dendrite.layers import initializers
from dendrite.models import Sequential
from dendrite.registry.custom_objects import register_keras_serializable

MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"depths": [3, 3, 9, 3], "projection_dims": [96, 192, 384, 768]},
    "small": {"depths": [3, 3, 27, 3], "projection_dims": [96, 192, 384, 768]},
    "base": {"depths": [3, 3, 27, 3], "projection_dims": [128, 256, 512, 1024]},
    "large": {"depths": [3, 3, 27, 3], "projection_dims": [192, 384, 768, 1536]},
    "xlarge": {"depths": [3, 3, 27, 3], "projection_dims": [256, 512, 1024, 2048]},
}

_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
_VARIANCE = [(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2]


@register_keras_serializable(package="keras_applications")
class StochasticDepth(layers.Layer):
    """Drops a residual branch per sample in training (Huang et al., "Deep Networks with
    Stochastic Depth", 2016): ``x / keep * m`` with ``m ~ Bernoulli(keep)`` per sample,
    ``keep = 1 - drop_path_rate``; the identity at inference. Keras' class of the same
    name."""

    def __init__(self, drop_path_rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drop_path_rate = drop_path_rate

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or not self.drop_path_rate:
            return x
        keep_prob = 1.0 - self.drop_path_rate
        shape = (x.shape[0],) + (1,) * (len(x.shape) - 1)
        keep = _settings.rng().random(shape, dtype=np.float32) < keep_prob
        return x * (keep.astype(x.dtype) / np.asarray(keep_prob, dtype=x.dtype))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "drop_path_rate": self.drop_path_rate}


@register_keras_serializable(package="keras_applications")
class LayerScale(layers.Layer):
    """Multiplies the last axis by a learned per-channel factor ``gamma`` (Touvron et al.,
    "Going deeper with Image Transformers", 2021), initialized to ``init_values``. Keras'
    class of the same name."""

    def __init__(self, init_values: float, projection_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape: Any) -> None:
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=initializers.Constant(self.init_values),
            trainable=True,
        )
        self.built = True

    def call(self, x: Any) -> Any:
        return x * self.gamma

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "init_values": self.init_values,
            "projection_dim": self.projection_dim,
        }


def _block(
    x: Any, projection_dim: int, drop_path_rate: float, layer_scale_init_value: Any, name: str
) -> Any:
    """One ConvNeXt block (Keras' ``ConvNeXtBlock``)."""
    inputs = x
    x = layers.Conv2D(
        projection_dim, kernel_size=7, padding="same", groups=projection_dim,
        name=f"{name}_depthwise_conv",
    )(x)  # fmt: skip
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_layernorm")(x)
    x = layers.Dense(4 * projection_dim, name=f"{name}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = layers.Dense(projection_dim, name=f"{name}_pointwise_conv_2")(x)
    if layer_scale_init_value is not None:
        x = LayerScale(layer_scale_init_value, projection_dim, name=f"{name}_layer_scale")(x)
    if drop_path_rate:
        x = StochasticDepth(drop_path_rate, name=f"{name}_stochastic_depth")(x)
    else:
        x = layers.Activation("linear", name=f"{name}_identity")(x)
    return inputs + x


def ConvNeXt(  # noqa: N802 (Keras' name)
    depths: list[int],
    projection_dims: list[int],
    drop_path_rate: float = 0.0,
    layer_scale_init_value: Any = 1e-6,
    default_size: int = 224,
    name: str = "convnext",
    include_preprocessing: bool = True,
    include_top: bool = True,
    weights: Any = None,
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    weights_name: str | None = None,
) -> Any:
    """The shared ConvNeXt builder: four stages of ``depths`` blocks, ``projection_dims``
    wide; block drop-path rates rise linearly from 0 to ``drop_path_rate``; see the module
    docstring."""
    img_input, input_shape = imagenet_utils.model_input(
        name, input_tensor, input_shape, weights=weights, include_top=include_top,
        classes=classes, pooling=pooling, default_size=default_size, min_size=32,
    )  # fmt: skip
    x = img_input
    if include_preprocessing and input_shape[2] == 3:
        x = layers.Normalization(
            mean=_MEAN, variance=_VARIANCE, name=f"{name}_prestem_normalization"
        )(x)

    stem = Sequential(
        [
            layers.Conv2D(projection_dims[0], kernel_size=4, strides=4, name=f"{name}_stem_conv"),
            layers.LayerNormalization(epsilon=1e-6, name=f"{name}_stem_layernorm"),
        ],
        name=f"{name}_stem",
    )
    downsample_layers = [stem]
    for i in range(3):
        downsample_layers.append(
            Sequential(
                [
                    layers.LayerNormalization(
                        epsilon=1e-6, name=f"{name}_downsampling_layernorm_{i}"
                    ),
                    layers.Conv2D(
                        projection_dims[i + 1],
                        kernel_size=2,
                        strides=2,
                        name=f"{name}_downsampling_conv_{i}",
                    ),  # fmt: skip
                ],
                name=f"{name}_downsampling_block_{i}",
            )
        )

    depth_drop_rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))]
    cur = 0
    for i in range(4):
        x = downsample_layers[i](x)
        for j in range(depths[i]):
            x = _block(
                x, projection_dims[i], depth_drop_rates[cur + j], layer_scale_init_value,
                name=f"{name}_stage_{i}_block_{j}",
            )  # fmt: skip
        cur += depths[i]

    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
        x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_head_layernorm")(x)
        x = layers.Dense(classes, activation=classifier_activation, name=f"{name}_head_dense")(x)
    else:
        x = imagenet_utils.pool(x, pooling)
        x = layers.LayerNormalization(epsilon=1e-6, name="layer_normalization")(x)
    return imagenet_utils.finish(img_input, input_tensor, x, name, weights)


def _variant(size: str, default_name: str) -> Any:
    config = MODEL_CONFIGS[size]

    def build(
        include_top: bool = True,
        include_preprocessing: bool = True,
        weights: Any = "imagenet",
        input_tensor: Any = None,
        input_shape: Any = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: Any = "softmax",
        name: str = default_name,
    ) -> Any:
        return ConvNeXt(
            depths=config["depths"], projection_dims=config["projection_dims"],
            drop_path_rate=0.0, layer_scale_init_value=1e-6, default_size=224, name=name,
            include_preprocessing=include_preprocessing, include_top=include_top,
            weights=weights, input_tensor=input_tensor, input_shape=input_shape,
            pooling=pooling, classes=classes, classifier_activation=classifier_activation,
            weights_name=default_name,
        )  # fmt: skip

    label = "ConvNeXt" + {"xlarge": "XLarge"}.get(size, size.capitalize())
    build.__name__ = build.__qualname__ = label
    build.__doc__ = (
        f"{label} (depths {config['depths']}, widths {config['projection_dims']}, default "
        "input 224x224x3); see the module docstring. ``weights``: None or a local file "
        '("imagenet" raises: dendrite downloads nothing); ``pooling``: None, "avg", "max".'
    )
    return build


ConvNeXtTiny = _variant("tiny", "convnext_tiny")
ConvNeXtSmall = _variant("small", "convnext_small")
ConvNeXtBase = _variant("base", "convnext_base")
ConvNeXtLarge = _variant("large", "convnext_large")
ConvNeXtXLarge = _variant("xlarge", "convnext_xlarge")


def preprocess_input(x: Any, data_format: str | None = None) -> Any:
    """The identity: ConvNeXt normalizes its input itself (``include_preprocessing``)."""
    return x


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list:
    """See ``imagenet_utils.decode_predictions``."""
    return imagenet_utils.decode_predictions(preds, top=top, class_index=class_index)
