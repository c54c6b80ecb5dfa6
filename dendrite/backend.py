"""``keras.backend``: the global settings Keras code reads and sets.

``floatx`` / ``set_floatx`` (the default float dtype, float32), ``epsilon`` /
``set_epsilon`` (the fuzz factor 1e-7), ``image_data_format`` / ``set_image_data_format``
(channels_last unless set),
``clear_session`` (forget automatic layer names) and ``backend()`` (the array backend's
name: "numpy"); Keras' dtype helpers ``standardize_dtype``, ``result_type`` (Keras'
promotion lattice, ``utils/dtype_promotion.py``), ``is_float_dtype``, ``is_int_dtype``;
``is_keras_tensor`` and ``get_uid``.
"""

from __future__ import annotations

from dendrite._settings import (
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from dendrite.layers.base import get_uid
from dendrite.utils import clear_session, is_keras_tensor, standardize_dtype
from dendrite.utils.dtype_promotion import is_float_dtype, is_int_dtype, result_type


def backend() -> str:
    """The name of the array backend."""
    return "numpy"


__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "is_float_dtype",
    "is_int_dtype",
    "is_keras_tensor",
    "result_type",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "standardize_dtype",
]
