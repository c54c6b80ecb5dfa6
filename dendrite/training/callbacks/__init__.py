"""Callbacks with Keras' API, each registered as a "callback" in ``dendrite.registry``."""

from dendrite import registry
from dendrite.training.callbacks.backup import BackupAndRestore
from dendrite.training.callbacks.base import Callback, CallbackList
from dendrite.training.callbacks.checkpoint import ModelCheckpoint
from dendrite.training.callbacks.csv_logger import CSVLogger
from dendrite.training.callbacks.early_stopping import EarlyStopping
from dendrite.training.callbacks.history import History, ProgbarLogger
from dendrite.training.callbacks.lr import LearningRateScheduler, ReduceLROnPlateau
from dendrite.training.callbacks.misc import LambdaCallback, PlotHistory, TerminateOnNaN
from dendrite.training.callbacks.remote_monitor import RemoteMonitor
from dendrite.training.callbacks.swap_ema import SwapEMAWeights
from dendrite.training.callbacks.tensorboard import TensorBoard

# backup.py and base.py are registered here rather than where they are defined.
for _cls in (Callback, CallbackList, BackupAndRestore):
    registry.register("callback")(_cls)
del _cls

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
    "RemoteMonitor",
    "SwapEMAWeights",
    "TensorBoard",
    "TerminateOnNaN",
]
