"""Layers with Keras names: ``dendrite.layers.Dense`` and friends."""

from dendrite.layers import activations, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.core import Activation, Dense, Dropout, Flatten, Reshape
from dendrite.layers.embedding import Embedding, Masking
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from dendrite.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
)
from dendrite.layers.registry import LAYER_REGISTRY, get_layer_class, register_layer
from dendrite.layers.regularization import (
    ActivityRegularization,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from dendrite.layers.symbolic import KerasTensor

__all__ = [
    "Activation",
    "ActivityRegularization",
    "Add",
    "Average",
    "BatchNormalization",
    "Concatenate",
    "Dense",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GroupNormalization",
    "Input",
    "InputLayer",
    "InputSpec",
    "KerasTensor",
    "LAYER_REGISTRY",
    "Layer",
    "LayerNormalization",
    "Masking",
    "Maximum",
    "Minimum",
    "Multiply",
    "Reshape",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "activations",
    "add",
    "average",
    "concatenate",
    "dot",
    "get_layer_class",
    "initializers",
    "maximum",
    "minimum",
    "multiply",
    "register_layer",
    "regularizers",
    "subtract",
]
