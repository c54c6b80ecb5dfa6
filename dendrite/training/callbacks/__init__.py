"""Callbacks with Keras' API."""

from dendrite.training.callbacks.base import Callback, CallbackList
from dendrite.training.callbacks.history import History, ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
