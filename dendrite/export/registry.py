"""The converters by layer class: ``@converts(Dense)`` registers ``fn(ctx, layer, args)``.

A converter receives the export context (``ctx.b`` is the ``GraphBuilder``), the layer,
and the layer's call arguments bound by name (``args["inputs"]``, ``args["mask"]``, ...)
with every KerasTensor replaced by its ``Value``. It returns a ``Value`` (or a name), or a
list of them for a layer with several outputs; it raises ``refuse(layer, reason)`` when
the layer's configuration has no ONNX form. Lookup is by exact class: a user's subclass may
change ``call``, so it is never exported with its parent's maths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONVERTERS: dict[type, Callable[..., Any]] = {}

#: Registered layers that are never exported, with the reason (printed by the tests).
NOT_EXPORTABLE: dict[str, str] = {
    "StringLookup": "it maps strings to indices through a Python vocabulary; export the "
    "model from its integer ids (the layers after it) and look strings up before ONNX Runtime.",
    "IntegerLookup": "it maps values to indices through a Python vocabulary (a hash table); "
    "export the model from the indices (the layers after it).",
    "TextVectorization": "it maps strings to token ids through a Python vocabulary; export "
    "the model from its integer ids (the layers after it) and tokenize before ONNX Runtime.",
    "SimpleRNNCell": "a cell is exported inside the RNN layer that runs it, not alone.",
    "LSTMCell": "a cell is exported inside the RNN layer that runs it, not alone.",
    "GRUCell": "a cell is exported inside the RNN layer that runs it, not alone.",
    "StackedRNNCells": "a cell is exported inside the RNN layer that runs it, not alone (an "
    "RNN over stacked cells is not converted yet: stack LSTM/GRU layers instead).",
    "Wrapper": "the abstract base of the wrappers; Bidirectional, TimeDistributed and "
    "SpectralNormalization export.",
}

#: Registered classes that are whole models: exported as graphs of their layers.
MODEL_CLASSES = ("Functional", "Sequential")


def converts(*classes: type) -> Callable:
    """Decorator: ``fn`` converts layers of exactly these classes."""

    def register(fn: Callable) -> Callable:
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn

    return register


def not_exportable(name: str, reason: str) -> None:
    """Record that the registered layer class ``name`` has no ONNX form, and why."""
    NOT_EXPORTABLE[name] = reason


def load_all() -> None:
    """Import every converter module (each registers its converters on import)."""
    from dendrite.export import (  # noqa: F401
        convert_attention,
        convert_audio,
        convert_augmentation_more,
        convert_categorical,
        convert_conv,
        convert_conv_lstm,
        convert_core,
        convert_merging,
        convert_normalization,
        convert_ops,
        convert_pooling,
        convert_recurrent,
        convert_reshaping,
    )
