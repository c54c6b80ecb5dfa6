"""``keras.applications.imagenet_utils``: input preprocessing, prediction decoding, and the
checks every application shares.

``preprocess_input(x, mode=...)`` prepares RGB images with values in [0, 255]:

- ``"caffe"`` (VGG, ResNet v1): RGB -> BGR, then each channel minus the ImageNet mean
  (103.939, 116.779, 123.68), no scaling;
- ``"tf"`` (ResNet v2, MobileNet, MobileNetV2, Xception, InceptionV3,
  InceptionResNetV2, NASNet): ``x / 127.5 - 1``, into [-1, 1];
- ``"torch"`` (DenseNet): ``x / 255``, then each channel standardised with the ImageNet
  mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

A float NumPy array is changed in place and returned, as in Keras (pass ``np.copy(x)`` to
keep it); integer arrays become ``floatx`` first. A dendrite ``Tensor`` is preprocessed
with ops (differentiable), giving a new Tensor.

``decode_predictions(preds, top=5, class_index=None)`` turns a ``(samples, 1000)`` batch
of ImageNet scores into ``[(wnid, label, score), ...]`` per sample, best first. Keras
downloads ``imagenet_class_index.json`` for this; dendrite downloads nothing. It reads
the index from ``class_index`` (a path to that JSON file, or the dict it holds), or else
from Keras' own cache, ``$KERAS_HOME/models/imagenet_class_index.json`` (by default
``~/.keras/models/``), where an earlier Keras run leaves it; without either it raises a
ValueError saying where to put the file.

The shared model helpers (``obtain_input_shape``, ``correct_pad``,
``validate_activation``) follow Keras' functions of the same names; ``KerasNames`` hands
out Keras' automatic layer names for the families that leave layers unnamed.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dendrite import _settings, layers, ops
from dendrite.layers import activations
from dendrite.layers.input_layer import Input
from dendrite.layers.symbolic import KerasTensor, producer
from dendrite.models import Model

CLASS_INDEX: dict[str, list[str]] | None = None
"""The ImageNet class index once read (Keras' module global of the same name)."""

CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR order
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

_MODES = ("caffe", "tf", "torch")


# --- preprocessing ------------------------------------------------------------------------
def preprocess_input(x: Any, data_format: str | None = None, mode: str = "caffe") -> Any:
    """Preprocesses a batch of images (3D or 4D, 3 colour channels, values in [0, 255]).

    Args:
        x: a NumPy array (floating arrays are changed in place, as in Keras), a dendrite
            Tensor, or anything ``np.asarray`` accepts.
        data_format: ``"channels_last"`` or ``"channels_first"``; None (the default)
            means ``keras.config.image_data_format()``, as in Keras.
        mode: ``"caffe"``, ``"tf"`` or ``"torch"`` (see the module docstring).

    Returns:
        The preprocessed array (float) or Tensor.

    Raises:
        ValueError: for an unknown ``mode`` or ``data_format``.
    """
    if mode not in _MODES:
        raise ValueError(
            f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}"
        )
    if data_format is None:
        data_format = _settings.image_data_format()
    elif data_format not in {"channels_first", "channels_last"}:
        raise ValueError(
            "Expected data_format to be one of `channels_first` or `channels_last`. "
            f"Received: data_format={data_format}"
        )
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        return _preprocess_numpy(x, data_format, mode)
    return _preprocess_tensor(x, data_format, mode)


def _channel_shape(ndim: int, data_format: str) -> tuple[int, ...]:
    """The broadcast shape of a per-channel constant for an ``ndim``-D image batch."""
    if data_format == "channels_first":
        return (3, 1, 1) if ndim == 3 else (1, 3) + (1,) * (ndim - 2)
    return (1,) * (ndim - 1) + (3,)


def _preprocess_numpy(x: np.ndarray, data_format: str, mode: str) -> np.ndarray:
    if not issubclass(x.dtype.type, np.floating):
        x = x.astype(_settings.floatx(), copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = TORCH_MEAN, TORCH_STD
    else:
        axis = -1 if data_format == "channels_last" else (0 if x.ndim == 3 else 1)
        x = np.flip(x, axis=axis)  # RGB -> BGR (a view, as Keras' x[..., ::-1])
        mean, std = CAFFE_MEAN, None
    # Channel by channel, as Keras' NumPy path: an image with more than three channels
    # (RGBA) has only its first three shifted and scaled.
    channel_axis = -1 if data_format == "channels_last" else (0 if x.ndim == 3 else 1)
    for channel in range(3):
        index = (slice(None),) * (channel_axis % x.ndim) + (channel,)
        x[index] -= mean[channel]
        if std is not None:
            x[index] /= std[channel]
    return x


def _preprocess_tensor(x: Any, data_format: str, mode: str) -> Any:
    x = ops.convert_to_tensor(x)
    if not np.issubdtype(np.dtype(x.dtype), np.floating):
        x = ops.cast(x, _settings.floatx())
    if mode == "tf":
        return ops.subtract(ops.divide(x, 127.5), 1.0)
    ndim = len(x.shape)
    channel_axis = -1 if data_format == "channels_last" else (0 if ndim == 3 else 1)
    if x.shape[channel_axis] != 3:
        raise ValueError(
            f"preprocess_input(mode={mode!r}) on a tensor expects 3 colour channels on axis "
            f"{channel_axis} ({data_format}); received shape {tuple(x.shape)}. Pass a NumPy "
            "array to shift only the first three channels, as Keras does."
        )
    if mode == "torch":
        x = ops.divide(x, 255.0)
        mean, std = TORCH_MEAN, TORCH_STD
    else:
        x = ops.take(x, np.array([2, 1, 0]), axis=channel_axis)
        mean, std = CAFFE_MEAN, None
    dtype = np.dtype(x.dtype)
    shape = _channel_shape(ndim, data_format)
    x = ops.subtract(x, np.asarray(mean, dtype=dtype).reshape(shape))
    if std is not None:
        x = ops.divide(x, np.asarray(std, dtype=dtype).reshape(shape))
    return x


# --- decoding predictions -----------------------------------------------------------------
def _keras_cache_path() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / "imagenet_class_index.json"


def _read_class_index(source: Any) -> dict[str, list[str]]:
    if isinstance(source, dict):
        index = source
    else:
        with open(source, encoding="utf-8") as f:
            index = json.load(f)
    if not isinstance(index, dict) or any(str(i) not in index for i in range(1000)):
        raise ValueError(
            "The ImageNet class index must map '0' .. '999' to [wnid, label] (Keras' "
            f"imagenet_class_index.json); {source!r} does not."
        )
    return {str(k): list(v) for k, v in index.items()}


def decode_predictions(preds: Any, top: int = 5, class_index: Any = None) -> list[list[tuple]]:
    """Decodes a batch of ImageNet predictions.

    Args:
        preds: array of shape ``(samples, 1000)``.
        top: how many of the best guesses to return per sample.
        class_index: a path to Keras' ``imagenet_class_index.json`` or the dict it holds
            (``{"0": ["n01440764", "tench"], ...}``). By default, the index already read,
            or Keras' cached copy (``~/.keras/models/imagenet_class_index.json``).

    Returns:
        One list per sample of ``(class_name, class_description, score)`` tuples, highest
        score first.

    Raises:
        ValueError: if ``preds`` is not ``(samples, 1000)``, or no class index is found
            (dendrite downloads nothing).
    """
    global CLASS_INDEX
    preds = np.asarray(getattr(preds, "numpy", lambda: preds)())
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
            f"(samples, 1000)). Received array with shape: {preds.shape}"
        )
    if class_index is not None:
        index = _read_class_index(class_index)
        CLASS_INDEX = index
    elif CLASS_INDEX is not None:
        index = CLASS_INDEX
    else:
        cached = _keras_cache_path()
        if not cached.is_file():
            raise ValueError(
                "decode_predictions needs the ImageNet class index, and dendrite downloads "
                "nothing. Pass class_index='path/to/imagenet_class_index.json' (Keras' file, "
                "from https://storage.googleapis.com/download.tensorflow.org/data/"
                f"imagenet_class_index.json) or place it at {cached}."
            )
        index = CLASS_INDEX = _read_class_index(cached)
    results = []
    for pred in preds:
        top_indices = pred.argsort()[-top:][::-1]
        result = [(*index[str(i)], pred[i]) for i in top_indices]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


# --- shared model helpers -----------------------------------------------------------------
def obtain_input_shape(
    input_shape: Any,
    default_size: int,
    min_size: int,
    data_format: str = "channels_last",
    require_flatten: bool = False,
    weights: Any = None,
    model_name: str | None = None,
) -> tuple:
    """Checks (or chooses) a model's input shape, as Keras' function of the same name.

    ``None`` gives ``(default_size, default_size, 3)`` when ``require_flatten`` (a
    classifier top), else ``(None, None, 3)``. A given shape must have three entries and
    spatial sizes of at least ``min_size``; a top needs static sizes. The errors start
    with ``model_name`` when it is given.
    """
    prefix = f"{model_name}: " if model_name else ""
    if input_shape is not None:
        try:
            input_shape = tuple(None if s is None else int(s) for s in input_shape)
        except TypeError:
            raise ValueError(
                f"{prefix}`input_shape` must be a tuple of three integers. Received: "
                f"{input_shape!r}"
            ) from None
    channels_first = data_format == "channels_first"
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[0] if channels_first else input_shape[-1]
        if channels not in {1, 3}:
            warnings.warn(
                "This model usually expects 1 or 3 input channels. However, it was passed "
                f"an input_shape with {channels} input channels.",
                stacklevel=3,
            )
        default_shape = (
            (channels, default_size, default_size)
            if channels_first
            else (default_size, default_size, channels)
        )
    else:
        default_shape = (
            (3, default_size, default_size) if channels_first else (default_size,) * 2 + (3,)
        )
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError(
                f"{prefix}`input_shape` must be a tuple of three integers. Received: "
                f"{input_shape!r}"
            )
        spatial = input_shape[1:] if channels_first else input_shape[:2]
        if any(s is not None and s < min_size for s in spatial):
            raise ValueError(
                f"{prefix}Input size must be at least {min_size}x{min_size}; Received: "
                f"input_shape={input_shape}"
            )
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if channels_first else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(
            f"{prefix}If `include_top` is True, you should specify a static `input_shape`. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def correct_pad(inputs: KerasTensor, kernel_size: int | tuple[int, int]) -> tuple:
    """The ``ZeroPadding2D`` padding before a strided 'valid' convolution that matches
    TensorFlow's 'same' padding (Keras' ``correct_pad``, channels_last)."""
    input_size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if input_size[0] is None else (1 - input_size[0] % 2, 1 - input_size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


class KerasNames:
    """Keras' automatic layer names in the order a fresh Keras session hands them out:
    ``names("conv2d")`` gives ``conv2d``, then ``conv2d_1``, ``conv2d_2``, ... Families that
    leave layers unnamed (Inception) fix them to these, so that the names equal Keras'
    whatever dendrite built before.

    ``taken``: names already in the graph (the layers before an ``input_tensor``); as in
    a Keras session that built those first, numbering continues after them
    (``conv2d`` taken: ``conv2d_1``, ``conv2d_2``, ...), so no name is used twice."""

    def __init__(self, taken: Any = ()) -> None:
        self._counts: dict[str, int] = {}
        for name in taken:
            base, _, suffix = name.rpartition("_")
            if base and suffix.isdigit():
                self._counts[base] = max(self._counts.get(base, 0), int(suffix) + 1)
            self._counts[name] = max(self._counts.get(name, 0), 1)

    def __call__(self, base: str) -> str:
        count = self._counts.get(base, 0)
        self._counts[base] = count + 1
        return base if count == 0 else f"{base}_{count}"


def upstream_names(tensor: KerasTensor) -> list[str]:
    """The names of every layer ``tensor`` is computed by (its graph back to the inputs)."""
    names: list[str] = []
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        node = producer(stack.pop())
        if id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.layer.name)
        stack.extend(node.input_tensors)
    return names


def validate_activation(classifier_activation: Any, weights: Any) -> None:
    """With pretrained weights, the classifier may only be softmax or linear (Keras)."""
    if weights is None:
        return
    fn = activations.get(classifier_activation)
    if fn not in {activations.get("softmax"), activations.get(None)}:
        raise ValueError(
            "Only `None` and `softmax` activations are allowed for the "
            "`classifier_activation` argument when using pretrained weights, with "
            f"`include_top=True`; Received: classifier_activation={classifier_activation}"
        )


# --- what every application does before and after its body --------------------------------
def check_arguments(
    weights: Any, include_top: bool, classes: int, pooling: Any, model_name: str
) -> None:
    """The checks before any layer is built: ``weights`` (None or a local file: dendrite
    downloads nothing), ``pooling`` (None, 'avg', 'max') and ``classes``; and the image
    layout: the applications are built channels_last, so a global 'channels_first'
    (which Keras honours) is refused here rather than giving a broken model."""
    if _settings.image_data_format() != "channels_last":
        raise ValueError(
            f"{model_name}: dendrite builds the applications in the 'channels_last' layout "
            "only, but keras.config.image_data_format() is "
            f"'{_settings.image_data_format()}'. Call "
            "keras.config.set_image_data_format('channels_last') before building it."
        )
    if isinstance(weights, str) and weights == "imagenet":
        raise ValueError(
            f"{model_name}: weights='imagenet' needs a download, and dendrite downloads "
            "nothing. Pass weights=None (random initialization) or the path of a local "
            "weights file (one written by dendrite's save_weights: .weights.safetensors "
            "or .weights.h5)."
        )
    if weights is not None and not (
        isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)
    ):
        raise ValueError(
            f"{model_name}: the `weights` argument should be either `None` (random "
            "initialization) or the path to a local weights file to be loaded (no file "
            f"exists there). Received: weights={weights!r}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"{model_name}: `pooling` should be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if include_top and (not isinstance(classes, (int, np.integer)) or classes < 1):
        raise ValueError(
            f"{model_name}: `classes` should be a positive integer. Received: classes={classes!r}"
        )


def image_input(input_tensor: Any, input_shape: tuple) -> KerasTensor:
    """The model's image input: ``input_tensor`` when it is a KerasTensor, else a new
    ``Input`` of ``input_shape``."""
    if input_tensor is None:
        return Input(shape=input_shape)
    if not isinstance(input_tensor, KerasTensor):
        raise ValueError(
            "`input_tensor` must be a KerasTensor (the output of keras.Input(...) or of a "
            f"layer called on one). Received: {type(input_tensor).__name__}"
        )
    return input_tensor


def check_tensor_matches_shape(input_tensor: Any, input_shape: Any, model_name: str) -> None:
    """MobileNetV2 and V3 (as Keras) refuse an ``input_tensor`` whose width differs from
    the width in ``input_shape`` when both are given; Keras compares only the width."""
    if input_tensor is None or input_shape is None or not hasattr(input_tensor, "shape"):
        return
    shape = tuple(input_shape)
    tensor_shape = tuple(input_tensor.shape)
    if len(shape) < 2 or len(tensor_shape) < 3:
        return
    if tensor_shape[2] != shape[1]:
        raise ValueError(
            f"{model_name}: the width of `input_tensor` must equal the width in "
            f"`input_shape` (input_tensor.shape[2] == input_shape[1]). Received: "
            f"input_tensor.shape={tensor_shape}, input_shape={shape}"
        )


def source_inputs(tensor: KerasTensor) -> list[KerasTensor]:
    """The ``Input`` tensors ``tensor`` is computed from (Keras' ``get_source_inputs``)."""
    found: list[KerasTensor] = []
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        x = stack.pop()
        node = producer(x)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.is_input:
            found.append(x)
        else:
            stack.extend(reversed(node.input_tensors))
    return found


def pool(x: KerasTensor, pooling: str | None, named: bool = False) -> KerasTensor:
    """The feature map without the top: as it is (``pooling=None``), or pooled over its
    spatial axes to one vector per image ("avg" or "max"); ``named`` gives the pooling
    layer Keras' name in the families that name it ("avg_pool", "max_pool")."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool" if named else None)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool" if named else None)(x)
    return x


def model_input(
    name: str,
    input_tensor: Any,
    input_shape: Any,
    *,
    weights: Any,
    include_top: bool,
    classes: int,
    pooling: Any,
    default_size: int,
    min_size: int,
) -> tuple[KerasTensor, tuple]:
    """The start every application shares: ``check_arguments``, the input shape
    (``obtain_input_shape``) and the image input tensor; returns (input, shape)."""
    check_arguments(weights, include_top, classes, pooling, name)
    input_shape = obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=min_size,
        require_flatten=include_top,
        weights=weights,
        model_name=name,
    )
    return image_input(input_tensor, input_shape), input_shape


def average_top(
    x: KerasTensor,
    include_top: bool,
    pooling: Any,
    classes: int,
    classifier_activation: Any,
    weights: Any,
    gap_name: str | None = "avg_pool",
    named_pooling: bool = False,
) -> KerasTensor:
    """The usual end of a classifier: global average pooling (named ``gap_name``) and a
    Dense "predictions" layer of ``classes``; without the top, ``pool(x, pooling)``."""
    if not include_top:
        return pool(x, pooling, named=named_pooling)
    x = layers.GlobalAveragePooling2D(name=gap_name)(x)
    validate_activation(classifier_activation, weights)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def finish(
    img_input: KerasTensor,
    input_tensor: Any,
    x: KerasTensor,
    name: str,
    weights: Any,
) -> Any:
    """The functional model from the image input(s) to ``x``, with ``weights`` loaded
    when they name a file."""
    inputs: Any = img_input if input_tensor is None else source_inputs(input_tensor)
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    model = Model(inputs, x, name=name)
    if weights is not None:
        try:
            model.load_weights(weights)
        except Exception as e:
            raise ValueError(
                f"{name}: could not load weights from {str(weights)!r} ({type(e).__name__}: "
                f"{e}). dendrite reads weights written by its own save_weights "
                "(.weights.safetensors / .weights.h5) for the same architecture; reading "
                "Keras' published application files (their h5 layout) is not supported yet."
            ) from e
    return model
