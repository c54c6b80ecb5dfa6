"""Model files: config JSON + safetensors weights in one zip (``.dendrite``, the safe
default), or Keras 3's own ``.keras`` and ``.weights.h5`` (``keras_format``), written
atomically; never pickle, never code from a file.

``save_model`` / ``load_model`` (whole models), ``save_weights`` / ``load_weights``,
``model_from_json``, custom objects by registered name (``register_keras_serializable``,
``custom_object_scope``), Keras 3's ``serialize_keras_object`` / ``deserialize_keras_object``,
and ``ModelLoadError``, the one error every bad file raises.
"""

from dendrite.registry.custom_objects import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from dendrite.registry.serialization import deserialize_keras_object, serialize_keras_object
from dendrite.saving.errors import ModelLoadError, WeightsLoadError
from dendrite.saving.weights import load_weights, save_weights

__all__ = [
    "CustomObjectScope",
    "ModelLoadError",
    "WeightsLoadError",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "load_weights",
    "model_from_json",
    "model_to_json",
    "register_keras_serializable",
    "save_model",
    "save_weights",
    "serialize_keras_object",
]


def save_model(model, filepath, overwrite=True, **kwargs):  # noqa: ANN001, ANN201
    """Save a whole model to one ``.dendrite`` file (or a ``.keras`` file in Keras 3's
    format, which Keras opens); see ``model_file``."""
    from dendrite.saving.model_file import save_model as _save

    _save(model, filepath, overwrite=overwrite, **kwargs)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002, ANN001, ANN201
    """Load a model saved by ``save_model``; see ``model_file.load_model``."""
    from dendrite.saving.model_file import load_model as _load

    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def model_from_json(json_string, custom_objects=None):  # noqa: ANN001, ANN201
    """A freshly initialised model from ``model.to_json()``'s output, dendrite's or Keras
    3's."""
    from dendrite.saving.model_file import model_from_json as _from_json

    return _from_json(json_string, custom_objects=custom_objects)


def model_to_json(model, **kwargs):  # noqa: ANN001, ANN201
    """``model.to_json()``: the architecture as a JSON string."""
    from dendrite.saving.model_file import model_to_json as _to_json

    return _to_json(model, **kwargs)
