"""``keras.backend``: the global settings Keras code reads and sets.

``floatx`` / ``set_floatx`` (the default float dtype, float32), ``epsilon`` /
``set_epsilon`` (the fuzz factor 1e-7), ``image_data_format`` / ``set_image_data_format``
(channels_last unless set),
``clear_session`` (forget automatic layer names) and ``backend()`` (the array backend's
name: "numpy").
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
from dendrite.utils import clear_session


def backend() -> str:
    """The name of the array backend."""
    return "numpy"


__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "image_data_format",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
]
