"""Models: ``Model`` (functional and subclassed), ``Sequential``, and loading saved ones
(``load_model`` and friends live in ``saving``, below models; Keras users find them here)."""

from dendrite.models.cloning import clone_model
from dendrite.models.functional import Functional
from dendrite.models.model import Model
from dendrite.models.sequential import Sequential
from dendrite.saving import load_model, model_from_json, save_model

__all__ = [
    "Functional",
    "Model",
    "Sequential",
    "clone_model",
    "load_model",
    "model_from_json",
    "save_model",
]
