"""Keras' utilities: seeding, label encoding, sequence padding, session reset, the
serialization names Keras 3 also exports here (``register_keras_serializable``,
``serialize_keras_object``, ``custom_object_scope`` ...), and the input pipeline:
``get_file`` (downloads into a cache, hashes checked, archives extracted safely),
``Config``, ``get_source_inputs``, interactive logging switches, ``PyDataset``,
``image_dataset_from_directory`` and its text, audio and time-series
siblings, ``split_dataset``, and the image helpers (``load_img`` ...).

The ``*_dataset_from_directory`` functions return a ``FileDataset`` (a ``PyDataset``),
not a ``tf.data.Dataset``: see ``dendrite.utils.dataset_utils``.
"""

from __future__ import annotations

from collections.abc import Sequence as _Sequence
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.layers.base import reset_names
from dendrite.registry.custom_objects import (  # noqa: F401 (keras.utils' names)
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from dendrite.registry.serialization import (  # noqa: F401 (keras.utils' names)
    deserialize_keras_object,
    serialize_keras_object,
)


def set_random_seed(seed: int) -> None:
    """Seed every generator dendrite uses (weights, dropout, shuffling), NumPy's and
    Python's, so a run can be repeated bit for bit on the CPU."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed expects a non-negative integer, got {seed!r}.")
    _settings.set_seed(int(seed))


def clear_session() -> None:
    """Forget automatic layer names (the next Dense is 'dense' again)."""
    reset_names()


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer class labels: shape (..., ) -> (..., num_classes), float32.

    A trailing axis of size 1 is dropped first, as in Keras.
    """
    labels = np.asarray(x)
    if labels.dtype.kind == "f":
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("to_categorical expects integer class labels.")
    labels = labels.astype(np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {labels.min()}.")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(
            f"to_categorical: label {labels.max()} is out of range for num_classes={num_classes}."
        )
    out = np.zeros((*labels.shape, num_classes), dtype=_settings.floatx())
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


_PYTHON_DTYPES = {float: "float32", int: "int32", bool: "bool", str: "string"}


def standardize_dtype(dtype: Any = None) -> str:
    """Keras' canonical name of ``dtype``: None is ``floatx()``, Python's float, int, bool
    and str are "float32", "int32", "bool" and "string", anything NumPy knows its name
    ("bfloat16" and "string" pass as they are); else ValueError."""
    if dtype is None:
        return _settings.floatx()
    if dtype in _PYTHON_DTYPES:
        return _PYTHON_DTYPES[dtype]
    if isinstance(dtype, str) and dtype in ("bfloat16", "string"):
        return dtype
    if isinstance(dtype, str) and dtype in ("float", "int", "complex", "uint"):
        raise ValueError(f"Invalid dtype: {dtype}")  # ambiguous widths, as Keras refuses
    try:
        return np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        raise ValueError(f"Invalid dtype: {dtype}") from None


def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic ``KerasTensor`` (an ``Input`` or a layer's output on
    one), not data."""
    from dendrite.layers.symbolic import KerasTensor

    return isinstance(x, KerasTensor)


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Divide by the ``order``-norm along ``axis`` (zero vectors stay zero)."""
    array = np.asarray(x, dtype=_settings.floatx())
    norm = np.linalg.norm(array, ord=order, axis=axis, keepdims=True)
    return array / np.where(norm == 0, 1, norm)


def pad_sequences(
    sequences: _Sequence[Any],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (or cut) sequences to one length: Keras' semantics.

    ``padding='pre'`` puts the padding before each sequence, ``'post'`` after;
    ``truncating='pre'`` drops values from the start of long sequences, ``'post'`` from the
    end. ``maxlen`` defaults to the longest sequence.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'padding must be "pre" or "post", got {padding!r}.')
    if truncating not in ("pre", "post"):
        raise ValueError(f'truncating must be "pre" or "post", got {truncating!r}.')
    if not hasattr(sequences, "__len__"):
        raise ValueError("pad_sequences expects a list of sequences.")
    lengths = []
    sample_shape: tuple = ()
    for i, seq in enumerate(sequences):
        if not hasattr(seq, "__len__"):
            raise ValueError(f"sequences[{i}] is not a sequence: {seq!r}.")
        lengths.append(len(seq))
        if len(seq) and not sample_shape:
            sample_shape = np.asarray(seq).shape[1:]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.dtype(dtype) == object
    if isinstance(value, str) and not is_text:
        raise ValueError(f"pad_sequences: value {value!r} does not fit dtype {dtype}.")
    out = np.full((len(sequences), maxlen, *sample_shape), value, dtype=dtype)
    for i, seq in enumerate(sequences):
        if not len(seq) or maxlen == 0:
            continue
        trunc = np.asarray(seq[-maxlen:] if truncating == "pre" else seq[:maxlen], dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(
                f"pad_sequences: sequences[{i}] has sample shape {trunc.shape[1:]}, expected "
                f"{sample_shape}."
            )
        if padding == "post":
            out[i, : len(trunc)] = trunc
        else:
            out[i, -len(trunc) :] = trunc
    return out


def get_source_inputs(tensor: Any) -> list:
    """The ``Input`` tensors that ``tensor`` (a symbolic ``KerasTensor``) was computed from,
    in the order a depth-first walk of its history meets them; ``[tensor]`` for an Input
    itself. Anything without a history is returned as it is, as Keras does."""
    if not hasattr(tensor, "_keras_history"):
        return tensor
    sources: list = []
    seen_nodes: set[int] = set()
    stack = [tensor]
    while stack:  # an explicit stack: no recursion limit on deep graphs
        current = stack.pop()
        history = getattr(current, "_keras_history", None)
        layer = history[0] if history else None
        nodes = getattr(layer, "_inbound_nodes", None)
        if not nodes:
            if all(current is not s for s in sources):
                sources.append(current)
            continue
        node = nodes[history[1]]
        if node.is_input:
            for x in node.output_tensors:
                if all(x is not s for s in sources):
                    sources.append(x)
            continue
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        stack.extend(reversed(node.input_tensors))
    return sources


def enable_interactive_logging() -> None:
    """Progress bars and epoch lines on stdout (the default)."""
    _settings.set_interactive_logging(True)


def disable_interactive_logging() -> None:
    """Progress bars and epoch lines sent to Python's ``logging`` at INFO level instead."""
    _settings.set_interactive_logging(False)


is_interactive_logging_enabled = _settings.is_interactive_logging_enabled


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> tuple:
    """``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as Keras hands a batch to a step."""
    if y is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple:
    """``(x, y, sample_weight)`` from a packed batch (missing parts are None)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) == 1:
        return (data[0], None, None)
    if len(data) == 2:
        return (data[0], data[1], None)
    if len(data) == 3:
        return data
    raise ValueError(
        f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
        f"found: {data}"
    )


# The input pipeline (imported last: these modules use the names above).
from dendrite.utils.py_dataset import PyDataset  # noqa: E402, F401

Sequence = PyDataset  # Keras 3 keeps keras.utils.Sequence as an alias of PyDataset

from dendrite.utils import bounding_boxes  # noqa: E402, F401
from dendrite.utils.archives import extract_archive  # noqa: E402, F401
from dendrite.utils.audio_dataset_utils import audio_dataset_from_directory  # noqa: E402, F401
from dendrite.utils.config import Config  # noqa: E402, F401
from dendrite.utils.dataset_utils import FileDataset, split_dataset  # noqa: E402, F401
from dendrite.utils.file_utils import get_file, hash_file, validate_file  # noqa: E402, F401
from dendrite.utils.image_dataset_utils import image_dataset_from_directory  # noqa: E402, F401
from dendrite.utils.image_utils import (  # noqa: E402, F401
    array_to_img,
    img_to_array,
    load_img,
    save_img,
)
from dendrite.utils.model_visualization import model_to_dot, plot_model  # noqa: E402, F401
from dendrite.utils.progbar import Progbar  # noqa: E402, F401
from dendrite.utils.text_dataset_utils import text_dataset_from_directory  # noqa: E402, F401
from dendrite.utils.timeseries_dataset_utils import (  # noqa: E402, F401
    timeseries_dataset_from_array,
)
