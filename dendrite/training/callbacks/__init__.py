"""Callbacks with Keras' API."""

from dendrite.training.callbacks.backup import BackupAndRestore
from dendrite.training.callbacks.base import Callback, CallbackList
from dendrite.training.callbacks.checkpoint import ModelCheckpoint
from dendrite.training.callbacks.csv_logger import CSVLogger
from dendrite.training.callbacks.early_stopping import EarlyStopping
from dendrite.training.callbacks.history import History, ProgbarLogger
from dendrite.training.callbacks.lr import LearningRateScheduler, ReduceLROnPlateau
from dendrite.training.callbacks.misc import LambdaCallback, PlotHistory, TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "PlotHistory",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]
