"""What every layer call needs besides the layer itself: the per-thread call context (the
``training`` flag of the outermost call, inherited by nested layers), which arguments a
``call`` method takes, the Keras masks that ride on tensors (``_keras_mask``), and the
shapes of nested inputs."""

from __future__ import annotations

import inspect
import itertools
import threading
from typing import Any

import numpy as np

from dendrite.core import Tensor


class _CallContext(threading.local):
    """The ``training`` flag of the outermost call, inherited by nested layers; per thread,
    so a model serving predictions in one thread never sees another thread's training."""

    training: bool | None = None
    depth = 0  # how many Layer.__call__ are running (0: the next call is an outermost one)
    call_id = 0  # the outermost call this thread is in


CALL = _CallContext()
# One counter for every thread, so two threads' outermost calls never share an id.
CALL_IDS = itertools.count(1)


_SIGNATURES: dict[type, tuple[bool, bool]] = {}
_TRAINING_REQUIRED: dict[type, bool] = {}


def call_arguments(cls: type) -> tuple[bool, bool]:
    """Whether ``cls.call`` accepts ``training`` and ``mask`` (looked up once per class)."""
    found = _SIGNATURES.get(cls)
    if found is None:
        params = inspect.signature(cls.call).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        found = ("training" in params or var_kw, "mask" in params or var_kw)
        _SIGNATURES[cls] = found
        training = params.get("training")
        _TRAINING_REQUIRED[cls] = training is not None and training.default is training.empty
    return found


def training_argument(cls: type, training: bool | None) -> bool:
    """Whether a call of ``cls.call`` is given ``training`` when it resolved to
    ``training``. Keras' order: the caller's value, else an outer call's, else the call
    signature's own default (so augmentation layers, ``training=True``, augment when called
    directly); that default is left to ``call`` and not passed to nested layers."""
    takes_training = call_arguments(cls)[0]
    return takes_training and (training is not None or _TRAINING_REQUIRED[cls])


def shape_of(x: Any) -> Any:
    """The shape of a tensor, or the nested list of shapes of a list of tensors."""
    if isinstance(x, (list, tuple)):
        return [shape_of(item) for item in x]
    if isinstance(x, dict):
        return {k: shape_of(v) for k, v in x.items()}
    return tuple(x.shape)


def input_mask(inputs: Any) -> Any:
    """The mask riding on ``inputs`` (a list of them for a list of tensors), or None."""
    if isinstance(inputs, Tensor):
        return inputs._keras_mask
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return None if all(m is None for m in masks) else masks
    return None


def mask_array(mask: Any) -> np.ndarray:
    """A mask (Tensor, ndarray or nested list) as a boolean ndarray."""
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)


def attach_mask(outputs: Any, mask: Any) -> None:
    """Put ``mask`` (or one mask per output) on the output tensors."""
    if isinstance(outputs, Tensor):
        outputs._keras_mask = mask if not isinstance(mask, list) else None
    elif isinstance(outputs, (list, tuple)):
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(outputs)
        for out, m in zip(outputs, masks):
            if isinstance(out, Tensor):
                out._keras_mask = m


def contains(value: Any, kind: type) -> bool:
    """Whether ``value`` (or anything nested in its lists, tuples and dicts) is a ``kind``."""
    if isinstance(value, kind):
        return True
    if isinstance(value, (list, tuple)):
        return any(contains(v, kind) for v in value)
    if isinstance(value, dict):
        return any(contains(v, kind) for v in value.values())
    return False
