"""Layers with Keras names: ``dendrite.layers.Dense`` and friends."""

from dendrite.layers import activations, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.core import Activation, Dense, Dropout, Flatten, Reshape
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import LAYER_REGISTRY, get_layer_class, register_layer
from dendrite.layers.symbolic import KerasTensor

__all__ = [
    "LAYER_REGISTRY",
    "Activation",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Reshape",
    "activations",
    "get_layer_class",
    "initializers",
    "register_layer",
    "regularizers",
]
