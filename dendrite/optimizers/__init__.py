"""Optimizers with Keras 3's names, arguments, defaults and update rules, and ``schedules``.

``get("adam")``, ``get({"class_name": "Adam", "config": {...}})`` or ``get(Adam())`` give an
optimizer; ``serialize``/``deserialize`` convert to and from the dict form.
"""

from __future__ import annotations

from typing import Any

from dendrite import registry
from dendrite.optimizers import schedules
from dendrite.optimizers.adadelta import Adadelta
from dendrite.optimizers.adafactor import Adafactor
from dendrite.optimizers.adagrad import Adagrad
from dendrite.optimizers.adam import Adam, AdamW
from dendrite.optimizers.adamax import Adamax
from dendrite.optimizers.ftrl import Ftrl
from dendrite.optimizers.lamb import Lamb
from dendrite.optimizers.lion import Lion
from dendrite.optimizers.loss_scale_optimizer import LossScaleOptimizer
from dendrite.optimizers.multi_optimizer import MultiOptimizer, OptimizerMap
from dendrite.optimizers.muon import Muon
from dendrite.optimizers.nadam import Nadam
from dendrite.optimizers.optimizer import Optimizer
from dendrite.optimizers.rmsprop import RMSprop
from dendrite.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from dendrite.optimizers.sgd import SGD
from dendrite.registry import serialization


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Keras 3's dict of an optimizer's configuration (no state): ``{"module",
    "class_name", "config", "registered_name"}``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize() expects an Optimizer; received {type(optimizer).__name__}.")
    return serialization.serialize_keras_object(optimizer)


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
    """A new optimizer from ``serialize``'s output.

    The class is found by ``dendrite.registry.get("optimizer", ...)``: ``custom_objects``,
    a custom-object scope, your registered classes, then the built-in optimizers, whose
    names match in any case ("Adam", "adam", "ADAM").
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Expected a dict with 'class_name' and 'config' keys; received {config!r}."
        )
    registered = config.get("registered_name")
    cls = registry.find_entry("optimizer", config["class_name"], registered, custom_objects)
    if cls is None:
        raise registry.unknown("optimizer", registered if registered else config["class_name"])
    return serialization.from_config(cls, dict(config.get("config") or {}), custom_objects)


def get(identifier: str | dict[str, Any] | Optimizer | None) -> Optimizer | None:
    """An optimizer from a name (``"adam"``, any case; default arguments), a
    ``{"class_name", "config"}`` dict, or an Optimizer (returned as is). None gives None."""
    if identifier is None or isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "LossScaleOptimizer",
    "MultiOptimizer",
    "Muon",
    "Nadam",
    "Optimizer",
    "OptimizerMap",
    "RMSprop",
    "ScheduleFreeAdamW",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]
