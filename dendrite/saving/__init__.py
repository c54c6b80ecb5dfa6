"""Model files: weights in safetensors, written atomically; never pickle."""

from dendrite.saving.weights import WeightsLoadError, load_weights, save_weights

__all__ = ["WeightsLoadError", "load_weights", "save_weights"]
