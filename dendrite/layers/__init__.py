"""Layers with Keras names: ``dendrite.layers.Dense`` and friends."""

from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from dendrite.layers.adaptive_pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
)
from dendrite.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from dendrite.layers.audio import MelSpectrogram
from dendrite.layers.augmentation import (
    CenterCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Resizing,
)
from dendrite.layers.augmentation_clahe import ContrastLimitedAdaptiveHistogramEqualization
from dendrite.layers.augmentation_color import RandomBrightness, RandomContrast
from dendrite.layers.augmentation_color_extra import (
    RandomColorJitter,
    RandomHue,
    RandomSaturation,
)
from dendrite.layers.augmentation_color_more import (
    AutoContrast,
    RandomColorDegeneration,
    RandomGrayscale,
    RandomInvert,
)
from dendrite.layers.augmentation_color_tone import (
    Equalization,
    RandomPosterization,
    RandomSharpness,
    Solarization,
)
from dendrite.layers.augmentation_crop import RandomCrop
from dendrite.layers.augmentation_geometry_extra import (
    RandomElasticTransform,
    RandomErasing,
    RandomGaussianBlur,
    RandomPerspective,
    RandomShear,
)
from dendrite.layers.augmentation_mixing import CutMix, MixUp
from dendrite.layers.augmentation_policies import AugMix, RandAugment
from dendrite.layers.base import Layer
from dendrite.layers.categorical import CategoryEncoding, Discretization
from dendrite.layers.conv import Conv1D, Conv2D
from dendrite.layers.conv3d import Conv3D, Conv3DTranspose
from dendrite.layers.conv_depthwise import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from dendrite.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from dendrite.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose
from dendrite.layers.core import Activation, Dense, Dropout, Flatten, Reshape
from dendrite.layers.einsum_dense import EinsumDense
from dendrite.layers.embedding import Embedding, Masking
from dendrite.layers.grouped_query_attention import GroupedQueryAttention, GroupQueryAttention
from dendrite.layers.hashing import HashedCrossing, Hashing
from dendrite.layers.input_layer import Input, InputLayer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.lambda_layer import Lambda
from dendrite.layers.max_num_bounding_boxes import MaxNumBoundingBoxes
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
    RMSNormalization,
)
from dendrite.layers.op_layer import OpLayer  # noqa: F401 (registered: files name it)
from dendrite.layers.pipeline import Pipeline
from dendrite.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from dendrite.layers.preprocessing import (
    Identity,
    IntegerLookup,
    Normalization,
    Rescaling,
    StringLookup,
    UnitNormalization,
)
from dendrite.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from dendrite.layers.registry import LAYER_REGISTRY, get_layer_class, register_layer
from dendrite.layers.regularization import (
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from dendrite.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Permute,
    RepeatVector,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from dendrite.layers.reversible_embedding import ReversibleEmbedding
from dendrite.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell
from dendrite.layers.rnn_stacked import StackedRNNCells
from dendrite.layers.spectral_normalization import SpectralNormalization
from dendrite.layers.stft_spectrogram import STFTSpectrogram
from dendrite.layers.symbolic import KerasTensor
from dendrite.layers.text import TextVectorization
from dendrite.layers.wrappers import Bidirectional, TimeDistributed, Wrapper
from dendrite.registry import serialization

# Keras' alternative names.
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
MaxPool3D = MaxPooling3D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
AvgPool3D = AveragePooling3D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D

# keras.layers.serialize / deserialize: Keras 3's dict form of a layer, and back.
serialize, deserialize = serialization.for_kind("layer")

__all__ = [
    "TextVectorization",
    "Resizing",
    "CategoryEncoding",
    "EinsumDense",
    "Discretization",
    "CenterCrop",
    "RandomContrast",
    "RandomBrightness",
    "RandomZoom",
    "RandomTranslation",
    "RandomRotation",
    "RandomFlip",
    "UnitNormalization",
    "Rescaling",
    "Normalization",
    "Identity",
    "IntegerLookup",
    "StringLookup",
    "Softmax",
    "ReLU",
    "PReLU",
    "LeakyReLU",
    "ELU",
    "Activation",
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "SpectralNormalization",
    "StackedRNNCells",
    "Wrapper",
    "ActivityRegularization",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv3D",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Convolution3D",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Dense",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GRUCell",
    "GaussianDropout",
    "AlphaDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GroupNormalization",
    "Input",
    "InputLayer",
    "InputSpec",
    "KerasTensor",
    "LAYER_REGISTRY",
    "LSTM",
    "LSTMCell",
    "Lambda",
    "Layer",
    "LayerNormalization",
    "RMSNormalization",
    "Masking",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "MelSpectrogram",
    "GroupedQueryAttention",
    "GroupQueryAttention",
    "Hashing",
    "HashedCrossing",
    "Pipeline",
    "RandomCrop",
    "RandomGrayscale",
    "RandomInvert",
    "RandomColorDegeneration",
    "AutoContrast",
    "RandomHue",
    "RandomSaturation",
    "RandomColorJitter",
    "Solarization",
    "RandomPosterization",
    "RandomSharpness",
    "Equalization",
    "ContrastLimitedAdaptiveHistogramEqualization",
    "RandomErasing",
    "RandomGaussianBlur",
    "RandomShear",
    "RandomPerspective",
    "RandomElasticTransform",
    "MixUp",
    "CutMix",
    "RandAugment",
    "AugMix",
    "MaxNumBoundingBoxes",
    "ReversibleEmbedding",
    "STFTSpectrogram",
    "Multiply",
    "Permute",
    "RNN",
    "RepeatVector",
    "Reshape",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "SimpleRNN",
    "SimpleRNNCell",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "Subtract",
    "TimeDistributed",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "activations",
    "add",
    "average",
    "concatenate",
    "deserialize",
    "dot",
    "get_layer_class",
    "constraints",
    "initializers",
    "maximum",
    "minimum",
    "multiply",
    "register_layer",
    "regularizers",
    "serialize",
    "subtract",
]
