"""The one error a bad model file raises."""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A model, weights or checkpoint file that cannot be loaded: not a dendrite file,
    damaged, hostile, or not matching the model. The message names what is wrong."""


class WeightsLoadError(ModelLoadError):
    """A weights file that does not match the model or is not a valid safetensors file."""
