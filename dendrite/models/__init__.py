"""Models: ``Model`` (functional and subclassed), ``Sequential``, and loading saved ones."""

from dendrite.models.cloning import clone_model
from dendrite.models.functional import Functional
from dendrite.models.model import Model
from dendrite.models.sequential import Sequential

__all__ = ["Functional", "Model", "Sequential", "clone_model"]
